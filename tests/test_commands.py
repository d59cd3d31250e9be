"""The verbs of kmlp.commands from the command line: train, gradcheck, bench."""

import json

import numpy as np
import pytest

from kmlp.cli import main
from kmlp.runs import FINAL_METRICS, read_run


def train(data, out, *extra):
    return main(
        [
            "train",
            "--data",
            str(data),
            "--out",
            str(out),
            "--hidden",
            "16",
            "--n-batch",
            "30",
            "--n-s",
            "10",
            "--cycles",
            "1",
            "--quiet",
            *extra,
        ]
    )


def test_train_writes_a_complete_run_file(data, tmp_path):
    assert (
        train(
            data, tmp_path / "r.h5", "--batch-norm", "--experiment", "x", "--seed", "3", "--paper", '{"val_acc": 0.5}'
        )
        == 0
    )
    run = read_run(tmp_path / "r.h5", weights=True)
    assert run.experiment == "x" and run.seed == 3 and run.status == "completed"
    assert run.paper == {"val_acc": 0.5}
    assert run.settings["n_s"] == 10 and run.model["batch_norm"] is True
    assert set(run.final) == set(FINAL_METRICS)
    assert all(np.isfinite(v) for v in run.final.values())
    assert run.history["step"][-1] == 20
    assert {"W1", "gamma1", "bn_mean1", "bn_var1", "W2"} <= set(run.weights)


def test_same_seed_gives_identical_bytes(data, tmp_path):
    for name in ("a.h5", "b.h5"):
        assert train(data, tmp_path / name, "--batch-norm", "--seed", "7") == 0
    assert (tmp_path / "a.h5").read_bytes() == (tmp_path / "b.h5").read_bytes()
    assert train(data, tmp_path / "c.h5", "--batch-norm", "--seed", "8") == 0
    assert (tmp_path / "c.h5").read_bytes() != (tmp_path / "a.h5").read_bytes()


def test_divergence_is_recorded_with_exit_0(data, tmp_path, capsys):
    assert train(data, tmp_path / "d.h5", "--eta-min", "1e4", "--eta-max", "1e6", "--lam", "0") == 0
    run = read_run(tmp_path / "d.h5")
    assert run.status == "diverged" and run.history["step"][-1] == run.stopped_at > 0
    assert "diverged" in capsys.readouterr().out


def test_a_diverged_run_records_and_prints_no_accuracy(data, tmp_path, capsys):
    """'Their test "accuracy" is argmax over NaN logits (0.08), and kmlp train prints it.'"""
    assert train(data, tmp_path / "d.h5", "--eta-min", "1e4", "--eta-max", "1e6", "--lam", "0") == 0
    run = read_run(tmp_path / "d.h5")
    assert run.status == "diverged"
    assert all(np.isnan(v) for v in run.final.values()), run.final
    out = capsys.readouterr().out
    assert "acc" not in out and f"diverged at update {run.stopped_at}" in out


@pytest.mark.parametrize(
    "args, message",
    [(["--init", "normal"], "init normal needs a sigma"), (["--n-batch", "100000"], "n_batch must be in")],
)
def test_bad_training_options_are_one_sentence(data, tmp_path, capsys, args, message):
    assert train(data, tmp_path / "x.h5", *args) == 1
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "x.h5").exists()


def test_missing_data_file(tmp_path, capsys):
    assert train(tmp_path / "nope.h5", tmp_path / "x.h5") == 1
    assert "does not exist" in capsys.readouterr().err


def test_gradcheck_cli_passes_and_fails(data, tmp_path, capsys):
    out = tmp_path / "g.json"
    assert (
        main(
            [
                "gradcheck",
                "--data",
                str(data),
                "--hidden",
                "8",
                "--batch-norm",
                "--input-dim",
                "6",
                "--n-samples",
                "10",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    doc = json.loads(out.read_text())
    assert doc["passed"] and doc["max_rel_error"] < 1e-6
    assert list(doc["parameters"]) == ["W1", "b1", "gamma1", "beta1", "W2", "b2"]
    assert main(["gradcheck", "--hidden", "8", "--max-rel-error", "1e-30", "--out", str(out)]) == 2
    assert "FAILED" in capsys.readouterr().out


def test_bench_reports_ratios(tmp_path, capsys, data):
    """Tiny sizes: the numbers hang together (floors, ratios, phases, speedup) and the
    table prints them; no timing is asserted."""
    out = tmp_path / "b.json"
    run = ["--data", str(data), "--n-s", "5", "--cycles", "1", "--eval-every", "5", "--eval-train-subset", "100"]
    args = [
        "bench",
        "--repeats",
        "1",
        "--updates",
        "2",
        "--run-rounds",
        "1",
        *run,
        "--n-batch",
        "50",
        "--out",
        str(out),
    ]
    assert main(args) == 0
    res = json.loads(out.read_text())
    text = capsys.readouterr().out

    def ms(t):  # CPU ms (wall ms), as the table prints a time
        return f"{t['cpu'] * 1e3:.3f} ({t['wall'] * 1e3:.3f})"

    for net in ("3-layer", "9-layer"):
        e = res["update"]["nets"][net]
        for clock in ("cpu", "wall"):  # the floor is the faster layout's; ratios are over the floors
            assert e["floor_s"][clock] == min(e["floor_dout_din_s"][clock], e["floor_din_dout_s"][clock])
            for kind in ("no_bn", "bn"):
                update = e[f"update_{kind}_s"][clock]
                assert e[f"ratio_{kind}"][clock] == pytest.approx(update / e["floor_s"][clock])
                assert e[f"ratio_{kind}_dout_din"][clock] == pytest.approx(update / e["floor_dout_din_s"][clock])
        # the table shows what was measured
        [line] = [line for line in text.splitlines() if line.startswith(f"  {net} ")]
        shown = [ms(e["floor_s"]), ms(e["update_no_bn_s"]), ms(e["update_bn_s"]), f"{e['ratio_bn']['cpu']:.2f}x"]
        assert all(cell in line for cell in shown), (line, shown)
    assert f"(not in the update): {ms(res['update']['gather_s'])} ms" in text
    kmlp = res["run"]["runs"]["kmlp"]
    assert kmlp["updates"] == 10 and kmlp["status"] == "completed"
    # step 0, 5 and 10 on 100 training + 30 validation images; then all 270 + 100 test
    assert kmlp["evaluated_images"] == 3 * (100 + 30) + 270 + 100
    # one round: the run's floor is its updates and images at the floor's per-unit times,
    # its ratio the run's time over that; its phases lie within the run's time
    for clock in ("cpu", "wall"):
        per_update, per_image = res["run"]["floor_per_update_s"][clock], res["run"]["floor_per_image_s"][clock]
        floor = kmlp["updates"] * per_update + kmlp["evaluated_images"] * per_image
        assert kmlp["floor_s"][clock] == pytest.approx(floor)
        assert kmlp["ratio"][clock] == pytest.approx(kmlp["total_s"][clock] / floor)
        phases = kmlp["load_s"][clock] + kmlp["updates_s"][clock] + kmlp["evaluation_s"][clock]
        assert phases <= kmlp["total_s"][clock]
    assert "(1 threads)" in res["environment"]["blas"]
    assert "x floor" in text and "whole run: 3-layer BN, 10 updates" in text
    if res["torch"]["available"]:
        torch_run = res["run"]["runs"]["torch"]
        assert torch_run["evaluated_images"] == kmlp["evaluated_images"]
        for clock in ("cpu", "wall"):  # one round: PyTorch's time over kmlp's
            speedup = torch_run["total_s"][clock] / kmlp["total_s"][clock]
            assert res["run"]["speedup_over_torch"][clock] == pytest.approx(speedup)
        assert f"kmlp is {res['run']['speedup_over_torch']['cpu']:.2f}x as fast as PyTorch" in text
    else:
        assert "PyTorch: not installed" in text and "torch" not in res["run"]["runs"]


def test_bench_without_a_whole_run(tmp_path):
    assert (
        main(["bench", "--repeats", "1", "--updates", "1", "--run-rounds", "0", "--out", str(tmp_path / "b.json")]) == 0
    )
    assert "run" not in json.loads((tmp_path / "b.json").read_text())


def test_run_records_the_data_sets_content_checksum_and_archive_md5(data, tmp_path):
    """'the runs still record the archive's MD5' (and nothing of the data set's content)"""
    import h5py

    from kmlp.data.dataset import load

    assert train(data, tmp_path / "r.h5") == 0
    run = read_run(tmp_path / "r.h5")
    ds = load(data)
    assert run.data_md5 == ds.source_md5 and len(run.data_md5) == 32
    with h5py.File(data) as f:
        assert run.data_sha256 == ds.content_sha256 == f.attrs["content_sha256"]
    assert len(run.data_sha256) == 64


@pytest.mark.parametrize("target, verb", [("weights/W1", "diagnose"), ("history/val_acc", "figure")])
def test_garbage_in_a_run_file_is_one_line_naming_it(data, tmp_path, capsys, target, verb):
    """'4 KB of garbage written into a run file's weights was read without complaint'"""
    import h5py

    run = tmp_path / "r.h5"
    assert train(data, run, "--batch-norm") == 0
    with h5py.File(run) as f:
        offset, size = f[target].id.get_offset(), f[target].id.get_storage_size()
    with open(run, "r+b") as f:
        f.seek(offset)
        f.write(np.random.default_rng(0).bytes(min(4096, size)))
    out = ["--out-tex", tmp_path / "d.tex", "--out-csv", tmp_path / "d.csv", "--data", data]
    argv = [verb, run, *(out if verb == "diagnose" else ["--out", tmp_path / "f.pdf"])]
    assert main([str(a) for a in argv]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert str(run) in err and target in err and "checksum" in err


def test_diagnose_refuses_a_data_set_other_than_the_one_trained_on(data, tmp_path, capsys):
    """A run records its data set's content checksum; a data set prepared again in its
    place (another hold-out) is not the one the weights were trained on."""
    import shutil

    local = tmp_path / "d.h5"
    shutil.copyfile(data, local)
    assert train(local, tmp_path / "r.h5", "--batch-norm") == 0
    archive = data.parent / "a.tar.gz"
    assert main(["prepare", "--archive", str(archive), "--md5", "skip", "--val-size", "20", "--out", str(local)]) == 0
    capsys.readouterr()
    out = ["--out-tex", str(tmp_path / "d.tex"), "--out-csv", str(tmp_path / "d.csv")]
    assert main(["diagnose", str(tmp_path / "r.h5"), "--data", str(local), *out]) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and str(local) in err and "checksum" in err, err


def test_gradcheck_uses_the_first_training_images_first_dimensions_normalised(data, tmp_path, monkeypatch):
    """`kmlp gradcheck --data`: the check runs on the first --input-dim dimensions of the
    first --n-samples training images, normalised by the training mean and std as
    training sees them, with their labels; not validation or test images, not random
    inputs. Read here from the HDF5 file directly."""
    import h5py

    import kmlp.nn.gradcheck as gradcheck

    seen = []
    real = gradcheck.run_check
    monkeypatch.setattr(gradcheck, "run_check", lambda s, X, y: seen.append((X.copy(), y.copy())) or real(s, X, y))
    out = tmp_path / "g.json"
    argv = [
        "gradcheck",
        "--data",
        str(data),
        "--hidden",
        "4",
        "--input-dim",
        "5",
        "--n-samples",
        "7",
        "--out",
        str(out),
    ]
    assert main(argv) == 0
    [(X, y)] = seen
    with h5py.File(data, "r") as f:
        images, labels = f["train/images"][:7, :5].astype(np.float64), f["train/labels"][:7]
        mean, std = f["stats/mean"][:5], f["stats/std"][:5]
        assert not np.array_equal(f["train/images"][:7], f["val/images"][:7])
    assert X.shape == (7, 5) and X.dtype == np.float64
    np.testing.assert_allclose(X, (images - mean) / std, rtol=1e-12)
    np.testing.assert_array_equal(y, labels)
    doc = json.loads(out.read_text())
    assert doc["settings"]["input_dim"] == 5 and doc["settings"]["n_samples"] == 7
    with h5py.File(data, "r") as f:
        assert doc["data_md5"] == f.attrs["source_md5"]
