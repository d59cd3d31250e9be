# Seeds by need (config `seeds_by_need`, kmlp.study.seeds): after the configured seeds,
# each round judges every number and gives `step` seeds more to the experiments of those
# whose verdict is not stable, until a round gives none. A round takes a second: on a
# cluster it runs where Snakemake runs.
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
