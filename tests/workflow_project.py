"""A throw-away project for running the real workflow on the tiny test configuration."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

from cifar_fake import write_archive

REPO = Path(__file__).resolve().parents[1]
TINY_CONFIG = REPO / ".test" / "config" / "config.yaml"


def make_project(root: Path, **overrides) -> Path:
    """A working directory with a small archive and the tiny config (plus overrides)."""
    root.mkdir(parents=True, exist_ok=True)
    md5 = write_archive(root / "cifar-10-python.tar.gz", n_train_per_batch=60, n_test=100, seed=0)
    cfg = yaml.safe_load(TINY_CONFIG.read_text())
    cfg["data"].update(archive="cifar-10-python.tar.gz", md5=md5)
    for key, value in overrides.items():
        cfg[key] = value
    (root / "config").mkdir(exist_ok=True)
    (root / "config" / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    return root


def snakemake(workdir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """Run the repository's workflow in ``workdir`` with this interpreter's Snakemake."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    cmd = [
        sys.executable,
        "-m",
        "snakemake",
        "--snakefile",
        str(REPO / "workflow" / "Snakefile"),
        "--directory",
        str(workdir),
        *args,
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def path_without(programs: set[str], farm: Path) -> str:
    """A PATH with every program of this one but ``programs``: symlinks in ``farm`` to the
    first of each name (so a test can hide a LaTeX installation without hiding bash)."""
    farm.mkdir(parents=True, exist_ok=True)
    for folder in os.environ.get("PATH", "").split(os.pathsep):
        if not folder or not Path(folder).is_dir():
            continue
        for exe in Path(folder).iterdir():
            link = farm / exe.name
            if exe.name in programs or link.exists() or link.is_symlink() or not os.access(exe, os.X_OK):
                continue
            if exe.is_file():
                link.symlink_to(exe)
    return str(farm)


#: What ``kmlp pdf`` looks for (kmlp.report.document).
LATEX = {"latexmk", "pdflatex"}


def without_times(record: str) -> str:
    """The reproduction record less its measured times (the section "Compute time")."""
    kept, skipping = [], False
    for line in record.splitlines():
        if line.startswith("## "):
            skipping = line == "## Compute time"
        if not skipping:
            kept.append(line)
    return "\n".join(kept)


def outputs(workdir: Path) -> dict[str, bytes]:
    """Every file the workflow made (results/ and docs/), relative path -> bytes.

    Logs and benchmarks are left out, and the record's line of job times.
    """
    found = {}
    for top in ("results", "docs"):
        for path in sorted((workdir / top).rglob("*")):
            rel = path.relative_to(workdir).as_posix()
            if path.is_file() and not rel.startswith(("results/logs/", "results/benchmarks/")):
                data = path.read_bytes()
                if rel == "docs/reproduction.md":
                    data = without_times(data.decode()).encode()
                found[rel] = data
    return found
