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
        train_group
    conda:
        "../envs/kmlp.yaml"
    threads: 1
    resources:
        # the data set in the run's dtype and more (train_mem_mb: measured); runtime
        # in minutes, measured at most 18 s (9-layer, 9,000 updates): 10 times that for
        # slower cluster nodes (a SLURM job of many runs asks for the sum of its rounds)
        mem_mb=train_mem_mb,
        runtime=3,
    params:
        settings=train_settings,
        paper=lambda wc: json.dumps(study.paper(wc.experiment), sort_keys=True),
    shell:
        "kmlp train --data {input.data:q} --out {output:q} --experiment {wildcards.experiment}"
        " --seed {wildcards.seed} --threads {threads} --settings {params.settings:q}"
        ' --paper {params.paper:q} --config "$KMLP_CONFIG" > {log:q} 2>&1'
