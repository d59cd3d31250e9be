rule train:
    input:
        data=data_file,
        # A failed gradient check stops the workflow before any training (the table
        # exists only once every check passed); ancient: adding a check later does
        # not make the runs stale.
        gradchecks=ancient(f"{RESULTS}/tables/gradcheck.csv"),
        search=search_inputs,
    output:
        f"{RESULTS}/runs/{{experiment}}/seed{{seed}}.h5",
    log:
        f"{RESULTS}/logs/train/{{experiment}}/seed{{seed}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/train/{{experiment}}/seed{{seed}}.tsv"
    # the lambda search's runs and those seeds by need added go before the bulk: a
    # checkpoint waits for them (kmlp.study.cluster)
    priority: lambda wc: ASK.priority(wc.experiment, int(wc.seed))
    # On a cluster (profiles/slurm) runs go to SLURM in chunks of a few minutes' work,
    # one SLURM job each; the lambda search's passes wait for each other's picks, so each
    # pass is cut into chunks of its own.
    group:
        train_group
    conda:
        "../envs/kmlp.yaml"
    threads: 1
    resources:
        # the data set in the run's dtype and more (measured); the seconds a run (run_s)
        # and its chunk (job_s) ask for on a cluster, from the cost model; each times the
        # attempt (kmlp.study.cluster, profiles/slurm/sbatch-submit.py)
        mem_mb=lambda wc, input, attempt: ASK.train_mem_mb(
            wc.experiment, input.size, attempt
        ),
        run_s=lambda wc, attempt: ASK.run_s(wc.experiment, attempt),
        job_s=lambda wc, attempt: ASK.job_s(wc.experiment, int(wc.seed), attempt),
        attempt=lambda wc, attempt: attempt,
        # the lambda search's passes wait for each other: on a cluster its chunks go
        # ahead of the others in SLURM's queue (sbatch --nice for the others)
        slurm_nice=lambda wc: ASK.nice(wc.experiment),
    params:
        settings=train_settings,
        paper=lambda wc: json.dumps(study.paper(wc.experiment), sort_keys=True),
    shell:
        "kmlp train --data {input.data:q} --out {output:q} --experiment {wildcards.experiment}"
        " --seed {wildcards.seed} --threads {threads} --settings {params.settings:q}"
        ' --paper {params.paper:q} --config "$KMLP_CONFIG" > {log:q} 2>&1'


# The record check's runs (rule check_runs): a training setting's first epoch, to its
# first evaluation after step 0, the beginning of the whole run bit for bit for a seventh
# of its time or less; not a run of the study (kmlp's aggregations refuse a partial run).
rule retrain:
    input:
        data=data_file,
    output:
        f"{RESULTS}/retrain/{{experiment}}/seed{{seed}}.h5",
    log:
        f"{RESULTS}/logs/retrain/{{experiment}}/seed{{seed}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/retrain/{{experiment}}/seed{{seed}}.tsv"
    conda:
        "../envs/kmlp.yaml"
    threads: 1
    resources:
        mem_mb=lambda wc, input, attempt: ASK.train_mem_mb(
            wc.experiment, input.size, attempt
        ),
        runtime=5,
    params:
        settings=retrain_settings,
    shell:
        "kmlp train --data {input.data:q} --out {output:q} --experiment {wildcards.experiment}"
        " --seed {wildcards.seed} --threads {threads} --settings {params.settings:q}"
        ' --evaluations 1 --config "$KMLP_CONFIG" > {log:q} 2>&1'
