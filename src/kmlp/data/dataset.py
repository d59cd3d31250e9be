"""CIFAR-10 as one HDF5 file: raw uint8 splits plus the training statistics.

Raw pixels are stored (an exact, small round trip) and normalised at load time, so the
file is the single source of truth and every consumer normalises the same way. Every
array carries the checksum of its contents, verified on load, and the file the checksum
of them all (``content_sha256``), which each run records beside the archive's MD5.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from .. import __version__
from ..errors import KmlpError
from ..files import as_str, atomic_h5, attr, content_checksum, dataset, md5_of, open_h5, parse_md5, put, read
from . import cifar

FORMAT = "kmlp-cifar10/2"  # /1: before checksums
SPLITS = ("train", "val", "test")
_CHUNK = 4096  # rows per step when accumulating statistics


def _say(progress: bool, msg: str) -> None:
    if progress:
        print(f"kmlp prepare: {msg}", file=sys.stderr, flush=True)


def train_stats(X: np.ndarray):
    """Per-dimension mean and (population) std in float64, plus per-channel ones in [0, 1].

    Sums of pixels and of squared pixels are integers below 2**53, so float64 adds them
    exactly in any order; the result does not depend on chunking or BLAS.
    """
    n = len(X)
    s1 = np.zeros(X.shape[1])
    s2 = np.zeros(X.shape[1])
    for i in range(0, n, _CHUNK):
        c = X[i : i + _CHUNK].astype(np.float64)
        s1 += c.sum(axis=0)
        s2 += np.einsum("ij,ij->j", c, c)
    mean = s1 / n
    std = np.sqrt(np.maximum(n * s2 - s1 * s1, 0.0)) / n
    ch_mean, ch_std = [], []
    m = n * (X.shape[1] // 3)  # values per channel plane
    for c1, c2 in zip(s1.reshape(3, -1), s2.reshape(3, -1), strict=True):
        t1, t2 = int(c1.sum()), int(c2.sum())  # exact Python integers
        ch_mean.append(t1 / m / 255)
        ch_std.append(float(np.sqrt((m * t2 - t1 * t1) / m**2)) / 255)
    return mean, std, ch_mean, ch_std


def prepare(archive, md5: str, out, val_size: int = 5000, progress: bool = True) -> dict:
    """Verify, read, split and write CIFAR-10 to one HDF5 file at ``out``; return a summary.

    ``archive`` is the cifar-10-python.tar.gz or an extracted ``cifar-10-batches-py``
    folder (or its parent). ``md5`` is checked first; for a folder the checksum is the
    MD5 of the concatenated bytes of its 7 files in the order batches.meta,
    data_batch_1..5, test_batch (so a folder extracted from the official archive has a
    fixed, documented checksum). ``md5="skip"`` skips the check. The validation set is
    the last ``val_size`` images of data_batch_1..5 concatenated; the statistics are
    those of the remaining training images only.
    """
    t0 = time.perf_counter()
    archive, out = Path(archive), Path(out)
    md5 = parse_md5(md5, allow_skip=True)
    if isinstance(val_size, bool) or not isinstance(val_size, (int, np.integer)) or val_size <= 0:
        raise KmlpError(f"--val-size must be a positive integer, not {val_size!r}")
    if not archive.exists():
        raise KmlpError(f"archive {archive} does not exist")

    is_dir = archive.is_dir()
    what = "folder" if is_dir else "archive"
    files = cifar.folder_files(archive) if is_dir else [archive]
    _say(progress, f"computing the MD5 of {what} {archive}")
    actual = md5_of(files)
    if md5 != "skip" and actual != md5:
        raise KmlpError(f"{what} {archive} has MD5 {actual} but {md5} was expected (wrong or corrupt file?)")

    _say(progress, f"reading {what} {archive}")
    try:
        raw = cifar.read_folder(archive) if is_dir else cifar.read_archive(archive)
        parsed = cifar.parse(raw, f"{what} {archive}")
        X_all = np.concatenate([x for x, _ in parsed["train"]])
        y_all = np.concatenate([y for _, y in parsed["train"]])
    except MemoryError:
        raise KmlpError(f"{what} {archive}: not enough memory to read it") from None
    del parsed["train"]
    X_test, y_test = parsed["test"]
    if val_size >= len(X_all):
        raise KmlpError(f"--val-size {val_size} must be smaller than the {len(X_all)} images of the training batches")
    n_train = len(X_all) - val_size
    splits = {
        "train": (X_all[:n_train], y_all[:n_train]),
        "val": (X_all[n_train:], y_all[n_train:]),
        "test": (X_test, y_test),
    }

    _say(progress, f"computing statistics of the {n_train} training images")
    mean, std, ch_mean, ch_std = train_stats(splits["train"][0])

    _say(progress, f"writing {out}")
    source_name = (cifar.folder_of(archive) if is_dir else archive).name
    with atomic_h5(out) as f:
        for split, (X, y) in splits.items():
            g = f.create_group(split)
            put(g, "images", X)
            put(g, "labels", y)
        g = f.create_group("stats")
        put(g, "mean", mean)
        put(g, "std", std)
        put(f, "class_names", np.array(parsed["class_names"], dtype=h5py.string_dtype()))
        f.attrs.update(
            {
                "format": FORMAT,
                "source_md5": actual,
                "source_name": source_name,
                "val_size": int(val_size),
                "split": "last val_size images of data_batch_1..5",
                "kmlp_version": __version__,
                "n_train": n_train,
                "n_val": int(val_size),
                "n_test": len(X_test),
            }
        )
        f.attrs["content_sha256"] = content = content_checksum(f)
    _say(progress, f"done in {time.perf_counter() - t0:.1f} s")
    return {
        "out": str(out),
        "source_md5": actual,
        "content_sha256": content,
        "source_name": source_name,
        "n_train": n_train,
        "n_val": int(val_size),
        "n_test": len(X_test),
        "train_channel_mean_rgb": [round(v, 6) for v in ch_mean],
        "train_channel_std_rgb": [round(v, 6) for v in ch_std],
    }


@dataclass
class Dataset:
    """The three splits normalised with the training mean/std, ready for training."""

    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    class_names: list[str]
    source_md5: str  # of the archive it was prepared from
    attrs: dict = field(default_factory=dict)
    content_sha256: str = ""  # of its arrays (see kmlp.files.content_checksum)


def _attrs(f) -> dict:
    return {
        k: (as_str(v) if isinstance(v, (bytes, str)) else v.item() if hasattr(v, "item") else v)
        for k, v in f.attrs.items()
    }


def _check_format(f, path) -> None:
    fmt = as_str(f.attrs.get("format", ""))
    if fmt.startswith("kmlp-cifar10/") and fmt != FORMAT:
        raise KmlpError(f"data file {path} has format {fmt}, not {FORMAT} (another kmlp version): prepare it again")
    if fmt != FORMAT:
        raise KmlpError(
            f"{path} is not a prepared CIFAR-10 file (format attribute {fmt!r}, expected {FORMAT!r}; run kmlp prepare)"
        )


def _normalised(images: np.ndarray, n: int, mean, std, rows: int = 256) -> np.ndarray:
    """(images[:n] - mean) / std in the dtype of ``mean``, ``rows`` images at a time, so
    each chunk is normalised while it is in cache and no float copy of the whole split
    is made twice."""
    X = np.empty((n, images.shape[1]), mean.dtype)
    for start in range(0, n, rows):
        x = X[start : start + rows]
        np.subtract(images[start : start + len(x)], mean, out=x)
        np.divide(x, std, out=x)
    return X


def load(path, dtype=np.float32, limit: int | None = None) -> Dataset:
    """Read a prepared file; X is (x - mean) / std in ``dtype``, y is int64.

    ``limit`` keeps only the first ``limit`` images of each split (a gradient check
    needs a handful, not 1.5 GB of float64); every array is still read whole, to verify
    its checksum. A damaged or edited file is a KmlpError naming it and the array.

    A dimension with zero training std (impossible on CIFAR-10, possible on toy data) is
    only centred. Pixels are cast straight to ``dtype`` and normalised in place, so
    asking for float32 never builds a float64 copy of the images.
    """
    dtype = np.dtype(dtype)
    what = f"data file {path}"
    with open_h5(path, "data file") as f:
        _check_format(f, path)
        try:
            mean = read(dataset(f, "stats/mean", what), what)
            std = read(dataset(f, "stats/std", what), what)
            m = mean.astype(dtype)
            s = np.where(std > 0, std, 1.0).astype(dtype)
            arrays = {}
            rows = slice(None) if limit is None else slice(0, limit)
            for split in SPLITS:
                images, labels = dataset(f, f"{split}/images", what), dataset(f, f"{split}/labels", what)
                if len(images.shape) != 2 or images.shape[1:] != mean.shape or labels.shape != images.shape[:1]:
                    raise KmlpError(
                        f"data file {path}: {split} images {images.shape} and "
                        f"labels {labels.shape} do not match the statistics {mean.shape}"
                    )
                arrays[f"y_{split}"] = read(labels, what)[rows].astype(np.int64)
                arrays[f"X_{split}"] = _normalised(read(images, what), len(arrays[f"y_{split}"]), m, s)
            names = [as_str(n) for n in read(dataset(f, "class_names", what), what)]
            content = as_str(attr(f, "content_sha256", what))
            if content != content_checksum(f):
                raise KmlpError(f"{what}: its arrays' checksums do not match content_sha256 (damaged or edited)")
            attrs = _attrs(f)
        except MemoryError:
            raise KmlpError(f"{what}: not enough memory to load it as {dtype}") from None
        except OSError as exc:
            raise KmlpError(f"data file {path} cannot be read (truncated or corrupt?): {exc}") from None
    return Dataset(
        **arrays,
        mean=mean,
        std=std,
        class_names=names,
        source_md5=str(attrs.get("source_md5", "")),
        content_sha256=content,
        attrs=attrs,
    )


def train_size(path) -> int:
    """The number of training images of a prepared file, reading only its shape."""
    with open_h5(path, "data file") as f:
        _check_format(f, path)
        return len(dataset(f, "train/labels", f"data file {path}"))


def source_md5(path) -> str:
    """The MD5 of the archive a prepared file came from, reading only that attribute."""
    with open_h5(path, "data file") as f:
        _check_format(f, path)
        if "source_md5" not in f.attrs:
            raise KmlpError(f"data file {path} has no source_md5 attribute")
        return as_str(f.attrs["source_md5"])
