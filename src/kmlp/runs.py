"""Run files: one HDF5 file per (experiment, seed) holding what a training run made.

Layout (all the aggregation steps read this and nothing else)::

    /                attrs: format, kmlp_version, experiment, seed, status, stopped_at,
                            settings (JSON), model (JSON), data_md5 (the archive's),
                            data_sha256 (the data set's arrays'), data_file,
                            eval_sizes (JSON: images per split), paper (JSON),
                            source (JSON), environment (JSON: the numeric environment),
                            checkpoint_step (settings checkpoint best_val only)
    /history/<col>   1-D arrays, one entry per evaluation: HISTORY_COLUMNS
    /final           attrs: FINAL_METRICS (all NaN when the run diverged), sha256
    /weights/<name>  W1, b1, gamma1, beta1, ..., bn_mean1, bn_var1, ...

Every array carries the checksum of its contents (attribute sha256, and /final's of its
metrics), verified when it is read: a damaged file is an error naming it, never numbers.
No timestamps or wall times are stored: the same inputs give the same bytes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import __version__
from .errors import KmlpError
from .files import CHECKSUM, as_str, atomic_h5, attr, attr_json, checksum, dataset, group, json_attr, open_h5, put, read
from .nn.metrics import FINAL_METRICS
from .nn.training import HISTORY_COLUMNS

FORMAT = "kmlp-run/2"  # /1: before checksums, environment and evaluation-set sizes


@dataclass
class RunRecord:
    experiment: str
    seed: int
    status: str  # "completed", "diverged" or "partial" (kmlp train --evaluations)
    settings: dict  # training settings (lam, n_s, cycles, ...)
    model: dict  # MLP.config(): sizes, batch_norm, init, sigma, dtype
    history: dict  # column -> 1-D array
    final: dict  # FINAL_METRICS -> float
    weights: dict = field(default_factory=dict)
    stopped_at: int | None = None  # update step where a divergence was detected
    data_md5: str = ""  # the MD5 of the archive the data set was prepared from
    data_file: str = ""
    paper: dict = field(default_factory=dict)  # the report's numbers: metric -> value
    source: dict = field(default_factory=dict)  # free-form provenance (config file, ...)
    kmlp_version: str = __version__
    data_sha256: str = ""  # the checksum of the data set's arrays (its content_sha256)
    eval_sizes: dict = field(default_factory=dict)  # split -> images its metrics are measured on
    environment: dict = field(default_factory=dict)  # kmlp.environment.numeric_environment()
    checkpoint_step: int | None = None  # settings checkpoint best_val: the step final measures


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
        f.attrs["data_sha256"] = run.data_sha256
        f.attrs["data_file"] = run.data_file
        f.attrs["paper"] = attr_json(run.paper)
        f.attrs["source"] = attr_json(run.source)
        f.attrs["eval_sizes"] = attr_json(run.eval_sizes)
        f.attrs["environment"] = attr_json(run.environment)
        if run.checkpoint_step is not None:  # only then: other run files keep their bytes
            f.attrs["checkpoint_step"] = int(run.checkpoint_step)
        hist = f.create_group("history")
        for col in HISTORY_COLUMNS:
            put(hist, col, np.asarray(run.history[col], np.float64))
        fin = f.create_group("final")
        for name in FINAL_METRICS:
            fin.attrs[name] = float(run.final.get(name, np.nan))
        fin.attrs[CHECKSUM] = checksum(_final_values(fin, str(path)))
        w = f.create_group("weights")
        for name, arr in run.weights.items():
            put(w, name, np.asarray(arr))


def _final_values(final, what: str) -> np.ndarray:
    return np.array([attr(final, name, what) for name in FINAL_METRICS], np.float64)


def read_run(path, weights: bool = False) -> RunRecord:
    """Read a run file; ``weights=True`` also loads the trained arrays. Anything missing or
    malformed is a KmlpError naming the file and the attribute or dataset."""
    what = f"run file {path}"
    with open_h5(path, "run file") as f:
        found = as_str(f.attrs.get("format", ""))
        if found.startswith("kmlp-run/") and found != FORMAT:
            raise KmlpError(f"{what} has format {found}, not {FORMAT} (made by another kmlp version): train it again")
        if found != FORMAT:
            raise KmlpError(f"{path} is not a kmlp run file (format {f.attrs.get('format')!r})")
        try:
            stopped = int(attr(f, "stopped_at", what))
            history, final = group(f, "history", what), group(f, "final", what)
            if checksum(_final_values(final, what)) != as_str(attr(final, CHECKSUM, what)):
                raise KmlpError(f"{what}: final does not match its checksum (the file is damaged or was edited)")
            stored = group(f, "weights", what) if weights else {}
            return RunRecord(
                experiment=as_str(attr(f, "experiment", what)),
                seed=int(attr(f, "seed", what)),
                status=as_str(attr(f, "status", what)),
                settings=json_attr(f, "settings", what),
                model=json_attr(f, "model", what),
                history={c: read(dataset(history, c, what), what) for c in HISTORY_COLUMNS},
                final={k: float(attr(final, k, what)) for k in FINAL_METRICS},
                weights={k: read(dataset(stored, k, what), what) for k in stored},
                stopped_at=None if stopped < 0 else stopped,
                data_md5=as_str(attr(f, "data_md5", what)),
                data_sha256=as_str(attr(f, "data_sha256", what)),
                data_file=as_str(attr(f, "data_file", what)),
                paper=json_attr(f, "paper", what),
                source=json_attr(f, "source", what),
                kmlp_version=as_str(attr(f, "kmlp_version", what)),
                eval_sizes=json_attr(f, "eval_sizes", what),
                environment=json_attr(f, "environment", what),
                checkpoint_step=int(f.attrs["checkpoint_step"]) if "checkpoint_step" in f.attrs else None,
            )
        except (OSError, ValueError, TypeError) as exc:
            raise KmlpError(f"{what} is damaged: {exc}") from None


def load_model(path):
    """Rebuild the trained :class:`~kmlp.MLP` stored in a run file."""
    from .nn.model import MLP

    run = read_run(path, weights=True)
    m = run.model
    try:
        model = MLP(
            m["sizes"],
            batch_norm=m["batch_norm"],
            init=m["init"],
            sigma=m["sigma"],
            seed=0,
            dtype=m["dtype"],
            alpha=m["alpha"],
            eps=m["eps"],
            bn_order=m.get("bn_order", "before"),
        )
        model.load_state(run.weights)
    except (KeyError, ValueError, TypeError) as exc:
        raise KmlpError(f"run file {path}: the model and its weights do not fit together ({exc!r})") from None
    return model
