"""CIFAR-10 reading, preparation and loading, on a tiny fake archive in the official format."""

from __future__ import annotations

import builtins
import hashlib
import io
import json
import os
import pickle
import resource
import struct
import subprocess
import sys
import tarfile

import h5py
import numpy as np
import pytest

import cifar_fake
from kmlp import cli
from kmlp.data import cifar
from kmlp.data.dataset import FORMAT, load, prepare, source_md5
from kmlp.errors import KmlpError

VAL = 30
N_PER_BATCH = 60
N_TEST = 100


def run_prepare(capsys, archive, md5, out, val_size=VAL):
    rc = cli.main(
        ["prepare", "--archive", str(archive), "--md5", md5, "--out", str(out), "--val-size", str(val_size), "--quiet"]
    )
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


def assert_refused(capsys, archive, md5, out, *words, val_size=VAL):
    """The CLI exits 1 with one sentence naming the problem, and writes no output."""
    rc, _, err = run_prepare(capsys, archive, md5, out, val_size)
    assert rc == 1, err
    assert "Traceback" not in err and err.startswith("kmlp prepare: error:")
    assert len(err.strip().splitlines()) == 1
    for word in words:
        assert word in err, err
    assert not out.exists()
    assert not [p for p in out.parent.iterdir() if ".tmp-" in p.name]
    return err


@pytest.fixture
def batches():
    return cifar_fake.make_batches(N_PER_BATCH, N_TEST, seed=3)


@pytest.fixture
def archive(tmp_path, batches):
    path = tmp_path / "cifar-10-python.tar.gz"
    return path, cifar_fake.write_archive(path, batches=batches)


# -- the happy path ------------------------------------------------------------------
def test_round_trip_exact_pixels_and_split_order(tmp_path, capsys, batches, archive):
    path, md5 = archive
    out = tmp_path / "cifar.h5"
    rc, stdout, err = run_prepare(capsys, path, md5, out)
    assert rc == 0, err

    X_all = np.concatenate([batches[n][b"data"] for n in cifar_fake.TRAIN])
    y_all = np.concatenate([batches[n][b"labels"] for n in cifar_fake.TRAIN])
    n_train = len(X_all) - VAL
    expect = {
        "train": (X_all[:n_train], y_all[:n_train]),
        "val": (X_all[n_train:], y_all[n_train:]),
        "test": (batches["test_batch"][b"data"], np.array(batches["test_batch"][b"labels"])),
    }

    with h5py.File(out) as f:
        for split, (X, y) in expect.items():
            assert f[f"{split}/images"].dtype == np.uint8 and f[f"{split}/labels"].dtype == np.uint8
            np.testing.assert_array_equal(f[f"{split}/images"][()], X)
            np.testing.assert_array_equal(f[f"{split}/labels"][()], y)
        assert f.attrs["format"] == FORMAT
        assert f.attrs["source_md5"] == md5 and f.attrs["source_name"] == path.name
        assert (f.attrs["n_train"], f.attrs["n_val"], f.attrs["n_test"]) == (n_train, VAL, N_TEST)
        assert f["stats/mean"].dtype == np.float64 and f["stats/mean"].shape == (3072,)

    ds = load(out)
    assert ds.class_names == [n.decode() for n in cifar_fake.CLASS_NAMES]
    assert ds.source_md5 == md5 == source_md5(out)
    for split, (X, y) in expect.items():
        Xn = getattr(ds, f"X_{split}")
        assert Xn.dtype == np.float32 and Xn.shape == X.shape
        assert getattr(ds, f"y_{split}").dtype == np.int64
        np.testing.assert_array_equal(getattr(ds, f"y_{split}"), y)
        np.testing.assert_array_equal(np.rint(Xn * ds.std + ds.mean).astype(np.uint8), X)
    assert load(out, dtype=np.float64).X_train.dtype == np.float64

    summary = json.loads(stdout)
    assert summary["n_train"] == n_train and summary["source_md5"] == md5
    planes = X_all[:n_train].reshape(n_train, 3, 1024) / 255
    np.testing.assert_allclose(summary["train_channel_mean_rgb"], planes.mean(axis=(0, 2)), atol=2e-6)
    np.testing.assert_allclose(summary["train_channel_std_rgb"], planes.std(axis=(0, 2)), atol=2e-6)


def test_statistics_come_from_the_training_split_only(tmp_path, batches, archive):
    path, md5 = archive
    ds = load(prepare(path, md5, tmp_path / "a.h5", val_size=VAL, progress=False)["out"])
    np.testing.assert_allclose(ds.X_train.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(ds.X_train.std(axis=0), 1, atol=1e-4)
    assert np.abs(ds.X_val.mean(axis=0)).max() > 0.1
    assert np.abs(ds.X_test.std(axis=0) - 1).max() > 0.1

    # change the validation images (the tail of data_batch_5) and the test images
    rng = np.random.default_rng(9)
    b5 = batches["data_batch_5"][b"data"]
    b5[-VAL:] = rng.integers(0, 256, size=b5[-VAL:].shape, dtype=np.uint8)
    batches["test_batch"][b"data"][:] = 255 - batches["test_batch"][b"data"]
    md5b = cifar_fake.write_archive(tmp_path / "b.tar.gz", batches=batches)
    ds_b = load(prepare(tmp_path / "b.tar.gz", md5b, tmp_path / "b.h5", val_size=VAL, progress=False)["out"])
    np.testing.assert_array_equal(ds_b.mean, ds.mean)
    np.testing.assert_array_equal(ds_b.std, ds.std)

    # ...whereas changing one training image does change them
    batches["data_batch_1"][b"data"][0] ^= 1
    md5c = cifar_fake.write_archive(tmp_path / "c.tar.gz", batches=batches)
    prepare(tmp_path / "c.tar.gz", md5c, tmp_path / "c.h5", val_size=VAL, progress=False)
    assert not np.array_equal(load(tmp_path / "c.h5").mean, ds.mean)


def test_two_prepares_give_identical_bytes(tmp_path, archive):
    path, md5 = archive
    a = prepare(path, md5, tmp_path / "a.h5", val_size=VAL, progress=False)
    b = prepare(path, "skip", tmp_path / "b.h5", val_size=VAL, progress=False)
    assert (tmp_path / "a.h5").read_bytes() == (tmp_path / "b.h5").read_bytes()
    assert a["source_md5"] == b["source_md5"] == md5


def test_fake_archive_is_deterministic(tmp_path):
    assert cifar_fake.write_archive(tmp_path / "a.tgz") == cifar_fake.write_archive(tmp_path / "b.tgz")


def test_folder_input_and_folder_checksum(tmp_path, capsys, batches, archive):
    path, md5 = archive
    prepare(path, md5, tmp_path / "from_archive.h5", val_size=VAL, progress=False)
    folder_md5 = cifar_fake.write_folder(tmp_path / "extracted", batches=batches)
    folder = tmp_path / "extracted" / "cifar-10-batches-py"
    h = hashlib.md5(b"".join((folder / n).read_bytes() for n in cifar.MEMBERS))
    assert h.hexdigest() == folder_md5

    for given in (folder, folder.parent):  # the folder itself or its parent
        out = tmp_path / f"{given.name}.h5"
        s = prepare(given, folder_md5, out, val_size=VAL, progress=False)
        assert s["source_md5"] == folder_md5 and s["source_name"] == "cifar-10-batches-py"
        a, b = load(out), load(tmp_path / "from_archive.h5")
        np.testing.assert_array_equal(a.X_train, b.X_train)
        np.testing.assert_array_equal(a.y_test, b.y_test)
    prepare(folder, "skip", tmp_path / "skip.h5", val_size=VAL, progress=False)

    err = assert_refused(capsys, folder, md5, tmp_path / "bad.h5", "MD5", folder_md5, md5)
    (folder / "test_batch").unlink()
    assert_refused(capsys, folder, "skip", tmp_path / "bad.h5", "test_batch")
    assert "expected" in err


def test_reader_ignores_extra_regular_members(tmp_path, batches):
    """The official archive also holds readme.html (so does the fake one)."""
    path = tmp_path / "x.tar.gz"
    cifar_fake.write_archive(path, batches=batches, extra_members=[("cifar-10-batches-py/notes.txt", b"x")])
    raw = cifar.read_archive(path)
    assert sorted(raw) == sorted(cifar.MEMBERS)


# -- bad inputs, through the CLI -----------------------------------------------------
def test_wrong_md5_leaves_no_output(tmp_path, capsys, archive):
    path, md5 = archive
    wrong = "0" * 32
    assert_refused(capsys, path, wrong, tmp_path / "out.h5", "MD5", md5, wrong)
    assert_refused(capsys, path, "not-an-md5", tmp_path / "out.h5", "--md5")


def test_truncated_or_non_archive(tmp_path, capsys, archive):
    path, _ = archive
    data = path.read_bytes()
    for name, content in [
        ("half.tar.gz", data[: len(data) // 2]),
        ("junk.tar.gz", b"hello" * 100),
        ("empty.tar.gz", b""),
    ]:
        (tmp_path / name).write_bytes(content)
        assert_refused(
            capsys, tmp_path / name, "skip", tmp_path / "out.h5", name, "truncated or not a gzip tar archive"
        )
    assert_refused(capsys, tmp_path / "nope.tar.gz", "skip", tmp_path / "out.h5", "does not exist")


def test_missing_member(tmp_path, capsys, batches):
    del batches["data_batch_3"]
    path = tmp_path / "a.tar.gz"
    cifar_fake.write_archive(path, batches=batches)
    assert_refused(capsys, path, "skip", tmp_path / "out.h5", "cifar-10-batches-py/data_batch_3")


@pytest.mark.parametrize(
    "member,edit,words",
    [
        ("data_batch_2", lambda d: d.update({b"data": d[b"data"][:, :3000]}), ["data_batch_2", "3072", "(60, 3000)"]),
        (
            "test_batch",
            lambda d: d.update({b"data": d[b"data"].astype(np.float32)}),
            ["test_batch", "uint8", "float32"],
        ),
        ("data_batch_1", lambda d: d.update({b"labels": d[b"labels"][:-1]}), ["data_batch_1", "59 entries", "60 rows"]),
        ("data_batch_4", lambda d: d[b"labels"].__setitem__(5, 10), ["data_batch_4", "0..9", "10"]),
        ("test_batch", lambda d: d[b"labels"].__setitem__(0, -1), ["test_batch", "0..9", "-1"]),
        ("data_batch_5", lambda d: d.pop(b"labels"), ["data_batch_5", "labels"]),
        ("batches.meta", lambda d: d.update({b"label_names": d[b"label_names"][:9]}), ["batches.meta", "10 names"]),
    ],
)
def test_malformed_batches_are_rejected(tmp_path, capsys, batches, member, edit, words):
    edit(batches[member])
    path = tmp_path / "a.tar.gz"
    cifar_fake.write_archive(path, batches=batches)
    assert_refused(capsys, path, "skip", tmp_path / "out.h5", *words)


def test_val_size_out_of_range(tmp_path, capsys, archive):
    path, md5 = archive
    assert_refused(capsys, path, md5, tmp_path / "out.h5", "--val-size", val_size=0)
    assert_refused(capsys, path, md5, tmp_path / "out.h5", "--val-size", "300", val_size=300)


class _Payload:
    def __init__(self, func, arg):
        self.func, self.arg = func, arg

    def __reduce__(self):
        return (self.func, (self.arg,))


@pytest.mark.parametrize("kind", ["system", "exec", "meta"])
def test_code_execution_pickle_is_refused(tmp_path, capsys, batches, kind):
    sentinel = tmp_path / "SENTINEL"
    if kind == "system":
        evil = _Payload(os.system, f"touch {sentinel}")
    else:
        evil = _Payload(builtins.exec, f"open({str(sentinel)!r}, 'w').close()")
    member = "batches.meta" if kind == "meta" else "data_batch_1"
    batches[member] = pickle.dumps({b"data": evil, b"labels": [0]}, protocol=2)
    path = tmp_path / "a.tar.gz"
    cifar_fake.write_archive(path, batches=batches)
    name = ".system" if kind == "system" else ".exec"  # posix.system, __builtin__.exec
    assert_refused(capsys, path, "skip", tmp_path / "out.h5", member, name, "refus")
    assert not sentinel.exists()
    with pytest.raises(KmlpError, match="refus"):
        cifar.loads(pickle.dumps(evil), "test pickle")
    assert not sentinel.exists()


def _link(name, target, type_=tarfile.SYMTYPE):
    ti = tarfile.TarInfo(name)
    ti.type, ti.linkname, ti.mtime = type_, target, 0
    return ti


@pytest.mark.parametrize(
    "extra,words",
    [
        (("../evil", b"boom"), ["'../evil'", ".."]),
        (("cifar-10-batches-py/../../evil", b"boom"), [".."]),
        (("/tmp/kmlp-test-absolute-evil", b"boom"), ["absolute"]),
        (_link("cifar-10-batches-py/link", "/etc/passwd"), ["symbolic link"]),
        (_link("cifar-10-batches-py/hard", "/etc/passwd", tarfile.LNKTYPE), ["hard link"]),
        (_link("cifar-10-batches-py/dev", "", tarfile.CHRTYPE), ["device"]),
    ],
)
def test_unsafe_tar_members_are_refused(tmp_path, capsys, batches, extra, words):
    work = tmp_path / "work"
    work.mkdir()
    path = work / "a.tar.gz"
    cifar_fake.write_archive(path, batches=batches, extra_members=[extra])
    before = sorted(p for p in tmp_path.rglob("*"))
    assert_refused(capsys, path, "skip", work / "out.h5", "refused", *words)
    assert sorted(p for p in tmp_path.rglob("*")) == before
    assert not os.path.exists("/tmp/kmlp-test-absolute-evil")


def test_symlink_in_place_of_a_batch_is_refused(tmp_path, capsys, batches):
    del batches["data_batch_1"]
    path = tmp_path / "a.tar.gz"
    cifar_fake.write_archive(
        path, batches=batches, extra_members=[_link("cifar-10-batches-py/data_batch_1", "data_batch_2")]
    )
    assert_refused(capsys, path, "skip", tmp_path / "out.h5", "data_batch_1", "link")


# -- loading bad files ---------------------------------------------------------------
@pytest.fixture
def prepared(tmp_path, archive):
    path, md5 = archive
    out = tmp_path / "ok.h5"
    prepare(path, md5, out, val_size=VAL, progress=False)
    return out


def test_load_rejects_corrupt_truncated_and_foreign_files(tmp_path, prepared):
    junk = tmp_path / "junk.h5"
    junk.write_bytes(os.urandom(4096))
    with pytest.raises(KmlpError, match="not a readable HDF5 file"):
        load(junk)
    with pytest.raises(KmlpError, match="does not exist"):
        load(tmp_path / "missing.h5")

    half = tmp_path / "half.h5"
    data = prepared.read_bytes()
    half.write_bytes(data[: len(data) // 2])
    with pytest.raises(KmlpError, match="half.h5"):
        load(half)

    foreign = tmp_path / "foreign.h5"
    with h5py.File(foreign, "w") as f:
        f["x"] = np.zeros(3)
    with pytest.raises(KmlpError, match="format attribute"):
        load(foreign)
    with pytest.raises(KmlpError, match="format attribute"):
        source_md5(foreign)

    incomplete = tmp_path / "incomplete.h5"
    incomplete.write_bytes(data)
    with h5py.File(incomplete, "a") as f:
        del f["val/labels"]
    with pytest.raises(KmlpError, match="has no dataset val/labels"):
        load(incomplete)


# -- untrusted input with `md5: skip`: bounds that hold without a checksum ----------
class _Strided:
    """Pickles as ``numpy.ndarray(shape, uint8, b"\\0", 0, zero strides)``: an array of
    any size over a single byte."""

    def __init__(self, *shape):
        self.shape = shape

    def __reduce__(self):
        return (np.ndarray, (self.shape, np.dtype(np.uint8), b"\0", 0, (0,) * len(self.shape)))


def huge_member_archive(path, batches, member="data_batch_1", size=2 << 30, chunk=16 << 20) -> None:
    """A .tar.gz of a few MB whose ``member`` is ``size`` zero bytes: the deflate stream of
    one chunk of zeros (flushed, so it stands alone) is repeated ``size // chunk`` times."""
    import zlib

    head = io.BytesIO()
    with tarfile.open(fileobj=head, mode="w", format=tarfile.GNU_FORMAT) as tf:
        tf.addfile(cifar_fake._info(cifar_fake.FOLDER, type_=tarfile.DIRTYPE, mode=0o755))
    head = head.getvalue()[:512]  # the folder entry, without the end-of-archive blocks
    head += cifar_fake._info(f"{cifar_fake.FOLDER}/{member}", size).tobuf(tarfile.GNU_FORMAT)
    rest = io.BytesIO()
    with tarfile.open(fileobj=rest, mode="w", format=tarfile.GNU_FORMAT) as tf:
        for name, obj in batches.items():
            if name != member:
                data = cifar_fake.member_bytes(obj)
                tf.addfile(cifar_fake._info(f"{cifar_fake.FOLDER}/{name}", len(data)), io.BytesIO(data))
    rest = rest.getvalue()

    def deflate(data, mode):
        c = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
        return c.compress(data) + c.flush(mode)

    zeros = bytes(chunk)
    crc = zlib.crc32(head)
    for _ in range(size // chunk):
        crc = zlib.crc32(zeros, crc)
    crc = zlib.crc32(rest, crc)
    block = deflate(zeros, zlib.Z_FULL_FLUSH)
    with open(path, "wb") as f:
        f.write(b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff")
        f.write(deflate(head, zlib.Z_FULL_FLUSH))
        for _ in range(size // chunk):
            f.write(block)
        f.write(deflate(rest, zlib.Z_FINISH))
        f.write(struct.pack("<II", crc, (len(head) + size + len(rest)) & 0xFFFFFFFF))


def prepare_with_memory_limit(source, out, limit=1 << 30):
    """`kmlp prepare --md5 skip` in a process whose address space is capped at ``limit``."""

    def cap():
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    argv = ["prepare", "--archive", source, "--md5", "skip", "--val-size", VAL, "--out", out, "--quiet"]
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "kmlp", *map(str, argv)],
        preexec_fn=cap,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


def assert_bomb_refused(proc, out, *words):
    assert proc.returncode == 1, proc.stderr
    err = proc.stderr
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert err.startswith("kmlp prepare: error:")
    for word in words:
        assert word in err, err
    assert not out.exists()


def test_zero_stride_pickle_is_refused_under_a_memory_limit(tmp_path, batches):
    """'a 301-byte pickle builds a zero-stride array that check_batch expands to 2.86 GiB'"""
    bomb = pickle.dumps({b"data": _Strided(1_000_000, 3072), b"labels": _Strided(1_000_000)}, protocol=2)
    assert len(bomb) < 400
    batches["data_batch_2"] = bomb
    path = tmp_path / "a.tar.gz"
    cifar_fake.write_archive(path, batches=batches)
    proc = prepare_with_memory_limit(path, tmp_path / "out.h5")
    assert_bomb_refused(proc, tmp_path / "out.h5", "data_batch_2", "numpy.ndarray")


def test_zero_stride_array_is_refused_by_the_unpickler():
    with pytest.raises(KmlpError, match="numpy.ndarray"):
        cifar.loads(pickle.dumps(_Strided(10, 3072), protocol=2), "test pickle")
    np.testing.assert_array_equal(cifar.loads(pickle.dumps(np.arange(6).reshape(2, 3))), np.arange(6).reshape(2, 3))


def test_huge_tar_member_is_refused_before_reading_under_a_memory_limit(tmp_path, batches):
    """'a 3 MB .tar.gz holding a 2 GB member is read whole'"""
    path = tmp_path / "a.tar.gz"
    huge_member_archive(path, batches)
    assert path.stat().st_size < 5_000_000
    proc = prepare_with_memory_limit(path, tmp_path / "out.h5")
    assert_bomb_refused(proc, tmp_path / "out.h5", "data_batch_1", "2147483648 bytes")


def test_huge_folder_file_is_refused_before_reading_under_a_memory_limit(tmp_path, batches):
    cifar_fake.write_folder(tmp_path / "extracted", batches=batches)
    huge = tmp_path / "extracted" / cifar_fake.FOLDER / "test_batch"
    with open(huge, "r+b") as f:
        f.truncate(2 << 30)  # sparse: takes no disk space
    proc = prepare_with_memory_limit(tmp_path / "extracted", tmp_path / "out.h5")
    assert_bomb_refused(proc, tmp_path / "out.h5", "test_batch", "2147483648 bytes")


# -- integrity of contents: the data set carries checksums of its arrays --------------
def test_edited_pixels_are_detected_on_load(tmp_path, capsys, prepared):
    """'Edited pixels in cifar10.h5 are accepted'"""
    edited = tmp_path / "edited.h5"
    edited.write_bytes(prepared.read_bytes())
    with h5py.File(edited, "a") as f:
        f["train/images"][0, 0] ^= 1
    with pytest.raises(KmlpError, match="train/images"):
        load(edited)
    with pytest.raises(KmlpError, match="train/images"):
        load(edited, limit=5)  # a gradient check reads 5 images but verifies all
    argv = ["train", "--data", edited, "--out", tmp_path / "r.h5", "--n-batch", "30", "--quiet"]
    assert cli.main([str(a) for a in argv]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert str(edited) in err and "train/images" in err and "checksum" in err
    assert not (tmp_path / "r.h5").exists()


def test_a_data_set_without_checksums_is_refused(tmp_path, prepared):
    old = tmp_path / "old.h5"
    old.write_bytes(prepared.read_bytes())
    with h5py.File(old, "a") as f:
        del f["val/labels"].attrs["sha256"]
    with pytest.raises(KmlpError, match="val/labels has no checksum"):
        load(old)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_load_normalises_chunk_by_chunk_as_in_one_piece(prepared, dtype):
    from kmlp.data.dataset import _normalised

    with h5py.File(prepared) as f:
        images = f["train/images"]
        m, s = f["stats/mean"][()].astype(dtype), f["stats/std"][()].astype(dtype)
        whole = (images[()].astype(dtype) - m) / s
        for n, rows in ((len(whole), 7), (len(whole), 256), (10, 3), (0, 4)):
            assert _normalised(images, n, m, s, rows).tobytes() == whole[:n].tobytes()
    ds = load(prepared, dtype=dtype, limit=5)
    assert ds.X_train.tobytes() == whole[:5].tobytes() and len(ds.y_train) == 5
