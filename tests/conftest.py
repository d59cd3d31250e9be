"""Fixtures shared by test modules: the tiny workflow, run once per session."""

import pytest

from workflow_project import make_project, snakemake


@pytest.fixture(scope="session")
def tiny_project(tmp_path_factory):
    """A project on the tiny config (.test/config) after a full `snakemake --cores 2`.

    Tests that change files must work on a copy (shutil.copytree).
    """
    root = make_project(tmp_path_factory.mktemp("wf") / "project")
    snakemake(root, "--cores", "2")
    return root
