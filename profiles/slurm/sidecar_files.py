"""What sbatch-sidecar.py and sbatch-status.py share: the files beside the record of
submitted jobs through which a round's one squeue answers every status call, written whole
or not at all, and how both ask SLURM.  Standard library only (a status call starts a
Python per job per round); found beside the scripts (a script's folder is on its path)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path


def status_file(record: Path) -> Path:
    """The answers of the last round (the sidecar writes them, status calls read them)."""
    return record.with_name(record.stem + ".status.json")


def wanted_file(record: Path) -> Path:
    """Where a status call writes the time it wants answers newer than."""
    return record.with_name(record.stem + ".wanted")


def served_file(record: Path) -> Path:
    """Per job, the round whose answer its last status call was given."""
    return record.with_name(record.stem + ".served.json")


def write_atomically(path: Path, text: str) -> None:
    """Write whole or not at all: a reader sees the old file or the new one, and no
    temporary file is left either way."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def run(cmd: list[str], timeout: float = 60) -> subprocess.CompletedProcess | None:
    """A SLURM command's output, or None when it could not run or took over ``timeout`` s."""
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired):
        return None


def output_lines(proc: subprocess.CompletedProcess | None) -> list[str]:
    """What squeue or sacct printed (nothing if it failed), less the "CLUSTER: name" line
    --clusters adds."""
    out = proc.stdout if proc is not None and proc.returncode == 0 else ""
    return [line.strip() for line in out.splitlines() if line.strip() and not line.startswith("CLUSTER:")]
