"""Writing files safely and reading HDF5 with clear errors; shared by every I/O module.

Every output is written to a temporary name beside the target, synced to disk and only
then renamed into place, so a job killed at any moment leaves the old file or the new
one, never half of one. A temporary file is removed when its writer fails or is
interrupted (Ctrl-C; SIGTERM, which the CLI turns into an exception), and one that a
killed writer (SIGKILL, a crash) left behind is removed by the next write of the same
target. HDF5 datasets carry no timestamps, so the same content gives the same bytes, and
the checksum of their contents, verified whenever they are read.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import os
import re
import shutil
import socket
import tempfile
from pathlib import Path

import h5py
import numpy as np

from .errors import KmlpError


def _temporary(path: Path) -> Path:
    """The temporary name of this process's write of ``path``: who writes it, and where."""
    return path.with_name(f".{path.name}.tmp-{os.getpid()}-{socket.gethostname()}")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def remove_stale_temporaries(path) -> None:
    """Remove the temporary files of ``path`` whose writers, on this machine, are dead.

    Another machine's (a shared file system) are left: their writers cannot be asked.
    """
    path = Path(path)
    host = socket.gethostname()
    for tmp in path.parent.glob(f".{glob.escape(path.name)}.tmp-*"):
        found = re.fullmatch(r"(\d+)-(.*)", tmp.name[len(path.name) + 6 :])
        if found and found.group(2) == host and not _alive(int(found.group(1))):
            tmp.unlink(missing_ok=True)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path):
    """A temporary path beside ``path`` to write; on success it is synced and renamed onto
    ``path`` (and the folder synced), on any failure or interruption removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    tmp = _temporary(path)
    try:
        yield tmp
        _fsync(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    with contextlib.suppress(OSError):  # some file systems cannot sync a folder
        _fsync(path.parent)


@contextlib.contextmanager
def atomic_h5(path):
    """Open ``path`` for writing as HDF5, atomically (see :func:`atomic_path`)."""
    with atomic_path(path) as tmp, h5py.File(tmp, "w", track_order=False) as f:
        yield f


def atomic_copy(src, dest) -> None:
    """Copy the file ``src`` to ``dest``, atomically (see :func:`atomic_path`)."""
    with atomic_path(dest) as tmp:
        shutil.copyfile(src, tmp)


#: the attribute holding the checksum of a dataset's contents (see :func:`put`)
CHECKSUM = "sha256"


def checksum(values) -> str:
    """SHA-256 of an array's dtype, shape and contents (strings: their text)."""
    a = np.asarray(values)
    h = hashlib.sha256(f"{a.dtype.str} {a.shape}\n".encode())
    if a.dtype.kind in "OSU":
        h.update("\0".join(as_str(v) for v in a.ravel()).encode())
    else:
        h.update(np.ascontiguousarray(a).data)
    return h.hexdigest()


def put(group, name, data, **kw):
    """Create a dataset without modification times (bit-reproducible files), carrying the
    checksum of its contents, which :func:`read` verifies."""
    ds = group.create_dataset(name, data=data, track_times=False, **kw)
    ds.attrs[CHECKSUM] = checksum(data)
    return ds


def read(ds, what: str) -> np.ndarray:
    """The contents of dataset ``ds``, verified against the checksum :func:`put` gave it:
    damage or an edit is a KmlpError naming ``what`` (the file) and the dataset."""
    name = ds.name.lstrip("/")
    if CHECKSUM not in ds.attrs:
        raise KmlpError(f"{what}: {name} has no checksum (written before kmlp verified its files: make it again)")
    data = np.asarray(ds[()])
    if checksum(data) != as_str(ds.attrs[CHECKSUM]):
        raise KmlpError(f"{what}: {name} does not match its checksum (the file is damaged or was edited)")
    return data


def content_checksum(f) -> str:
    """One checksum of everything a file's datasets hold: of their names and checksums."""
    lines = []

    def visit(name, obj):
        if isinstance(obj, h5py.Dataset):
            lines.append(f"{name} {as_str(obj.attrs.get(CHECKSUM, ''))}\n")

    f.visititems(visit)
    return hashlib.sha256("".join(sorted(lines)).encode()).hexdigest()


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


def check_writable(path, option: str = "") -> None:
    """Raise KmlpError now, before any work, unless ``path`` can be written: it is not a
    folder, and its folder exists (or is made) and takes a new file."""
    path = Path(path)
    name = f"{option} {path}".strip()
    if path.is_dir():
        raise KmlpError(f"{name} is a folder, not a file")
    existing = next(p for p in path.parents if p.exists())
    if not existing.is_dir():
        raise KmlpError(f"{name} cannot be written: {existing} is a file, not a folder")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=f".{path.name}.probe-", dir=path.parent)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise KmlpError(f"{name} cannot be written: {exc.strerror or exc}") from None


def attr(obj, name: str, what: str):
    """Attribute ``name`` of an HDF5 object, or a KmlpError naming ``what`` and the key."""
    if name not in obj.attrs:
        where = "" if obj.name == "/" else f" {obj.name.lstrip('/')}"
        raise KmlpError(f"{what}{where} has no attribute {name!r} (incomplete, or not written by kmlp)")
    return obj.attrs[name]


def json_attr(obj, name: str, what: str):
    """A JSON attribute, parsed; a KmlpError naming ``what`` and the key if it is not JSON."""
    try:
        return json.loads(as_str(attr(obj, name, what)))
    except json.JSONDecodeError as exc:
        raise KmlpError(f"{what}: attribute {name!r} is not valid JSON ({exc})") from None


def _member(parent, name: str, what: str, kind):
    found = parent.get(name)
    if not isinstance(found, kind):
        path = f"{parent.name.rstrip('/')}/{name}".lstrip("/")
        raise KmlpError(f"{what} has no {'group' if kind is h5py.Group else 'dataset'} {path}")
    return found


def group(parent, name: str, what: str):
    """Group ``name`` of an HDF5 group, or a KmlpError naming ``what`` and the group."""
    return _member(parent, name, what, h5py.Group)


def dataset(parent, name: str, what: str):
    """Dataset ``name`` of an HDF5 group, or a KmlpError naming ``what`` and the dataset."""
    return _member(parent, name, what, h5py.Dataset)


def atomic_text(path, text: str) -> None:
    """Write a text file atomically (see :func:`atomic_path`)."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, newline="\n")


def atomic_bytes(path, data: bytes) -> None:
    """Write a binary file atomically (see :func:`atomic_path`)."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


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
