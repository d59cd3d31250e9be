"""A tiny CIFAR-10 look-alike in the official "python version" format, for tests.

Images are uint8 noise around a per-class colour, so a classifier can learn something
from a few hundred of them. The same arguments give the same bytes (fixed seed, gzip
and tar times set to 0), so tests can pin checksums.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import pickle
import tarfile
from pathlib import Path

import numpy as np

FOLDER = "cifar-10-batches-py"
CLASS_NAMES = [b"airplane", b"automobile", b"bird", b"cat", b"deer", b"dog", b"frog", b"horse", b"ship", b"truck"]
TRAIN = [f"data_batch_{i}" for i in range(1, 6)]
ORDER = ["batches.meta", *TRAIN, "test_batch"]  # the folder-checksum order


def _images(rng, labels):
    """Per-class mean colour (one value per channel plane) plus Gaussian noise."""
    colours = np.random.default_rng(12345).integers(40, 216, size=(10, 3))
    base = np.repeat(colours[labels], 1024, axis=1)  # N x 3072, planes R, G, B
    noise = rng.normal(0, 35, size=base.shape)
    return np.clip(np.rint(base + noise), 0, 255).astype(np.uint8)


def make_batches(n_train_per_batch=60, n_test=100, seed=0) -> dict:
    """{member name: dict} with bytes keys, as the official pickles hold them."""
    rng = np.random.default_rng(seed)
    out = {
        "batches.meta": {b"num_cases_per_batch": n_train_per_batch, b"label_names": list(CLASS_NAMES), b"num_vis": 3072}
    }
    for k, name in enumerate([*TRAIN, "test_batch"]):
        n = n_test if name == "test_batch" else n_train_per_batch
        labels = rng.integers(0, 10, size=n)
        label = b"testing batch 1 of 1" if name == "test_batch" else f"training batch {k + 1} of 5".encode()
        out[name] = {
            b"batch_label": label,
            b"labels": [int(v) for v in labels],
            b"data": _images(rng, labels),
            b"filenames": [f"img_{k}_{i:05d}.png".encode() for i in range(n)],
        }
    return out


def member_bytes(obj) -> bytes:
    """A member's file content: bytes as given, anything else pickled with protocol 2."""
    return obj if isinstance(obj, bytes) else pickle.dumps(obj, protocol=2)


def _info(name, size=0, type_=tarfile.REGTYPE, mode=0o644):
    ti = tarfile.TarInfo(name)
    ti.size, ti.type, ti.mode, ti.mtime = size, type_, mode, 0
    ti.uid = ti.gid = 0
    ti.uname = ti.gname = ""
    return ti


def archive_bytes(batches: dict, extra_members=None) -> bytes:
    """A .tar.gz of ``batches`` ({name: dict or raw bytes}) under cifar-10-batches-py/.

    ``extra_members`` is a list of ``(name, bytes)`` regular files or ready-made
    :class:`tarfile.TarInfo` entries (links, devices), added after the batches.
    """
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=1) as gz:
        with tarfile.open(fileobj=gz, mode="w", format=tarfile.GNU_FORMAT) as tf:
            tf.addfile(_info(FOLDER, type_=tarfile.DIRTYPE, mode=0o755))
            members = {**batches, "readme.html": b"<html>fake CIFAR-10</html>\n"}
            for name, obj in members.items():
                data = member_bytes(obj)
                tf.addfile(_info(f"{FOLDER}/{name}", len(data)), io.BytesIO(data))
            for extra in extra_members or []:
                if isinstance(extra, tarfile.TarInfo):
                    tf.addfile(extra)
                else:
                    name, data = extra
                    tf.addfile(_info(name, len(data)), io.BytesIO(data))
    return buf.getvalue()


def write_archive(path, n_train_per_batch=60, n_test=100, seed=0, extra_members=None, batches=None) -> str:
    """Write a fake cifar-10-python.tar.gz to ``path``; return its MD5.

    ``batches`` (default: :func:`make_batches`) may be edited by a test: drop a key to
    omit a member, or give raw bytes to write a member verbatim.
    """
    if batches is None:
        batches = make_batches(n_train_per_batch, n_test, seed)
    data = archive_bytes(batches, extra_members)
    Path(path).write_bytes(data)
    return hashlib.md5(data).hexdigest()


def write_folder(path, n_train_per_batch=60, n_test=100, seed=0, batches=None) -> str:
    """Write an extracted ``path/cifar-10-batches-py/``; return its folder checksum.

    The checksum is the MD5 of the 7 member files concatenated in the order
    batches.meta, data_batch_1..5, test_batch (see kmlp.dataset.prepare).
    """
    if batches is None:
        batches = make_batches(n_train_per_batch, n_test, seed)
    folder = Path(path) / FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    h = hashlib.md5()
    for name in ORDER:
        if name in batches:
            data = member_bytes(batches[name])
            (folder / name).write_bytes(data)
            h.update(data)
    return h.hexdigest()
