rule gradcheck:
    input:
        data_h5(),
    output:
        f"{RESULTS}/gradcheck/{{check}}.json",
    log:
        f"{RESULTS}/logs/gradcheck/{{check}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/gradcheck/{{check}}.tsv"
    # On a cluster (profiles/slurm) the data sets and the gradient checks go to SLURM
    # together, as one job.
    group:
        "setup"
    conda:
        "../envs/kmlp.yaml"
    threads: 1
    resources:
        # on a cluster the seconds it (run_s) and the setup job (job_s) ask for (common.smk)
        mem_mb=lambda wc, attempt: 500 * attempt,
        run_s=lambda wc, attempt: asked_seconds(
            CHECK_S / config["cluster"]["speed"], attempt
        ),
        job_s=lambda wc, attempt: setup_s(attempt),
        attempt=lambda wc, attempt: attempt,
    params:
        settings=lambda wc: json.dumps(study.gradchecks[wc.check]),
    shell:
        "kmlp gradcheck --data {input:q} --name {wildcards.check} --threads {threads}"
        " --settings {params.settings:q}"
        " --out {output:q} > {log:q} 2>&1"
