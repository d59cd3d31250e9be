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
    # On a cluster (profiles/slurm) runs are sent to SLURM in groups; the lambda search's
    # passes wait for each other's picks, so each pass is a group of its own.
    group:
        lambda wc: (
            wc.experiment.rstrip("0123456789-")
            if wc.experiment in SEARCH_RUNS
            else "train"
        )
    conda:
        "../envs/kmlp.yaml"
    threads: 1
    resources:
        # the data set in the run's dtype and more (train_mem_mb: measured); runtime
        # in minutes, measured at most 18 s (9-layer, 9,000 updates), with head-room
        # for slower cluster nodes
        mem_mb=train_mem_mb,
        runtime=10,
    params:
        settings=lambda wc: json.dumps(settings(wc.experiment), sort_keys=True),
        paper=lambda wc: json.dumps(paper_of(wc.experiment), sort_keys=True),
    shell:
        "kmlp train --data {input.data:q} --out {output:q} --experiment {wildcards.experiment}"
        " --seed {wildcards.seed} --threads {threads} --settings {params.settings:q}"
        ' --paper {params.paper:q} --source "$KMLP_SOURCE" > {log:q} 2>&1'
