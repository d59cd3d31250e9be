"""Run files: one HDF5 file per (experiment, seed) holding what a training run made.

Layout (all the aggregation steps read this and nothing else)::

    /                attrs: format, kmlp_version, experiment, seed, status, stopped_at,
                            settings (JSON), model (JSON), data_md5, data_file,
                            eval_sizes (JSON: images per split), paper (JSON),
                            source (JSON), environment (JSON: the numeric environment)
    /history/<col>   1-D arrays, one entry per evaluation: HISTORY_COLUMNS
    /final           attrs: FINAL_METRICS (test_* are NaN when the run diverged)
    /weights/<name>  W1, b1, gamma1, beta1, ..., bn_mean1, bn_var1, ...

No timestamps or wall times are stored: the same inputs give the same bytes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np

from . import __version__
from .errors import KmlpError
from .files import as_array, as_str, atomic_h5, attr_json, open_h5, put
from .nn.training import HISTORY_COLUMNS

FORMAT = "kmlp-run/2"
FINAL_METRICS = tuple(f"{split}_{m}" for split in ("train", "val", "test") for m in ("loss", "cost", "acc"))


@dataclass
class RunRecord:
    experiment: str
    seed: int
    status: str  # "completed" or "diverged"
    settings: dict  # training settings (lam, n_s, cycles, ...)
    model: dict  # MLP.config(): sizes, batch_norm, init, sigma, dtype
    history: dict  # column -> 1-D array
    final: dict  # FINAL_METRICS -> float
    weights: dict = field(default_factory=dict)
    stopped_at: int | None = None  # update step where a divergence was detected
    data_md5: str = ""
    data_file: str = ""
    paper: dict = field(default_factory=dict)  # the report's numbers: metric -> value
    source: dict = field(default_factory=dict)  # free-form provenance (config file, ...)
    kmlp_version: str = __version__
    eval_sizes: dict = field(default_factory=dict)  # split -> images its metrics are measured on
    environment: dict = field(default_factory=dict)  # kmlp.environment.numeric_environment()


def write_run(path, run: RunRecord) -> None:
    missing = [c for c in HISTORY_COLUMNS if c not in run.history]
    if missing:
        raise ValueError(f"history lacks columns {missing}")
    with atomic_h5(path) as f:
        f.attrs["format"] = FORMAT
        f.attrs["kmlp_version"] = run.kmlp_version
        f.attrs["experiment"] = run.experiment
        f.attrs["seed"] = int(run.seed)
        f.attrs["status"] = run.status
        f.attrs["stopped_at"] = -1 if run.stopped_at is None else int(run.stopped_at)
        f.attrs["settings"] = attr_json(run.settings)
        f.attrs["model"] = attr_json(run.model)
        f.attrs["data_md5"] = run.data_md5
        f.attrs["data_file"] = run.data_file
        f.attrs["paper"] = attr_json(run.paper)
        f.attrs["source"] = attr_json(run.source)
        f.attrs["eval_sizes"] = attr_json(run.eval_sizes)
        f.attrs["environment"] = attr_json(run.environment)
        hist = f.create_group("history")
        for col in HISTORY_COLUMNS:
            put(hist, col, np.asarray(run.history[col], np.float64))
        fin = f.create_group("final")
        for name in FINAL_METRICS:
            fin.attrs[name] = float(run.final.get(name, np.nan))
        w = f.create_group("weights")
        for name, arr in run.weights.items():
            put(w, name, np.asarray(arr))


def read_run(path, weights: bool = False) -> RunRecord:
    """Read a run file; ``weights=True`` also loads the trained arrays."""
    with open_h5(path, "run file") as f:
        found = as_str(f.attrs.get("format", ""))
        if found != FORMAT:
            older = found.startswith("kmlp-run/")
            raise KmlpError(
                f"{path} is {'a run file of an older kmlp' if older else 'not a kmlp run file'} "
                f"(format {found!r}, expected {FORMAT!r})" + ("; train it again" if older else "")
            )
        stopped = int(f.attrs["stopped_at"])
        return RunRecord(
            experiment=as_str(f.attrs["experiment"]),
            seed=int(f.attrs["seed"]),
            status=as_str(f.attrs["status"]),
            settings=json.loads(as_str(f.attrs["settings"])),
            model=json.loads(as_str(f.attrs["model"])),
            history={c: as_array(f["history"][c]) for c in HISTORY_COLUMNS},
            final={k: float(f["final"].attrs[k]) for k in FINAL_METRICS},
            weights={k: as_array(v) for k, v in f["weights"].items()} if weights else {},
            stopped_at=None if stopped < 0 else stopped,
            data_md5=as_str(f.attrs["data_md5"]),
            data_file=as_str(f.attrs["data_file"]),
            paper=json.loads(as_str(f.attrs["paper"])),
            source=json.loads(as_str(f.attrs["source"])),
            kmlp_version=as_str(f.attrs["kmlp_version"]),
            eval_sizes=json.loads(as_str(f.attrs["eval_sizes"])),
            environment=json.loads(as_str(f.attrs["environment"])),
        )


def load_model(path):
    """Rebuild the trained :class:`~kmlp.MLP` stored in a run file."""
    from .nn.model import MLP

    run = read_run(path, weights=True)
    m = run.model
    model = MLP(
        m["sizes"],
        batch_norm=m["batch_norm"],
        init=m["init"],
        sigma=m["sigma"],
        seed=0,
        dtype=m["dtype"],
        alpha=m["alpha"],
        eps=m["eps"],
    )
    model.load_state(run.weights)
    return model
