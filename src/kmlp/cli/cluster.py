"""`kmlp cluster-plan`: the SLURM jobs a study makes on a cluster of some CPUs, before it runs."""

from __future__ import annotations

from pathlib import Path

from ..errors import KmlpError
from . import options


def add_cluster_plan(sub) -> None:
    s = options.verb(sub, cluster_plan, "show the SLURM jobs (chunks of runs) a study makes on a cluster, predicted")
    s.add_argument(
        "--config", type=Path, nargs="+", default=[Path("config/config.yaml")],
        help="the study's config file(s), later ones on top (as snakemake --configfile)",
    )  # fmt: skip
    s.add_argument("--cpus", type=options.at_least(1), help="CPUs the jobs run on at once (default: cluster.cpus)")
    s.add_argument("--seeds", type=options.at_least(1), help="the study with seeds 1..N (default: the config's)")
    s.add_argument("--chunk-minutes", type=options.positive, help="chunks of this size instead (cluster.chunk_minutes)")
    s.add_argument("--figures", nargs="+", default=[], help="plan only the runs of these figures (a target)")
    s.add_argument("--experiments", nargs="+", default=[], help="plan only the runs of these experiments")


def cluster_plan(args) -> int:
    """Show how profiles/slurm would send a study's training runs to SLURM: the chunks
    kmlp.study cuts each family of runs into (sized to the study and to cluster.cpus, or
    cluster.chunk_minutes when set), how many jobs, their runs and predicted seconds, and
    the predicted time until the last one ends with the jobs started as CPUs come free.
    --figures or --experiments plan a target: only the runs it needs, in their chunks'
    jobs. Nothing is run; the numbers come from the cost model (kmlp.study.cost)."""
    from ..study import Study, StudyError, load
    from ..study.cluster import Plan

    try:
        config = load(*args.config).config
        if args.cpus:
            config["cluster"]["cpus"] = args.cpus
        if args.seeds:
            config["seeds"] = list(range(1, args.seeds + 1))
        if args.chunk_minutes:
            config["cluster"]["chunk_minutes"] = args.chunk_minutes
        study = Study(config).check()
    except StudyError as exc:
        raise KmlpError(f"{' '.join(map(str, args.config))}: " + "; ".join(exc.problems)) from None
    unknown = [f for f in args.figures if f not in study.figures]
    unknown += [e for e in args.experiments if e not in study.experiments]
    if unknown:
        raise KmlpError(f"{', '.join(unknown)}: not a figure or experiment of {' '.join(map(str, args.config))}")
    target = [e for f in args.figures for e in study.figures[f].experiments] + args.experiments
    plan = Plan(study, list(dict.fromkeys(target)) if target else None)
    c = study.config["cluster"]
    how = (
        f"cluster.chunk_minutes {c['chunk_minutes']:g}"
        if c.get("chunk_minutes")
        else f"sized to {plan.cpus} CPUs, at most {c['max_job_minutes']:g} min a job"
    )
    print(f"{plan.runs} runs, {plan.seconds:,.0f} s predicted on one CPU; chunks {how}")
    print(f"{'family':<18} {'jobs':>5} {'runs a job':>11} {'seconds a job':>14}")
    for family, jobs in plan.families().items():
        secs, runs = [s for s, _ in jobs], [n for _, n in jobs]
        line = f"{family:<18} {len(jobs):>5} {min(runs):>5}-{max(runs):<5} {min(secs):>6.0f}-{max(secs):.0f}"
        print(line)
    span, ideal = plan.makespan(), plan.seconds / plan.cpus
    print(
        f"{len(plan.jobs)} jobs; predicted {span:,.0f} s until the last ends on {plan.cpus} CPUs "
        f"({span / ideal:.2f} x the work / CPUs, {ideal:,.0f} s; one CPU: {plan.makespan(1):,.0f} s, "
        f"{span / plan.makespan(1):.2f} x)"
    )
    return 0


VERBS = (add_cluster_plan,)
