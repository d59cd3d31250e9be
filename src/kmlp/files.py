"""Writing files safely and reading HDF5 with clear errors; shared by every I/O module.

Files are written to a temporary name beside the target and renamed into place, so a
killed job never leaves a half file; HDF5 datasets carry no timestamps, so the same
content gives the same bytes.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from pathlib import Path

import h5py
import numpy as np

from .errors import KmlpError


@contextlib.contextmanager
def atomic_path(path):
    """A temporary path beside ``path`` to write; renamed onto ``path`` on success only."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_h5(path):
    """Open ``path`` for writing as HDF5, atomically (see :func:`atomic_path`)."""
    with atomic_path(path) as tmp, h5py.File(tmp, "w", track_order=False) as f:
        yield f


def put(group, name, data, **kw):
    """Create a dataset without modification times (bit-reproducible files)."""
    return group.create_dataset(name, data=data, track_times=False, **kw)


def open_h5(path, what: str):
    """Open an HDF5 file for reading, turning every failure into one clear sentence."""
    path = Path(path)
    if not path.exists():
        raise KmlpError(f"{what} {path} does not exist")
    try:
        return h5py.File(path, "r")
    except OSError as exc:
        raise KmlpError(f"{what} {path} is not a readable HDF5 file (truncated or corrupt?): {exc}") from None


def attr_json(obj) -> str:
    return json.dumps(obj, sort_keys=True)


def as_str(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def as_array(ds) -> np.ndarray:
    return np.asarray(ds[()])


def atomic_text(path, text: str) -> None:
    """Write a text file atomically (see :func:`atomic_path`)."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, newline="\n")


def md5_of(paths) -> str:
    """The MD5 of the files' bytes concatenated in the given order."""
    h = hashlib.md5()
    for p in paths:
        with open(p, "rb") as f:
            while block := f.read(1 << 22):
                h.update(block)
    return h.hexdigest()


def parse_md5(text, option: str = "--md5", allow_skip: bool = False) -> str:
    """A 32-digit hexadecimal MD5 (or ``skip``, where allowed), lower-cased."""
    md5 = str(text).strip().lower()
    if allow_skip and md5 == "skip":
        return md5
    if len(md5) != 32 or any(c not in "0123456789abcdef" for c in md5):
        raise KmlpError(f"{option} {md5!r} is not a 32-digit hexadecimal MD5" + (" nor 'skip'" if allow_skip else ""))
    return md5
