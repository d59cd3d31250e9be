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
    # On a cluster (profiles/slurm) runs go to SLURM in chunks of a few minutes' work,
    # one SLURM job each; the lambda search's passes wait for each other's picks, so each
    # pass is cut into chunks of its own.
    group:
        train_group
    conda:
        "../envs/kmlp.yaml"
    threads: 1
    resources:
        # the data set in the run's dtype and more (train_mem_mb: measured); the seconds
        # a run (run_s) and its chunk (job_s) ask for on a cluster, from the cost model of
        # kmlp.study.cost; each times the attempt (profiles/slurm/sbatch-submit.py)
        mem_mb=train_mem_mb,
        run_s=train_run_s,
        job_s=train_job_s,
        attempt=lambda wc, attempt: attempt,
        # the lambda search's passes wait for each other: on a cluster its chunks go
        # ahead of the others in SLURM's queue (sbatch --nice for the others)
        slurm_nice=train_nice,
    params:
        settings=train_settings,
        paper=lambda wc: json.dumps(study.paper(wc.experiment), sort_keys=True),
    shell:
        "kmlp train --data {input.data:q} --out {output:q} --experiment {wildcards.experiment}"
        " --seed {wildcards.seed} --threads {threads} --settings {params.settings:q}"
        ' --paper {params.paper:q} --config "$KMLP_CONFIG" > {log:q} 2>&1'
