"""Fixtures shared by test modules: a small prepared data set, and the tiny workflow run
once per session (once for all of pytest-xdist's workers); and what CI's log shows."""

import fcntl
import os
import shutil
from contextlib import contextmanager

import pytest

from cifar_fake import write_archive
from kmlp.cli import main
from workflow_project import make_project, snakemake


def shared_dir(tmp_path_factory):
    """The session's temporary folder that every pytest-xdist worker of it sees."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@contextmanager
def locked(path):
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def made_once(tmp_path_factory, name, make):
    """``name`` in the shared folder, made by ``make(folder)`` by the first worker that asks
    (the others wait for it) and reused by every other: the work is done once a session."""
    root = shared_dir(tmp_path_factory)
    target = root / name
    with locked(root / f"{name}.lock"):
        if not (root / f"{name}.done").exists():
            shutil.rmtree(target, ignore_errors=True)
            target.mkdir()
            make(target)
            (root / f"{name}.done").touch()
    return target


@pytest.fixture(scope="session")
def data(tmp_path_factory):
    """A prepared data set from a small archive in the official format: 270 training, 30
    validation and 100 test images."""

    def make(root):
        md5 = write_archive(root / "a.tar.gz", n_train_per_batch=60, n_test=100, seed=0)
        argv = ["prepare", "--archive", str(root / "a.tar.gz"), "--md5", md5, "--val-size", "30"]
        assert main([*argv, "--out", str(root / "d.h5"), "--quiet"]) == 0

    return made_once(tmp_path_factory, "data", make) / "d.h5"


@pytest.fixture(scope="session")
def tiny_project(tmp_path_factory):
    """A project on the tiny config (.test/config) after a full `snakemake --cores 2`.

    Tests that change files must work on a copy (shutil.copytree).
    """

    def make(root):
        snakemake(make_project(root / "project"), "--cores", "2")

    return made_once(tmp_path_factory, "wf", make) / "project"


#: The order pytest-xdist hands whole files to its three workers (`--dist loadfile
#: --no-loadscope-reorder`): the SLURM tests first, the run's longest path; each worker is
#: given two files at the start, so the SLURM worker's second is a short one; the retraining
#: at the report's scale after those, the rest as workers free up.
FIRST = ("test_slurm.py", "test_workflow.py", "test_readme.py", "test_two_valued.py", "test_edges.py")
FIRST += ("test_search.py", "test_retrained.py")


def pytest_collection_modifyitems(items):
    items.sort(key=lambda item: FIRST.index(item.path.name) if item.path.name in FIRST else len(FIRST))


@pytest.fixture
def ci_log(request):
    """``ci_log(text)``: text for the end of the test run's output (CI's log), from any
    worker."""
    return lambda text: request.node.user_properties.append(("ci_log", text))


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
        report.user_properties.append(("ran", sorted(kinds)))  # counted where the session ends


def pytest_runtest_logreport(report):
    """Counts the tests of each KMLP_MUST_RUN kind that ran (in the process that ends the
    session: pytest-xdist's controller, or pytest's own)."""
    for key, kinds in getattr(report, "user_properties", []):
        if key == "ran" and report.when == "call":
            for kind in kinds:
                _COUNTS[kind] = _COUNTS.get(kind, 0) + 1


_COUNTS: dict[str, int] = {}


def pytest_sessionfinish(session, exitstatus):
    if os.environ.get("PYTEST_XDIST_WORKER"):
        return  # the controller counts
    missing = sorted(k for k in must_run() if not _COUNTS.get(k))
    if missing and exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED, pytest.ExitCode.NO_TESTS_COLLECTED):
        session.config.stash[_MISSING] = missing
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


_MISSING = pytest.StashKey[list]()


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    for report in terminalreporter.stats.get("passed", []) + terminalreporter.stats.get("failed", []):
        for key, text in getattr(report, "user_properties", []):
            if key == "ci_log" and report.when == "call":
                terminalreporter.write_line(f"\n-- {report.nodeid}:\n{text}")
    missing = config.stash.get(_MISSING, [])
    if missing:
        terminalreporter.write_line(
            f"FAILED: KMLP_MUST_RUN names {', '.join(missing)}, but no such test ran", red=True, bold=True
        )
