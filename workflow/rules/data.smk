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
        DATA_H5,
    log:
        f"{RESULTS}/logs/prepare.log",
    benchmark:
        f"{RESULTS}/benchmarks/prepare.tsv"
    conda:
        "../envs/kmlp.yaml"
    resources:
        # measured: 2.4 s, peak RSS 544 MB
        mem_mb=1500,
        runtime=10,
    params:
        md5=config["data"]["md5"],
        val_size=config["data"]["val_size"],
    shell:
        "kmlp prepare --archive {input:q} --md5 {params.md5} --val-size {params.val_size}"
        " --out {output:q} > {log:q} 2>&1"


rule prepare_variant:
    input:
        archive_input(),
    output:
        f"{RESULTS}/data/cifar10-val{{val_size}}.h5",
    log:
        f"{RESULTS}/logs/prepare-val{{val_size}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/prepare-val{{val_size}}.tsv"
    wildcard_constraints:
        val_size=r"\d+",
    conda:
        "../envs/kmlp.yaml"
    resources:
        mem_mb=1500,
        runtime=10,
    params:
        md5=config["data"]["md5"],
    shell:
        "kmlp prepare --archive {input:q} --md5 {params.md5} --val-size {wildcards.val_size}"
        " --out {output:q} > {log:q} 2>&1"
