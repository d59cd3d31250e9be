# Seeds by need (config `seeds_by_need`, kmlp.study.seeds): after the configured seeds,
# each round judges every number and gives `step` seeds more to the experiments of those
# whose verdict is not stable, until a round gives none. The rounds' decisions are
# looked up here (aggregate.smk's summary reads the runs they add).
NEED = study.seeds_by_need
JUDGED = study.judged()


def decided(round):
    """A round's decision (kmlp seeds-needed's JSON), once its checkpoint ran."""
    return json.loads(
        Path(checkpoints.seeds_needed.get(round=round).output[0]).read_text()
    )


def seeds_after(round):
    """Experiment -> its seeds after `round` rounds of seeds by need (0: as configured)."""
    return decided(round)["seeds"] if round else {e: study.seeds(e) for e in JUDGED}


def needed_seeds():
    """Experiment -> its seeds once seeds by need adds no more (as configured when off)."""
    round = 1
    while NEED.enabled and not decided(round)["done"]:
        round += 1
    return seeds_after(round if NEED.enabled else 0)


def runs_after(round):
    """The run files a round of seeds by need judges: the summary's, as the rounds before left them."""
    seeds = seeds_after(round)
    return [f"{RESULTS}/runs/{e}/seed{s}.h5" for e in JUDGED for s in seeds[e]]


def judged_pairs(experiments):
    """(experiment, seed) of every run the verdicts on `experiments` read."""
    seeds = needed_seeds() if any(e in JUDGED for e in experiments) else {}
    return [(e, s) for e in experiments for s in seeds.get(e, study.seeds(e))]


def judged_runs(experiments):
    return [f"{RESULTS}/runs/{e}/seed{s}.h5" for e, s in judged_pairs(experiments)]


def added_benchmarks(wildcards):
    """The benchmark files of the runs seeds by need added (their compute)."""
    configured = set(study.runs(JUDGED))
    return [
        f"{RESULTS}/benchmarks/train/{e}/seed{s}.tsv"
        for e, s in judged_pairs(JUDGED)
        if (e, s) not in configured
    ]


# A round takes a second: on a cluster it runs where Snakemake runs.
localrules:
    seeds_needed,


checkpoint seeds_needed:
    input:
        lambda wc: runs_after(int(wc.round) - 1),
    output:
        f"{RESULTS}/seeds_by_need/round{{round}}.json",
    log:
        f"{RESULTS}/logs/seeds_by_need/round{{round}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/seeds_by_need/round{{round}}.tsv"
    # a round goes before the bulk of training (kmlp.study.cluster)
    priority: CHAIN_PRIORITY
    conda:
        "../envs/kmlp.yaml"
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        verdict=json.dumps(config["verdict"], sort_keys=True),
        plan=json.dumps(study.need_plan(), sort_keys=True),
    shell:
        "kmlp seeds-needed --round {wildcards.round} --verdict {params.verdict:q}"
        ' --plan {params.plan:q} --config "$KMLP_CONFIG" --out {output:q} {input:q} > {log:q} 2>&1'
