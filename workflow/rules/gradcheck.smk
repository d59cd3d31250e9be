rule gradcheck:
    input:
        DATA_H5,
    output:
        f"{RESULTS}/gradcheck/{{check}}.json",
    log:
        f"{RESULTS}/logs/gradcheck/{{check}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/gradcheck/{{check}}.tsv"
    conda:
        "../envs/kmlp.yaml"
    threads: 1
    resources:
        mem_mb=500,
        runtime=10,
    params:
        args=gradcheck_args,
    shell:
        "kmlp gradcheck --data {input:q} {params.args} --out {output:q} > {log:q} 2>&1"
