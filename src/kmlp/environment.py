"""The numeric environment a result came from: what decides its floats.

Same machine and seed give the same bytes; across machines OpenBLAS picks its kernels
by CPU (or by ``OPENBLAS_CORETYPE``), and training turns the rounding differences into
seed-like noise. So every output records the software versions, the BLAS library, its
version, the kernel it chose and its thread count, and the CPU model.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path


def cpu_model() -> str:
    """The CPU's model name (Linux), else what the platform says."""
    info = Path("/proc/cpuinfo")
    if info.exists():
        for line in info.read_text(errors="replace").splitlines():
            if line.startswith(("model name", "Model", "cpu model")):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def numeric_environment() -> dict:
    """Versions, BLAS (library, version, kernel, threads) and CPU of this process.

    Call it where the numbers are made (after any thread limit is set): the thread count
    is the one in effect.
    """
    import h5py
    import numpy
    from threadpoolctl import threadpool_info

    blas = [
        f"{i.get('internal_api')} {i.get('version')} {i.get('architecture')} ({i.get('num_threads')} threads)"
        for i in threadpool_info()
        if i.get("user_api") == "blas"
    ]
    env = {
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "h5py": h5py.__version__,
        "blas": "; ".join(blas) or "none found",
        "cpu": f"{cpu_model()} ({platform.machine()})",
    }
    coretype = os.environ.get("OPENBLAS_CORETYPE")
    if coretype:
        env["openblas_coretype"] = coretype
    return env


ORDER = ("blas", "cpu", "openblas_coretype", "numpy", "h5py", "python")


def describe(env: dict) -> str:
    """One line, BLAS and CPU first: ``blas openblas 0.3.31 SkylakeX (1 threads), cpu ..., numpy ...``."""
    keys = [k for k in ORDER if k in env] + sorted(k for k in env if k not in ORDER)
    return ", ".join(f"{k} {env[k]}" for k in keys)
