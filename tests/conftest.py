"""Fixtures shared by test modules: a small prepared data set, and the tiny workflow run
once per session."""

import os

import pytest

from cifar_fake import write_archive
from kmlp.cli import main
from workflow_project import make_project, snakemake


@pytest.fixture(scope="session")
def data(tmp_path_factory):
    """A prepared data set from a small archive in the official format: 270 training, 30
    validation and 100 test images."""
    root = tmp_path_factory.mktemp("data")
    md5 = write_archive(root / "a.tar.gz", n_train_per_batch=60, n_test=100, seed=0)
    argv = ["prepare", "--archive", str(root / "a.tar.gz"), "--md5", md5, "--val-size", "30"]
    assert main([*argv, "--out", str(root / "d.h5"), "--quiet"]) == 0
    return root / "d.h5"


@pytest.fixture(scope="session")
def tiny_project(tmp_path_factory):
    """A project on the tiny config (.test/config) after a full `snakemake --cores 2`.

    Tests that change files must work on a copy (shutil.copytree).
    """
    root = make_project(tmp_path_factory.mktemp("wf") / "project")
    snakemake(root, "--cores", "2")
    return root


# -- tests CI must run -------------------------------------------------------------------
# A test that needs something a machine may lack (a golden entry for its numeric
# environment, PyTorch, LaTeX, a SLURM cluster, the offline CIFAR-10 archive) skips without it, saying what goes
# unchecked. CI sets KMLP_MUST_RUN to what it provides (.ci/run), and then such a skip is
# a failure, and so is a run in which no test of a named kind ran at all: a green CI
# means the same on every machine. Mark a test with @pytest.mark.needs("<kind>"); the
# SLURM test's own marker `slurm` counts as needs("slurm").
MUST_RUN_KINDS = ("golden", "slurm", "torch", "latex", "archive")


def must_run() -> set[str]:
    return {k.strip() for k in os.environ.get("KMLP_MUST_RUN", "").split(",") if k.strip()}


def needs(item) -> set[str]:
    kinds = {m.args[0] for m in item.iter_markers("needs")}
    if item.get_closest_marker("slurm"):
        kinds.add("slurm")
    return kinds


def pytest_configure(config):
    config.addinivalue_line("markers", "needs(kind): needs one of " + ", ".join(MUST_RUN_KINDS) + " (KMLP_MUST_RUN)")
    unknown = must_run() - set(MUST_RUN_KINDS)
    if unknown:
        raise pytest.UsageError(f"KMLP_MUST_RUN names {sorted(unknown)}; known: {', '.join(MUST_RUN_KINDS)}")
    config.stash[_RAN] = dict.fromkeys(must_run(), 0)


_RAN = pytest.StashKey[dict]()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    report = (yield).get_result()
    kinds = needs(item) & must_run()
    if not kinds:
        return
    if report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"skipped, but KMLP_MUST_RUN={os.environ['KMLP_MUST_RUN']} requires it to run: {reason}"
    elif report.when == "call":
        for kind in kinds:
            item.config.stash[_RAN][kind] += 1


def pytest_sessionfinish(session, exitstatus):
    missing = sorted(k for k, n in session.config.stash.get(_RAN, {}).items() if n == 0)
    if missing and exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED, pytest.ExitCode.NO_TESTS_COLLECTED):
        session.config.stash[_MISSING] = missing
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


_MISSING = pytest.StashKey[list]()


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    missing = config.stash.get(_MISSING, [])
    if missing:
        terminalreporter.write_line(
            f"FAILED: KMLP_MUST_RUN names {', '.join(missing)}, but no such test ran", red=True, bold=True
        )
