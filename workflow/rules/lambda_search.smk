# The lambda search (config `lambda_search`, kmlp.study.Search): a run's lambda is
# drawn or picked by a checkpoint, each pass by the one before. Included before
# train.smk, whose runs ask search_inputs.
def picking(experiment):
    """The checkpoint that draws or picks a search run's lambda (None for another run)."""
    if SEARCH and SEARCH.pass_of(experiment):
        return getattr(checkpoints, f"lambda_{SEARCH.picked_by(experiment)}").get()
    return None


def search_inputs(wildcards):
    """A search run waits for the pass that draws or picks its lambda."""
    picked = picking(wildcards.experiment)
    return picked.output if picked else []


def run_lambda(experiment):
    """A search run's lambda (None for a configured experiment: its own)."""
    picked = picking(experiment)
    if picked is None:
        return None
    return SEARCH.lam(experiment, json.loads(Path(picked.output[0]).read_text()))


# The search's draws and picks take a second: on a cluster they run where Snakemake runs.
localrules:
    lambda_grid,
    lambda_coarse,
    lambda_fine,
    lambda_best,


checkpoint lambda_grid:
    output:
        f"{RESULTS}/lambda_search/grid.json",
    log:
        f"{RESULTS}/logs/lambda_search/grid.log",
    benchmark:
        f"{RESULTS}/benchmarks/lambda_search/grid.tsv"
    # the search's passes go before the bulk of training (kmlp.study.cluster)
    priority: CHAIN_PRIORITY
    conda:
        "../envs/kmlp.yaml"
    resources:
        mem_mb=500,
        runtime=5,
    params:
        n=config["lambda_search"]["coarse"]["n"],
        log10_min=config["lambda_search"]["coarse"]["log10_min"],
        log10_max=config["lambda_search"]["coarse"]["log10_max"],
        seed=config["lambda_search"]["seed"],
    shell:
        "kmlp lambda-grid --n {params.n} --log10-min {params.log10_min}"
        " --log10-max {params.log10_max} --seed {params.seed} --out {output:q} > {log:q} 2>&1"


checkpoint lambda_coarse:
    input:
        runs_of(search_runs("coarse")),
    output:
        f"{RESULTS}/lambda_search/coarse.json",
    log:
        f"{RESULTS}/logs/lambda_search/coarse.log",
    benchmark:
        f"{RESULTS}/benchmarks/lambda_search/coarse.tsv"
    # the search's passes go before the bulk of training (kmlp.study.cluster)
    priority: CHAIN_PRIORITY
    conda:
        "../envs/kmlp.yaml"
    resources:
        mem_mb=500,
        runtime=5,
    params:
        n=config["lambda_search"]["fine"]["n"],
        half_width=config["lambda_search"]["fine"]["half_width"],
        seed=config["lambda_search"]["seed"] + 1,  # the coarse draws use seed, the fine ones seed + 1
        floor=config["lambda_search"]["coarse"]["log10_min"],
    shell:
        "kmlp lambda-pick --pass coarse {input:q} --fine-n {params.n} --half-width {params.half_width}"
        " --seed {params.seed} --log10-floor {params.floor} --out {output:q} > {log:q} 2>&1"


checkpoint lambda_fine:
    input:
        coarse=runs_of(search_runs("coarse")),
        fine=runs_of(search_runs("fine")),
    output:
        f"{RESULTS}/lambda_search/fine.json",
    log:
        f"{RESULTS}/logs/lambda_search/fine.log",
    benchmark:
        f"{RESULTS}/benchmarks/lambda_search/fine.tsv"
    # the search's passes go before the bulk of training (kmlp.study.cluster)
    priority: CHAIN_PRIORITY
    conda:
        "../envs/kmlp.yaml"
    resources:
        mem_mb=500,
        runtime=5,
    params:
        top=config["lambda_search"]["confirm"]["top"],
    shell:
        "kmlp lambda-pick --pass coarse {input.coarse:q} --pass fine {input.fine:q}"
        " --top {params.top} --out {output:q} > {log:q} 2>&1"


# One seed per candidate makes the pick a lottery: the best is picked among the top
# candidates re-run with several seeds, by their mean.
checkpoint lambda_best:
    input:
        runs_of(search_runs("confirm")),
    output:
        f"{RESULTS}/lambda_search/best.json",
    log:
        f"{RESULTS}/logs/lambda_search/best.log",
    benchmark:
        f"{RESULTS}/benchmarks/lambda_search/best.tsv"
    # the search's passes go before the bulk of training (kmlp.study.cluster)
    priority: CHAIN_PRIORITY
    conda:
        "../envs/kmlp.yaml"
    resources:
        mem_mb=500,
        runtime=5,
    shell:
        "kmlp lambda-pick --pass confirm {input:q} --out {output:q} > {log:q} 2>&1"
