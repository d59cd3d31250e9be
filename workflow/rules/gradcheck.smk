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
        # on a cluster the seconds it (run_s) and the setup job (job_s) ask for
        # (kmlp.study.cluster)
        mem_mb=lambda wc, attempt: ASK.check_mem_mb(attempt),
        run_s=lambda wc, attempt: ASK.check_s(attempt),
        job_s=lambda wc, attempt: ASK.setup_s(attempt),
        attempt=lambda wc, attempt: attempt,
    params:
        settings=lambda wc: json.dumps(study.gradchecks[wc.check]),
    shell:
        "kmlp gradcheck --data {input:q} --name {wildcards.check} --threads {threads}"
        " --settings {params.settings:q}"
        " --out {output:q} > {log:q} 2>&1"
