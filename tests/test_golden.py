"""The tiny config's outputs, byte for byte, against the hashes recorded in golden/.

Same machine, same software, same seeds: same bytes. A refactoring must leave every
output unchanged; a change that is meant to alter outputs updates the hashes with
``KMLP_UPDATE_GOLDEN=1 python -m pytest tests/test_golden.py`` and says why in its
commit. Floats depend on the BLAS kernel and the file bytes on the HDF5, matplotlib
and NumPy versions, so on another numeric environment the comparison is skipped.
"""

import hashlib
import json
import os
import platform
from pathlib import Path

import pytest

from workflow_project import outputs

pytestmark = pytest.mark.slow
GOLDEN = Path(__file__).parent / "golden" / "tiny.json"


def environment() -> dict:
    import h5py
    import matplotlib
    import numpy
    from threadpoolctl import threadpool_info

    cpu = ""
    if Path("/proc/cpuinfo").exists():
        cpu = next(
            (
                line.split(":", 1)[1].strip()
                for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")
            ),
            "",
        )
    blas = [
        f"{i.get('internal_api')} {i.get('version')} {i.get('architecture')}"
        for i in threadpool_info()
        if i.get("user_api") == "blas"
    ]
    return {
        "machine": platform.machine(),
        "cpu": cpu,
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "h5py": h5py.__version__,
        "hdf5": h5py.version.hdf5_version,
        "matplotlib": matplotlib.__version__,
        "blas": blas,
    }


def test_tiny_outputs_match_the_recorded_hashes(tiny_project):
    got = {k: hashlib.sha256(v).hexdigest() for k, v in outputs(tiny_project).items()}
    env = environment()
    if os.environ.get("KMLP_UPDATE_GOLDEN"):
        GOLDEN.write_text(json.dumps({"environment": env, "outputs": got}, indent=1, sort_keys=True) + "\n")
    recorded = json.loads(GOLDEN.read_text())
    if recorded["environment"] != env:
        differ = {k: (recorded["environment"].get(k), v) for k, v in env.items() if recorded["environment"].get(k) != v}
        pytest.skip(f"another numeric environment than the recorded one: {differ}")
    assert sorted(got) == sorted(recorded["outputs"])
    changed = sorted(k for k in got if got[k] != recorded["outputs"][k])
    assert changed == []
