"""Read the CIFAR-10 "python version" safely: no code from a pickle, no file from a tar,
no more memory than the bytes given, even when no checksum vouches for them.

The official batches are pickles, and unpickling runs whatever a pickle names; so the
unpickler here resolves only the few NumPy globals an array needs and refuses the rest.
An array is built only as NumPy pickles one, from its own bytes (whose length must match
its shape), never over a buffer with strides of the pickle's choosing. A .tar.gz is
read member by member into memory (never extracted), a member (or a folder's file)
larger than :data:`MEMBER_LIMIT` is refused before it is read, and an archive with a
member that could land outside a folder (absolute path, ``..``, link, device) is refused
as a whole.
"""

from __future__ import annotations

import io
import pickle
import tarfile
import zlib
from functools import cache
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from ..errors import KmlpError

if TYPE_CHECKING:
    import numpy as np

# Importing this module loads no NumPy (the functions that build arrays import it): the
# sizes below are read when the workflow plans (kmlp.study), in a process without NumPy.

FOLDER = "cifar-10-batches-py"
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCH = "test_batch"
META = "batches.meta"
#: the fixed member order; also the order of the folder checksum (see dataset.prepare)
MEMBERS = (META, *TRAIN_BATCHES, TEST_BATCH)
#: CIFAR-10's sizes: pixels per image (32 x 32 x 3), classes, images in the five training
#: batches together and in the test batch
N_DIM = 3072
N_CLASSES = 10
TRAIN_IMAGES = 50000
TEST_IMAGES = 10000
#: the largest member of the official archive (a batch) has 31,035,704 bytes
MEMBER_LIMIT = 64 << 20


def _latin1_encode(text, encoding="latin1"):
    """``_codecs.encode`` as Python 3 protocol-2 pickles use it for bytes, latin-1 only."""
    if encoding not in ("latin1", "latin-1") or not isinstance(text, str):
        raise KmlpError(f"the pickle asks _codecs.encode for encoding {encoding!r}; only latin1 is allowed")
    return text.encode("latin1")


class _ArrayClass:
    """What ``numpy.ndarray`` stands for in a pickle: only the class argument of numpy's
    ``_reconstruct``. Called itself, it would make an array over a buffer with strides
    the pickle chooses (a 300-byte pickle can stand for gigabytes); that is refused."""

    def __init__(self, what: str):
        self.what = what

    def __call__(self, *args, **kwargs):
        raise KmlpError(
            f"{self.what} calls numpy.ndarray to make an array over a buffer with its own "
            "strides, which a CIFAR-10 batch never does; refusing to load it"
        )


def _empty_array(cls, shape, dtype):
    """numpy's ``_reconstruct`` as its pickles use it: an empty array, which the pickle's
    next step fills from its bytes (``ndarray.__setstate__`` checks their length)."""
    if not isinstance(cls, _ArrayClass):
        raise KmlpError(f"a pickle asks numpy to reconstruct a {cls!r}; only arrays are allowed")
    import numpy as np

    try:  # NumPy >= 2
        from numpy._core.multiarray import _reconstruct
    except ImportError:  # pragma: no cover - NumPy 1.x
        from numpy.core.multiarray import _reconstruct
    return _reconstruct(np.ndarray, (0,), dtype)


@cache
def _allowed() -> dict:
    """The globals a CIFAR-10 pickle may name, and what each stands for here."""
    import numpy as np

    return {
        ("numpy.core.multiarray", "_reconstruct"): _empty_array,
        ("numpy._core.multiarray", "_reconstruct"): _empty_array,
        ("numpy", "dtype"): np.dtype,
        ("_codecs", "encode"): _latin1_encode,
    }


class SafeUnpickler(pickle.Unpickler):
    """An unpickler that can build NumPy arrays, dicts, lists and scalars, nothing else."""

    what = "pickle"

    def find_class(self, module, name):
        if (module, name) == ("numpy", "ndarray"):
            return _ArrayClass(self.what)
        try:
            return _allowed()[(module, name)]
        except KeyError:
            raise KmlpError(
                f"{self.what} refers to {module}.{name}, which a CIFAR-10 batch never "
                "needs; refusing to load it (it could run code)"
            ) from None


def loads(data: bytes, what: str = "pickle"):
    """Unpickle ``data`` with :class:`SafeUnpickler`; ``what`` names it in errors."""
    unpickler = SafeUnpickler(io.BytesIO(data), encoding="bytes")
    unpickler.what = what
    try:
        return unpickler.load()
    except (KmlpError, MemoryError):
        raise
    except Exception as exc:  # a corrupt pickle can raise almost anything
        raise KmlpError(f"{what} is not a valid pickle ({type(exc).__name__}: {exc})") from None


# -- validation ----------------------------------------------------------------------
def _as_dict(obj, what: str) -> dict:
    if not isinstance(obj, dict):
        raise KmlpError(f"{what} should hold a dict but holds a {type(obj).__name__}")
    return {k.encode() if isinstance(k, str) else k: v for k, v in obj.items()}


def check_batch(obj, what: str) -> tuple[np.ndarray, np.ndarray]:
    """Return (data uint8 N x 3072, labels uint8 N) of one batch dict, or raise."""
    import numpy as np

    d = _as_dict(obj, what)
    for key in (b"data", b"labels"):
        if key not in d:
            raise KmlpError(f"{what} has no {key!r} entry (found keys {sorted(d)})")
    data = d[b"data"]
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != N_DIM:
        found = (
            f"a {data.dtype} array of shape {data.shape}"
            if isinstance(data, np.ndarray)
            else f"a {type(data).__name__}"
        )
        raise KmlpError(f"{what}: b'data' should be an N x {N_DIM} uint8 array but is {found}")
    try:
        labels = np.asarray(d[b"labels"])
    except Exception:
        labels = np.asarray(None)
    if labels.ndim != 1 or labels.dtype.kind not in "iu":
        raise KmlpError(
            f"{what}: b'labels' should be a list of integers but is "
            f"{type(d[b'labels']).__name__} ({labels.dtype}, shape {labels.shape})"
        )
    if len(labels) != len(data):
        raise KmlpError(f"{what}: b'labels' has {len(labels)} entries but b'data' has {len(data)} rows")
    if len(labels) and (labels.min() < 0 or labels.max() >= N_CLASSES):
        raise KmlpError(
            f"{what}: labels should be in 0..{N_CLASSES - 1} but range from {labels.min()} to {labels.max()}"
        )
    return np.ascontiguousarray(data), labels.astype(np.uint8)


def check_meta(obj, what: str) -> list[str]:
    """Return the 10 class names of batches.meta, or raise."""
    d = _as_dict(obj, what)
    names = d.get(b"label_names")
    if (
        not isinstance(names, (list, tuple))
        or len(names) != N_CLASSES
        or not all(isinstance(n, (bytes, str)) for n in names)
    ):
        raise KmlpError(f"{what}: b'label_names' should be a list of {N_CLASSES} names but is {names!r:.80}")
    return [n.decode("utf-8", "replace") if isinstance(n, bytes) else n for n in names]


# -- sources -------------------------------------------------------------------------
def _too_large(size: int) -> str:
    return f"has {size} bytes, more than any CIFAR-10 member ({MEMBER_LIMIT} at most); refusing to read it"


def _unsafe_reason(m: tarfile.TarInfo) -> str | None:
    """Why a member could write outside its folder (or be anything but data), or None."""
    if m.name.startswith("/") or PurePosixPath(m.name).is_absolute():
        return "has an absolute path"
    if ".." in PurePosixPath(m.name).parts:
        return "has a '..' path component"
    if m.issym() or m.islnk():
        return f"is a {'symbolic' if m.issym() else 'hard'} link to {m.linkname!r}"
    if not (m.isreg() or m.isdir()):
        return "is a device, FIFO or other special file"
    return None


def read_archive(path) -> dict[str, bytes]:
    """The raw bytes of the 7 wanted members of a tar(.gz), read in memory in one pass."""
    path = Path(path)
    wanted = {f"{FOLDER}/{name}": name for name in MEMBERS}
    found: dict[str, bytes] = {}
    try:
        with tarfile.open(path, mode="r|*", bufsize=1 << 20) as tf:
            for m in tf:
                reason = _unsafe_reason(m)
                if reason:
                    raise KmlpError(f"archive {path} is refused: member {m.name!r} {reason}")
                if m.name not in wanted:
                    continue  # readme.html, the folder entry itself
                name = wanted[m.name]
                if m.size > MEMBER_LIMIT:
                    raise KmlpError(f"archive {path}: member {m.name} {_too_large(m.size)}")
                if not m.isreg():
                    raise KmlpError(f"archive {path}: member {m.name} should be a regular file")
                if name in found:
                    raise KmlpError(f"archive {path}: member {m.name} appears twice")
                found[name] = tf.extractfile(m).read()
                if len(found[name]) != m.size:
                    raise EOFError(f"member {m.name} ends early")
    except KmlpError:
        raise
    except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
        raise KmlpError(f"{path} is truncated or not a gzip tar archive ({exc})") from None
    for name in MEMBERS:
        if name not in found:
            raise KmlpError(f"archive {path} has no member {FOLDER}/{name}")
    return found


def folder_of(path) -> Path:
    """The cifar-10-batches-py folder itself, given it or its parent."""
    path = Path(path)
    return path / FOLDER if (path / FOLDER).is_dir() else path


def folder_files(path) -> list[Path]:
    """The 7 member files of an extracted folder in :data:`MEMBERS` order; all must exist
    and none may be larger than :data:`MEMBER_LIMIT`."""
    folder = folder_of(path)
    files = [folder / name for name in MEMBERS]
    for f in files:
        if not f.is_file():
            raise KmlpError(f"folder {folder} has no file {f.name}")
        if f.stat().st_size > MEMBER_LIMIT:
            raise KmlpError(f"folder {folder}: file {f.name} {_too_large(f.stat().st_size)}")
    return files


def read_folder(path) -> dict[str, bytes]:
    return {f.name: f.read_bytes() for f in folder_files(path)}


def parse(raw: dict[str, bytes], source) -> dict:
    """Unpickle and validate members: {'train': [(X, y)] * 5, 'test': (X, y), 'class_names'}.

    Each member's bytes are dropped from ``raw`` once parsed, to keep peak memory low.
    """

    def load(name):
        return loads(raw.pop(name), f"{source}: member {name}")

    names = check_meta(load(META), f"{source}: member {META}")
    train = [check_batch(load(n), f"{source}: member {n}") for n in TRAIN_BATCHES]
    test = check_batch(load(TEST_BATCH), f"{source}: member {TEST_BATCH}")
    return {"train": train, "test": test, "class_names": names}
