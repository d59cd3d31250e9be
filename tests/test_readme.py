"""The README's commands work (issue 11, "README"): each row of its "Running parts" table
runs on the tiny config, and the install it gives has what `snakemake --report` needs."""

from __future__ import annotations

import ast
import importlib.metadata as md
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from cifar_fake import write_archive
from workflow_project import REPO, make_project

pytestmark = pytest.mark.slow


def running_parts() -> list[str]:
    """The commands of the README's "Running parts" table, in its order."""
    section = (REPO / "README.md").read_text().split("\n## Running parts\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^\| `([^`]+)` \|", section, re.M)


def run(argv: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """A README command as a user types it, with this interpreter's Snakemake and kmlp."""
    assert argv[0] == "snakemake"
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    return subprocess.run([sys.executable, "-m", *argv], cwd=cwd, env=env, capture_output=True, text=True)


def runs_made(root: Path) -> set[str]:
    return {p.relative_to(root / "results/runs").as_posix() for p in (root / "results/runs").rglob("*.h5")}


def test_every_command_of_the_running_parts_table_works_on_the_tiny_config(tmp_path):
    commands = running_parts()
    assert len(commands) == 8 and commands[0] == "snakemake --cores 2", commands
    # A checkout whose config is the tiny one, so the commands run as written.
    root = make_project(tmp_path / "kmlp")
    for name in ("workflow", "profiles", ".test"):
        (root / name).symlink_to(REPO / name)
    smoke = tmp_path / "smoke"
    smoke.mkdir()
    write_archive(smoke / "cifar-10-python.tar.gz")
    # The commands that build one target first, on an empty results/, then the rest.
    order = sorted(commands, key=lambda c: "results/" not in c)
    done = []
    for command in order:
        argv = shlex.split(command.replace("/tmp/smoke", str(smoke)))
        if "--profile" in argv:  # needs a SLURM cluster: tests/test_slurm.py runs it
            done.append(command)
            continue
        proc = run(argv, root)
        log = proc.stdout + proc.stderr
        if command.endswith("results/report/report.pdf") and not (shutil.which("latexmk") or shutil.which("pdflatex")):
            assert proc.returncode != 0  # "says so if absent"
            assert "no LaTeX installation found" in (root / "results/logs/report_pdf.log").read_text()
        else:
            assert proc.returncode == 0, f"{command}\n{log}"
        if command.endswith("figure1.png"):  # one figure, and only the runs it needs
            assert (root / "results/figures/figure1.png").exists()
            assert runs_made(root) == {"small-nobn/seed1.h5", "small-nobn/seed2.h5"}
        if command.endswith("table1_lambda.tex"):
            assert (root / "results/tables/table1_lambda.tex").exists()
            # its runs (with figure1's) and small-bn, pooled with them by the verdict (tiny config)
            assert {r.split("/")[0] for r in runs_made(root)} == {
                "small-nobn",
                "lambda-bn-0.1",
                "lambda-bn-0",
                "small-bn",
            }
        if command.startswith("snakemake --report"):
            names = zipfile.ZipFile(root / "report.zip").namelist()
            assert any(n.endswith("figure1.png") for n in names) and any(n.endswith("summary.csv") for n in names)
        if "--directory" in argv:
            assert (smoke / "results/report/report.tex").exists() and (smoke / "docs/reproduction.md").exists()
        done.append(command)
    assert (root / "docs/reproduction.md").exists()
    assert sorted(done) == sorted(commands)


def installed_with(extra: str) -> set[str]:
    """The distributions that `pip install -e ".[extra]"` installs: this checkout's
    requirements (pyproject.toml) and theirs, as installed here; canonical names."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    todo = [(text, set()) for text in [*project["dependencies"], *project["optional-dependencies"][extra]]]
    seen: set[str] = set()
    while todo:
        text, extras = todo.pop()
        req = Requirement(text)
        if req.marker is not None and not any(req.marker.evaluate({"extra": e}) for e in extras | {""}):
            continue
        key = canonicalize_name(req.name)
        if key in seen and not req.extras:
            continue
        seen.add(key)
        try:
            todo += [(t, set(req.extras)) for t in md.requires(req.name) or []]
        except md.PackageNotFoundError:
            pass
    return seen


def test_the_workflow_install_has_what_snakemake_report_imports():
    """'snakemake --report report.zip fails right after the README's install (pip install
    -e ".[workflow]"): pygments is missing from the extra.'"""
    import snakemake.report

    imported = set()
    for path in Path(snakemake.report.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                imported.add(node.module.split(".")[0])
    providers = md.packages_distributions()
    modules = imported - set(sys.stdlib_module_names)
    needed = {canonicalize_name(dist) for module in modules for dist in providers.get(module, [])}
    assert "pygments" in needed
    assert needed - installed_with("workflow") == set()
