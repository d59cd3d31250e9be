"""The tiny config's outputs, byte for byte, against the hashes recorded in golden/.

Same machine, same software, same seeds: same bytes. A refactoring must leave every
output unchanged; a change that is meant to alter outputs updates the hashes with
``KMLP_UPDATE_GOLDEN=1 python -m pytest tests/test_golden.py`` (this numeric
environment's entry; run it once per BLAS kernel, e.g. again with
``OPENBLAS_CORETYPE=Haswell``) and says why in its commit.

The hashes are recorded per numeric environment, the key holding what decides the
bytes:

* the floats: the BLAS library, its version and the kernel it picked (OpenBLAS picks by
  CPU, or by ``OPENBLAS_CORETYPE``), the SIMD code NumPy dispatches to on this CPU (its
  exp, log and sums differ in the last bits between them), and the C library (the math
  functions NumPy leaves to libm);
* the file bytes: NumPy, h5py and the HDF5 library, matplotlib, its FreeType, Pillow
  and pandas (the figures, the PNGs, the tables);
* what the outputs record about where they were made (kmlp.environment): the Python
  version, the CPU's model name and machine, and ``OPENBLAS_CORETYPE`` if set. The
  model name decides no float, but it is written into every run file and table, so a
  machine whose CPU is named otherwise needs its own entry.

CI (``.ci/run``) installs the versions pinned in ``.ci/constraints.txt``, the ones the
entries were made with, and sets ``KMLP_MUST_RUN=golden``: there, an environment with
no entry fails instead of skipping.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
from pathlib import Path

import pytest

from kmlp.environment import cpu_model
from workflow_project import outputs

pytestmark = [pytest.mark.slow, pytest.mark.needs("golden")]
GOLDEN = Path(__file__).parent / "golden" / "tiny.json"


def numpy_simd() -> list[str]:
    """The SIMD targets NumPy was built to dispatch to that this CPU has (NumPy >= 2)."""
    try:
        from numpy._core import _multiarray_umath as umath
    except ImportError:  # NumPy 1.x
        from numpy.core import _multiarray_umath as umath
    return [t for t in umath.__cpu_dispatch__ if umath.__cpu_features__.get(t)]


def environment() -> dict:
    """What decides the bytes of the tiny workflow's outputs here (the module docstring)."""
    import h5py
    import matplotlib
    import numpy
    import pandas
    import PIL
    from matplotlib import ft2font
    from threadpoolctl import threadpool_info

    # SciPy's wheel brings its own OpenBLAS, loaded once kmlp.aggregate.stats is imported (by
    # an earlier test of the session, or not): NumPy's is the one that makes the floats
    blas = [
        f"{i.get('internal_api')} {i.get('version')} {i.get('architecture')}"
        for i in threadpool_info()
        if i.get("user_api") == "blas" and Path(i.get("filepath", "")).parent.name != "scipy.libs"
    ]
    return {
        "machine": platform.machine(),
        "cpu": cpu_model(),
        "openblas_coretype": os.environ.get("OPENBLAS_CORETYPE", ""),
        "libc": " ".join(platform.libc_ver()),
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "numpy_simd": numpy_simd(),
        "blas": blas,
        "h5py": h5py.__version__,
        "hdf5": h5py.version.hdf5_version,
        "matplotlib": matplotlib.__version__,
        "freetype": ft2font.__freetype_version__,
        "pillow": PIL.__version__,
        "pandas": pandas.__version__,
    }


def entries() -> list[dict]:
    return json.loads(GOLDEN.read_text())["environments"] if GOLDEN.exists() else []


def save(new: list[dict]) -> None:
    new = sorted(new, key=lambda e: json.dumps(e["environment"], sort_keys=True))
    GOLDEN.write_text(json.dumps({"environments": new}, indent=1, sort_keys=True) + "\n")


def differences(recorded: dict, env: dict) -> dict:
    return {k: (recorded.get(k), env.get(k)) for k in sorted(set(recorded) | set(env)) if recorded.get(k) != env.get(k)}


def test_tiny_outputs_match_the_recorded_hashes(tiny_project):
    got = {k: hashlib.sha256(v).hexdigest() for k, v in outputs(tiny_project).items()}
    env = environment()
    recorded = entries()
    if os.environ.get("KMLP_UPDATE_GOLDEN"):  # this entry, and none keyed otherwise (they can never match)
        kept = [e for e in recorded if e["environment"] != env and set(e["environment"]) == set(env)]
        save([*kept, {"environment": env, "outputs": got}])
        recorded = entries()
    match = [e for e in recorded if e["environment"] == env]
    if not match:
        nearest = min((differences(e["environment"], env) for e in recorded), key=len, default={})
        pytest.skip(
            f"no golden hashes for this numeric environment ({len(recorded)} recorded; the nearest differs in "
            f"{nearest}): the tiny workflow's outputs are not compared byte for byte here, so a change of "
            "any output goes unnoticed. Record them with KMLP_UPDATE_GOLDEN=1 on a commit known to be right."
        )
    [entry] = match
    assert sorted(got) == sorted(entry["outputs"])
    changed = sorted(k for k in got if got[k] != entry["outputs"][k])
    assert changed == []


def test_the_golden_file_holds_each_environment_once_and_the_same_outputs():
    """Each entry is one environment's, keyed as this module keys it; all list the same
    files (what the workflow makes does not depend on the kernel); both kernels OpenBLAS
    picks between on our machines (SkylakeX, or Haswell when told) have one."""
    recorded = entries()
    keys = [json.dumps(e["environment"], sort_keys=True) for e in recorded]
    assert len(keys) == len(set(keys)) and len(keys) >= 2
    assert all(set(e["environment"]) == set(environment()) for e in recorded)
    files = [sorted(e["outputs"]) for e in recorded]
    assert all(f == files[0] for f in files)
    kernels = {e["environment"]["blas"][0].split()[-1] for e in recorded}
    assert {"Haswell", "SkylakeX"} <= kernels


def test_ci_pins_the_numeric_stack_the_entries_were_recorded_with():
    """.ci/constraints.txt installs the versions every entry holds: a bump of one without
    recording the hashes again would make CI's golden test fail (or, elsewhere, skip)."""
    text = (Path(__file__).parents[1] / ".ci" / "constraints.txt").read_text()
    pins = dict(line.lower().split("==", 1) for line in text.splitlines() if "==" in line and line[0] != "#")
    for entry in entries():
        env = entry["environment"]
        for package in ("numpy", "h5py", "matplotlib", "pillow", "pandas"):
            assert pins[package] == env[package], (package, env["blas"])
