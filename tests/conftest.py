"""Fixtures shared by test modules: a small prepared data set, and the tiny workflow run
once per session."""

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
