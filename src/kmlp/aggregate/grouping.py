"""Run files grouped by experiment, and what made them (provenance of every output)."""

from __future__ import annotations

from .. import __version__
from ..environment import describe
from ..errors import KmlpError
from ..runs import read_run


def group_runs(runs) -> dict:
    """Runs by experiment, experiments in order of first appearance, seeds sorted.

    Two files holding the same (experiment, seed) would be counted twice: refuse them.
    """
    groups: dict = {}
    for run in runs:
        if run.status == "partial":  # its numbers are an epoch's, not a run's
            raise KmlpError(
                f"{run.experiment} seed {run.seed} is a partial run (kmlp train --evaluations, stopped at update "
                f"{run.stopped_at}): only the record check (kmlp check-runs) reads one"
            )
        groups.setdefault(run.experiment, []).append(run)
    for name, members in groups.items():
        seeds = [r.seed for r in members]
        dup = sorted({s for s in seeds if seeds.count(s) > 1})
        if dup:
            raise KmlpError(f"experiment {name} has more than one run file for seed(s) {dup}")
        members.sort(key=lambda r: r.seed)
    return groups


def load_groups(paths) -> dict:
    return group_runs([read_run(p) for p in paths])


def provenance(groups: dict, config: str = "") -> dict:
    """What made an output: kmlp version, data MD5(s), config, the numeric environment(s)
    of the runs, experiments and seeds."""
    runs = [r for members in groups.values() for r in members]
    return {
        "kmlp_version": __version__,
        "config": str(config),
        "data_md5": " ".join(unique(r.data_md5 or "unknown" for r in runs)),
        "run_kmlp_versions": " ".join(unique(r.kmlp_version for r in runs)),
        "environment": " | ".join(unique(describe(r.environment) or "unknown" for r in runs)),
        "experiments": "; ".join(
            f"{name} (seeds {','.join(str(r.seed) for r in members)})" for name, members in groups.items()
        ),
    }


def unique(items) -> list:
    return list(dict.fromkeys(items))


def paper_value(members, metric):
    """The report's number for ``metric`` as the runs store it (they must agree)."""
    values = unique(float(r.paper[metric]) for r in members if metric in r.paper)
    if len(values) > 1:
        raise paper_disagreement(members[0].experiment, metric, values)
    return values[0] if values else None


def paper_disagreement(experiment: str, metric: str, values) -> KmlpError:
    """The error for runs of one experiment that store different report numbers."""
    return KmlpError(
        f"the runs of experiment {experiment} disagree on the report's {metric} ({list(values)}): "
        "were they made from different configs?"
    )
