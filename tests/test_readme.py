"""The README's commands work (issue 11, "README"): each row of its "Running parts" table
runs on the tiny config, its other `snakemake` lines plan what it says (dry runs), its
`kmlp --help` lines, Python example and lint line run as written, and the install lines
(which need the network) name extras and an environment.yml that hold what they rely on."""

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

import numpy as np
import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

from cifar_fake import write_archive
from test_workflow import planned_jobs
from workflow_project import LATEX, REPO, make_project, path_without

pytestmark = pytest.mark.slow


def readme() -> str:
    return (REPO / "README.md").read_text()


def section(title: str) -> str:
    """The text of the README's section ``## title``."""
    return readme().split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


def code_blocks(language: str) -> list[str]:
    """The README's fenced code blocks in ``language``, in its order."""
    return re.findall(rf"^```{language}\n(.*?)^```$", readme(), re.M | re.S)


def running_parts() -> list[str]:
    """The commands of the README's "Running parts" table, in its order."""
    return re.findall(r"^\| `([^`]+)` \|", section("Running parts"), re.M)


def user_env(path: str | None = None) -> dict[str, str]:
    """The environment of a user who activated this interpreter's venv (on ``path``, by
    default this process's PATH)."""
    path = os.environ.get("PATH", "") if path is None else path
    return {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{path}"}


def run(argv: list[str], cwd: Path, path: str | None = None) -> subprocess.CompletedProcess:
    """A README command as a user types it, with this interpreter's Snakemake and kmlp."""
    assert argv[0] == "snakemake"
    return subprocess.run([sys.executable, "-m", *argv], cwd=cwd, env=user_env(path), capture_output=True, text=True)


def shell(script: str, cwd: Path) -> subprocess.CompletedProcess:
    """README lines as a user pastes them into bash, in the activated venv."""
    return subprocess.run(["bash", "-c", script], cwd=cwd, env=user_env(), capture_output=True, text=True)


def runs_made(root: Path) -> set[str]:
    return {p.relative_to(root / "results/runs").as_posix() for p in (root / "results/runs").rglob("*.h5")}


def test_every_command_of_the_running_parts_table_works_on_the_tiny_config(tmp_path):
    commands = running_parts()
    assert len(commands) == 8 and commands[0] == "snakemake --cores 2", commands
    # A checkout whose config is the tiny one, so the commands run as written.
    root = make_project(tmp_path / "kmlp")
    tiny = yaml.safe_load((root / "config/config.yaml").read_text())
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
        if command.endswith("results/report/report.pdf"):
            # "says so if absent", on every machine: LaTeX hidden from PATH. The compile
            # itself: tests/test_workflow.py::test_the_report_compiles_with_latex.
            proc = run(argv, root, path=path_without(LATEX, tmp_path / "bin"))
            assert proc.returncode != 0
            assert "no LaTeX installation found" in (root / "results/logs/report_pdf.log").read_text()
            assert not (root / "results/report/report.pdf").exists()
        else:
            proc = run(argv, root)
            assert proc.returncode == 0, f"{command}\n{proc.stdout}{proc.stderr}"
        if command.endswith("figure1.png"):  # one figure, and only the runs it needs
            figure1 = (root / "results/figures/figure1.png").read_bytes()
            assert figure1.startswith(b"\x89PNG\r\n\x1a\n")
            assert runs_made(root) == {"small-nobn/seed1.h5", "small-nobn/seed2.h5"}
        if command.endswith("table1_lambda.tex"):
            tex = (root / "results/tables/table1_lambda.tex").read_text()
            assert "% experiments: lambda-bn-0.1 (seeds 1,2); lambda-bn-0 (seeds 1,2,3)\n" in tex
            assert "\\caption{Validation accuracy over lambda (tiny).}" in tex
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
        if "--directory" in argv:  # the smoke run made the report's source and the record
            judged = [e for e, spec in tiny["experiments"].items() if spec.get("paper")]
            assert_made_everything(smoke, tiny, judged)
        done.append(command)
    # the full run left the single target's figure alone; the record shows it
    assert (root / "results/figures/figure1.png").read_bytes() == figure1
    assert_made_everything(root, tiny, [e for e, spec in tiny["experiments"].items() if spec.get("paper")])
    assert sorted(done) == sorted(commands)


def assert_made_everything(root: Path, cfg: dict, judged: list[str]) -> None:
    """The report's source inputs every table and figure, and the record judges every
    experiment with a paper value and shows every figure as the workflow drew it."""
    report = (root / "results/report/report.tex").read_text()
    for table in ["summary", "gradcheck", *cfg["tables"]]:
        assert f"\\input{{../tables/{table}.tex}}" in report, table
    for figure in cfg["figures"]:
        assert f"../figures/{figure}.pdf}}" in report, figure
        shown = (root / "docs/figures" / f"{figure}.png").read_bytes()
        assert shown == (root / "results/figures" / f"{figure}.png").read_bytes(), figure
    record = (root / "docs/reproduction.md").read_text()
    for experiment in judged:
        assert f"| {experiment} |" in record, experiment


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


def test_the_install_lines_name_extras_and_an_environment_that_exist():
    """pip and conda need the network, so the README's install lines are checked for what
    they rely on: each extra they name is in pyproject.toml (torch pinned as said), and
    environment.yml (the conda line) asks for the package's and the workflow extra's
    requirements with the same bounds, and nothing the extras do not have."""
    text = readme()
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    named = set(re.findall(r'pip install -e "\.\[(\w+)\]"', text))
    assert named == {"workflow", "test", "bench"} and named <= set(extras)
    torch = re.search(r"torch pinned to (\d[\d.]*\d)", text).group(1)
    assert extras["bench"] == [f"torch=={torch}"]
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    assert f"conda env create -f environment.yml && conda activate {env['name']}" in text
    conda, pip = {}, None
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            pip = dep["pip"]
            continue
        name, _, spec = dep.partition(" ")
        conda[{"matplotlib-base": "matplotlib"}.get(name, name)] = str(SpecifierSet(spec.replace(" ", "")))
    assert pip == ["-e ."]  # the package itself, from this checkout
    assert conda.pop("python") == project["requires-python"] and conda.pop("pip") == ""

    def specs(texts):
        return {canonicalize_name(r.name): str(r.specifier) for r in map(Requirement, texts)}

    needed = specs([*project["dependencies"], *extras["workflow"]])
    allowed = {**specs(extras["test"]), **needed}
    assert needed.items() <= conda.items()
    assert conda.items() <= allowed.items()


def test_kmlp_help_lists_the_verbs_the_readme_names():
    m = re.search(r"`(kmlp --help)` \(or `(python -m kmlp --help)`\) lists the verbs \(([^)]*)\)", readme())
    assert m, "the README's kmlp --help sentence"
    verbs = re.findall(r"`([^`]+)`", m.group(3))
    assert len(verbs) == 22 and verbs[0] == "download", verbs
    for command in m.group(1, 2):
        proc = shell(command, REPO)
        assert proc.returncode == 0, f"{command}\n{proc.stdout}{proc.stderr}"
        listed = re.findall(r"^ {4}(\S+)", proc.stdout.split("positional arguments:", 1)[1], re.M)
        assert sorted(listed) == sorted(verbs), command


def test_the_python_api_example_runs_as_written():
    """The example as it was raised "batch-norm statistics are unset: train first": it
    evaluated a net with batch norm that had never been updated."""
    [code] = code_blocks("python")
    names: dict = {}
    exec(compile(code, "README.md", "exec"), names)
    model, X = names["model"], names["X"]
    order = ["W1", "b1", "gamma1", "beta1", "W2", "b2", "gamma2", "beta2", "W3", "b3"]
    assert list(model.parameters()) == order and list(names["grads"]) == order
    assert np.isfinite(names["cost"]) and np.isfinite(names["loss"])
    assert names["logits"].shape == (X.shape[0], 10) and np.isfinite(names["logits"]).all()
    # the update is what sets the averages, as the comment says
    [update] = [line for line in code.splitlines() if ".train_step(" in line]
    with pytest.raises(RuntimeError, match="train first"):
        exec(compile(code.replace(update, ""), "README.md", "exec"), {})


def offline_checkout(tmp_path: Path) -> tuple[Path, str]:
    """A checkout with the real config, beside ``../shared/data/cifar-10-python.tar.gz``
    as in our workplace (config/rebuild-archive.yaml's path): there, a small archive in
    the official format. Returns the checkout and the archive's MD5."""
    root = tmp_path / "kmlp"
    (root / "docs").mkdir(parents=True)
    shutil.copytree(REPO / "config", root / "config", ignore=shutil.ignore_patterns("local.yaml"))
    shutil.copy(REPO / "docs" / "notes.md", root / "docs")  # the record's notes
    for name in ("workflow", "profiles"):
        (root / name).symlink_to(REPO / name)
    (tmp_path / "shared" / "data").mkdir(parents=True)
    return root, write_archive(tmp_path / "shared" / "data" / "cifar-10-python.tar.gz")


def test_the_no_internet_overlays_plan_the_whole_study_from_a_local_archive(tmp_path):
    """The "No internet?" block as written, its `snakemake` lines as dry runs: the overlay
    it writes reads the named archive (no download) and plans the README's runs; the
    rebuild overlay reads ../shared/data and adds the lambda search."""
    text = readme()
    n_runs = int(re.search(r"trains (\d+) runs", text).group(1))
    n_with_search = int(re.search(r"the\s+record's\s+run:\s+(\d+)\s+runs[,)]", text).group(1))
    assert "config/local.yaml" in (REPO / ".gitignore").read_text().splitlines()  # "is git-ignored"
    root, md5 = offline_checkout(tmp_path)
    archive = str(tmp_path / "shared/data/cifar-10-python.tar.gz")
    [block] = [b for b in code_blocks("bash") if "config/local.yaml" in b]
    write, commands = block.split("\nYAML\n", 1)
    official = yaml.safe_load((REPO / "config/config.yaml").read_text())["data"]["md5"]
    assert "/path/to/cifar-10-python.tar.gz" in write and official in write  # the official archive's MD5
    proc = shell(write.replace("/path/to/cifar-10-python.tar.gz", archive).replace(official, md5) + "\nYAML\n", root)
    assert proc.returncode == 0, proc.stderr
    local = {"url": "", "archive": archive, "md5": md5, "val_size": 5000}
    assert yaml.safe_load((root / "config/local.yaml").read_text()) == {"data": local}
    commands = [line for line in commands.splitlines() if not line.startswith("#")]
    assert commands == [
        "snakemake --cores 2 --configfile config/local.yaml",
        "snakemake --cores 2 --configfile config/rebuild-archive.yaml",
    ]
    rebuild = yaml.safe_load((root / "config/rebuild-archive.yaml").read_text())["data"]
    expected = {
        "config/local.yaml": (archive, md5, n_runs),
        "config/rebuild-archive.yaml": (rebuild["archive"], rebuild["md5"], n_with_search),
    }
    for command in commands:
        argv = shlex.split(command)
        proc = run([argv[0], "-n", "-p", *argv[1:]], root)
        log = proc.stdout + proc.stderr
        assert proc.returncode == 0, f"{command}\n{log}"
        path, checksum, runs = expected[argv[-1]]
        jobs = planned_jobs(proc)
        assert jobs["train"] == runs and "download" not in jobs, (command, jobs)
        assert f"kmlp prepare --archive {path} --md5 {checksum} " in log, command


def test_a_target_goes_before_the_overlay_config(tmp_path):
    """The README's single-target line plans only what the figure needs; the target after
    `--configfile` would be read as one more config file."""
    m = re.search(r"put targets \*\*before\*\* `--configfile`[^`]*:\s*`([^`]+)`", readme())
    assert m, "the README's target-before-configfile line"
    command = m.group(1)
    argv = shlex.split(command)
    assert argv[:4] == ["snakemake", "--cores", "2", "results/figures/figure3.png"], command
    root, _ = offline_checkout(tmp_path)
    proc = run([argv[0], "-n", *argv[1:]], root)
    assert proc.returncode == 0, f"{command}\n{proc.stdout}{proc.stderr}"
    # the data set, every gradient check (and their table) and the 10 training runs
    checks = len(yaml.safe_load((REPO / "config/config.yaml").read_text())["gradcheck"]["checks"])
    assert planned_jobs(proc) == {"prepare": 1, "gradcheck": checks, "gradtable": 1, "train": 10, "figure": 1}
    target_last = [argv[0], "-n", *argv[1:3], *argv[4:], argv[3]]
    assert run(target_last, root).returncode != 0


def test_the_lint_line_is_clean():
    """The Development section's lints, as written, in this checkout."""
    pytest.importorskip("ruff")
    pytest.importorskip("snakefmt")
    [line] = [b.strip() for b in code_blocks("bash") if "snakemake --lint" in b]
    assert line.startswith("ruff check ") and "\n" not in line, line
    proc = shell(line, REPO)
    assert proc.returncode == 0, f"{line}\n{proc.stdout}{proc.stderr}"


def test_the_outputs_table_names_every_configured_table():
    outputs = section("Outputs")
    assert "`results/tables/<name>.{tex,csv}` | one per entry of `tables:`" in outputs
    for name in yaml.safe_load((REPO / "config/config.yaml").read_text())["tables"]:
        assert f"`{name}`" in outputs, name
