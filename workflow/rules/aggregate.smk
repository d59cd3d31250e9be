# Tables, figures, the report and the record take seconds: on a cluster (profiles/slurm)
# they run where Snakemake runs instead of waiting for SLURM. So does diagnose (measured
# on the full study: 16 s, 28 s of CPU on two threads, 1.2 GB): a SLURM job of under 20 s
# cannot ask for less than three times its use (a limit is a minute at least).
localrules:
    diagnose,
    figure,
    table,
    lambda_table,
    gradtable,
    summary,
    discrepancies,
    report_tex,
    report_pdf,
    record,
    check_runs,


rule figure:
    input:
        lambda wc: runs_of(study.figures[wc.figure].experiments),
    output:
        pdf=f"{RESULTS}/figures/{{figure}}.pdf",
        png=report(
            f"{RESULTS}/figures/{{figure}}.png",
            caption="../report/figure.rst",
            category="Figures",
            labels={"figure": "{figure}"},
        ),
    log:
        f"{RESULTS}/logs/figure/{{figure}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/figure/{{figure}}.tsv"
    conda:
        "../envs/kmlp.yaml"
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        title=lambda wc: config["figures"][wc.figure]["title"],
    shell:
        'kmlp figure --title {params.title:q} --config "$KMLP_CONFIG" --out {output.pdf:q}'
        " --png {output.png:q} {input:q} > {log:q} 2>&1"


rule table:
    input:
        # the table's runs and those pooled with them (the verdict pools their variance),
        # at the seeds the verdicts read (seeds by need)
        runs=lambda wc: judged_runs(
            study.pooled_with(study.tables[wc.table].experiments)
        ),
    output:
        tex=f"{RESULTS}/tables/{{table}}.tex",
        csv=report(
            f"{RESULTS}/tables/{{table}}.csv",
            caption="../report/table.rst",
            category="Tables",
            labels={"table": "{table}"},
        ),
    log:
        f"{RESULTS}/logs/table/{{table}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/table/{{table}}.tsv"
    conda:
        "../envs/kmlp.yaml"
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        spec=lambda wc: json.dumps(study.tables[wc.table].as_dict()),
        verdict=json.dumps(config["verdict"], sort_keys=True),
    shell:
        'kmlp table --spec {params.spec:q} --verdict {params.verdict:q} --config "$KMLP_CONFIG"'
        " --out-tex {output.tex:q} --out-csv {output.csv:q} {input.runs:q} > {log:q} 2>&1"


# The lambda search's table: its rows are the lambdas the search tried, best first.
use rule table as lambda_table with:
    input:
        runs=runs_of(search_runs("coarse", "fine", "confirm")),
        searched=f"{RESULTS}/lambda_search/fine.json",
        confirmed=f"{RESULTS}/lambda_search/best.json",
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
    params:
        spec=search_table_spec,
        verdict=json.dumps(config["verdict"], sort_keys=True),


rule gradtable:
    input:
        expand(f"{RESULTS}/gradcheck/{{check}}.json", check=CHECKS),
    output:
        tex=f"{RESULTS}/tables/gradcheck.tex",
        csv=report(
            f"{RESULTS}/tables/gradcheck.csv",
            caption="../report/gradcheck.rst",
            category="Tables",
            labels={"table": "gradcheck"},
        ),
    log:
        f"{RESULTS}/logs/gradtable.log",
    benchmark:
        f"{RESULTS}/benchmarks/gradtable.tsv"
    conda:
        "../envs/kmlp.yaml"
    resources:
        mem_mb=500,
        runtime=5,
    shell:
        'kmlp gradtable --config "$KMLP_CONFIG" --out-tex {output.tex:q}'
        " --out-csv {output.csv:q} {input:q} > {log:q} 2>&1"


rule summary:
    input:
        lambda wc: judged_runs(JUDGED),
    output:
        tex=f"{RESULTS}/tables/summary.tex",
        csv=report(
            f"{RESULTS}/tables/summary.csv",
            caption="../report/summary.rst",
            category="Tables",
            labels={"table": "summary"},
        ),
    log:
        f"{RESULTS}/logs/summary.log",
    benchmark:
        f"{RESULTS}/benchmarks/summary.tsv"
    conda:
        "../envs/kmlp.yaml"
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        verdict=json.dumps(config["verdict"], sort_keys=True),
        readings=json.dumps(study.readings(), sort_keys=True),
        need=(
            f"--need {shlex.quote(json.dumps(study.need_plan(), sort_keys=True))}"
            if NEED.enabled
            else ""
        ),
    shell:
        'kmlp summary --verdict {params.verdict:q} --config "$KMLP_CONFIG"'
        " --readings {params.readings:q} {params.need}"
        " --out-tex {output.tex:q} --out-csv {output.csv:q} {input:q} > {log:q} 2>&1"


rule discrepancies:
    input:
        summary=f"{RESULTS}/tables/summary.csv",
        runs=lambda wc: judged_runs(study.pooled_with(discrepancy_experiments())),
    output:
        tex=f"{RESULTS}/tables/discrepancies.tex",
        csv=report(
            f"{RESULTS}/tables/discrepancies.csv",
            caption="../report/discrepancies.rst",
            category="Tables",
            labels={"table": "discrepancies"},
        ),
    log:
        f"{RESULTS}/logs/discrepancies.log",
    benchmark:
        f"{RESULTS}/benchmarks/discrepancies.tsv"
    conda:
        "../envs/kmlp.yaml"
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        verdict=json.dumps(config["verdict"], sort_keys=True),
        spec=json.dumps(config["discrepancies"], sort_keys=True),
    shell:
        'kmlp discrepancies --verdict {params.verdict:q} --config "$KMLP_CONFIG"'
        " --summary {input.summary:q} --spec {params.spec:q}"
        " --out-tex {output.tex:q} --out-csv {output.csv:q} {input.runs:q} > {log:q} 2>&1"


rule diagnose:
    input:
        data=diagnose_data,
        runs=runs_of(study.diagnostics),
    output:
        tex=f"{RESULTS}/tables/diagnostics.tex",
        csv=report(
            f"{RESULTS}/tables/diagnostics.csv",
            caption="../report/diagnostics.rst",
            category="Tables",
            labels={"table": "diagnostics"},
        ),
    log:
        f"{RESULTS}/logs/diagnose.log",
    benchmark:
        f"{RESULTS}/benchmarks/diagnose.tsv"
    conda:
        "../envs/kmlp.yaml"
    threads: 2
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        'kmlp diagnose --data {input.data:q} --threads {threads} --config "$KMLP_CONFIG"'
        " --out-tex {output.tex:q} --out-csv {output.csv:q} {input.runs:q} > {log:q} 2>&1"


rule report_tex:
    input:
        tables=expand(
            f"{RESULTS}/tables/{{table}}.tex",
            table=["summary", "discrepancies", "gradcheck", *TABLES] + EXTRA_TABLES,
        ),
        figures=expand(f"{RESULTS}/figures/{{figure}}.pdf", figure=FIGURES),
    output:
        f"{RESULTS}/report/report.tex",
    log:
        f"{RESULTS}/logs/report_tex.log",
    benchmark:
        f"{RESULTS}/benchmarks/report_tex.tsv"
    conda:
        "../envs/kmlp.yaml"
    resources:
        mem_mb=500,
        runtime=5,
    shell:
        'kmlp report --config "$KMLP_CONFIG" --tables {input.tables:q}'
        " --figures {input.figures:q} --out {output:q} > {log:q} 2>&1"


rule report_pdf:
    input:
        f"{RESULTS}/report/report.tex",
    output:
        f"{RESULTS}/report/report.pdf",
    log:
        f"{RESULTS}/logs/report_pdf.log",
    benchmark:
        f"{RESULTS}/benchmarks/report_pdf.tsv"
    conda:
        "../envs/kmlp.yaml"
    resources:
        mem_mb=1000,
        runtime=10,
    shell:
        "kmlp pdf {input:q} --out {output:q} > {log:q} 2>&1"


rule record:
    input:
        summary=f"{RESULTS}/tables/summary.csv",
        discrepancies=f"{RESULTS}/tables/discrepancies.csv",
        gradcheck=f"{RESULTS}/tables/gradcheck.csv",
        tables=expand(f"{RESULTS}/tables/{{table}}.csv", table=TABLES + EXTRA_TABLES),
        figures=expand(f"{RESULTS}/figures/{{figure}}.png", figure=FIGURES),
        # the study's benchmark files (its times), and so every run of it
        benchmarks=study_benchmarks(),
        added_benchmarks=added_benchmarks,
        report_benchmarks=train_benchmarks(study.report_experiments()),
        notes=config["record"]["notes"] or [],
        # every run: the record's data (a row each) is written beside it
        runs=lambda wc: judged_runs(study.experiments),
    output:
        md=config["record"]["out"],
        runs=RECORD_RUNS,
        figures=expand(
            str(Path(config["record"]["out"]).parent / "figures" / "{figure}.png"),
            figure=FIGURES,
        ),
    log:
        f"{RESULTS}/logs/record.log",
    benchmark:
        f"{RESULTS}/benchmarks/record.tsv"
    conda:
        "../envs/kmlp.yaml"
    resources:
        mem_mb=500,
        runtime=5,
    params:
        meta=json.dumps(record_meta(), sort_keys=True),
        notes=lambda wc, input: input.notes,
    shell:
        "kmlp record --summary {input.summary:q} --discrepancies {input.discrepancies:q}"
        " --gradcheck {input.gradcheck:q}"
        " --tables {input.tables:q} --figures {input.figures:q} --benchmarks {input.benchmarks:q}"
        " --report-benchmarks {input.report_benchmarks:q} --added-benchmarks {input.added_benchmarks:q}"
        " --runs {input.runs:q} --out-runs {output.runs:q}"
        " --meta {params.meta:q} --notes={params.notes:q} --out {output.md:q} > {log:q} 2>&1"


# The record checked at the report's scale: the first epoch of one seed of every training
# setting trained again (rule retrain) against the record's committed data (not an input:
# the record rule writes it from every run of the study).
rule check_runs:
    input:
        retrained_runs(),
    output:
        f"{RESULTS}/tables/retrained.csv",
    log:
        f"{RESULTS}/logs/check_runs.log",
    benchmark:
        f"{RESULTS}/benchmarks/check_runs.tsv"
    conda:
        "../envs/kmlp.yaml"
    resources:
        mem_mb=500,
        runtime=5,
    params:
        data=RECORD_RUNS,
        k=config["retrain_check"]["k"],
    shell:
        "kmlp check-runs --early --data {params.data:q} --k {params.k} --out {output:q} {input:q}"
        " > {log:q} 2>&1"
