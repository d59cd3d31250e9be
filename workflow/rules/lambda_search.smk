checkpoint lambda_coarse:
    input:
        runs_of(COARSE),
    output:
        f"{RESULTS}/lambda_search/coarse.json",
    log:
        f"{RESULTS}/logs/lambda_search/coarse.log",
    benchmark:
        f"{RESULTS}/benchmarks/lambda_search/coarse.tsv"
    conda:
        "../envs/kmlp.yaml"
    resources:
        mem_mb=500,
        runtime=5,
    params:
        n=SEARCH["fine"]["n"],
        half_width=SEARCH["fine"]["half_width"],
        seed=SEARCH["seed"] + 1,
    shell:
        "kmlp lambda-pick --fine-n {params.n} --half-width {params.half_width}"
        " --seed {params.seed} --out {output:q} {input:q} > {log:q} 2>&1"


checkpoint lambda_best:
    input:
        runs_of(COARSE + FINE),
    output:
        f"{RESULTS}/lambda_search/best.json",
    log:
        f"{RESULTS}/logs/lambda_search/best.log",
    benchmark:
        f"{RESULTS}/benchmarks/lambda_search/best.tsv"
    conda:
        "../envs/kmlp.yaml"
    resources:
        mem_mb=500,
        runtime=5,
    shell:
        "kmlp lambda-pick --out {output:q} {input:q} > {log:q} 2>&1"


rule lambda_table:
    input:
        best=f"{RESULTS}/lambda_search/best.json",
        runs=runs_of(COARSE + FINE),
    output:
        tex=f"{RESULTS}/tables/lambda_search.tex",
        csv=report(
            f"{RESULTS}/tables/lambda_search.csv",
            caption="../report/lambda_search.rst",
            category="Tables",
            labels={"table": "lambda_search"},
        ),
    log:
        f"{RESULTS}/logs/table/lambda_search.log",
    benchmark:
        f"{RESULTS}/benchmarks/table/lambda_search.tsv"
    conda:
        "../envs/kmlp.yaml"
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        spec=search_table_spec,
        within=config["verdict"]["within_std"],
        config=CONFIG_NAME,
    shell:
        "kmlp table --spec {params.spec:q} --within-std {params.within} --config {params.config:q}"
        " --out-tex {output.tex:q} --out-csv {output.csv:q} {input.runs:q} > {log:q} 2>&1"
