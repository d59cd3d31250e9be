# Compute nodes of a cluster often have no internet: the download runs where
# Snakemake runs.
localrules:
    download,


rule download:
    output:
        DOWNLOADED,
    log:
        f"{RESULTS}/logs/download.log",
    benchmark:
        f"{RESULTS}/benchmarks/download.tsv"
    conda:
        "../envs/kmlp.yaml"
    resources:
        mem_mb=500,
        runtime=30,
    params:
        url=config["data"]["url"],
        md5=config["data"]["md5"],
    shell:
        "kmlp download --url {params.url:q} --md5 {params.md5} --out {output:q} > {log:q} 2>&1"


rule prepare:
    input:
        archive_input(),
    output:
        f"{RESULTS}/data/cifar10{{variant}}.h5",
    log:
        f"{RESULTS}/logs/prepare{{variant}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/prepare{{variant}}.tsv"
    wildcard_constraints:
        variant="("
        + "|".join(re.escape(study.data_name(v)) for v in study.val_sizes())
        + ")",
    # On a cluster (profiles/slurm) the data sets and the gradient checks go to SLURM
    # together, as one job.
    group:
        "setup"
    conda:
        "../envs/kmlp.yaml"
    resources:
        # measured: 3.3-3.6 s, peak RSS 540 MB for CIFAR-10's 170 MB archive; on a
        # cluster the seconds it (run_s) and the setup job (job_s) ask for
        # (kmlp.study.cluster)
        mem_mb=lambda wc, input, attempt: ASK.prepare_mem_mb(input.size, attempt),
        run_s=lambda wc, attempt: ASK.prepare_s(attempt),
        job_s=lambda wc, attempt: ASK.setup_s(attempt),
        attempt=lambda wc, attempt: attempt,
    params:
        md5=config["data"]["md5"],
        val_size=lambda wc: study.val_size_named(wc.variant),
    shell:
        "kmlp prepare --archive {input:q} --md5 {params.md5} --val-size {params.val_size}"
        " --out {output:q} > {log:q} 2>&1"
