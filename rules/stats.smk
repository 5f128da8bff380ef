from refusal_directions.workflow.definition import stable_hash

# The thresholds that turn per-layer numbers into verdicts: used by the table-level step only.
THRESHOLDS = {"alpha": config["alpha"], "d_min": config["d_min"]}
# Per model: a hash of every config value that shapes its result tables (not plotting, not execution).
RESULTS_CONFIG_HASHES = {
    slug: stable_hash(
        {
            "model": MODEL_SPECS[slug],
            "datasets": {name: DATASETS[name] for name in USED_DATASETS},
            "n_samples": config["n_samples"],
            "seed": config["seed"],
            "control": CONTROL,
            "statistics": STATISTICS,
            "thresholds": THRESHOLDS,
            "splits": SPLITS,
        }
    )
    for slug in MODELS
}


rule layer_stats:
    input:
        activations=extraction_file(LAYER_FILE),
        manifest=activation_manifest,
        splits=rules.split_prompts.output.splits,
    output:
        stats="results/{model}/layers/layer_{layer}.json",
        null="results/{model}/layers/layer_{layer}_null.safetensors",
    log:
        "results/logs/layer_stats/{model}/layer_{layer}.log",
    conda:
        "../envs/stats.yaml"
    params:
        statistics=STATISTICS,
        control=CONTROL,
        code=code_version("layer_stats"),
    script:
        "../scripts/layer_stats.py"


rule compute_directions:
    input:
        manifest=activation_manifest,
        layers=activation_files,
        splits=rules.split_prompts.output.splits,
    output:
        directions="results/{model}/directions.safetensors",
    log:
        "results/logs/compute_directions/{model}.log",
    conda:
        "../envs/stats.yaml"
    params:
        model_id=model_id,
        control=CONTROL,
        code=code_version("compute_directions"),
    script:
        "../scripts/compute_directions.py"


rule aggregate_layers:
    input:
        stats=each_layer(rules.layer_stats.output.stats),
        manifest=activation_manifest,
        directions=rules.compute_directions.output.directions,
    output:
        validation=report(
            "results/{model}/validation_results.csv",
            category="{model}",
            subcategory="Tables",
            labels={"model": "{model}", "table": "all layers"},
        ),
        top10=report(
            "results/{model}/top10_layers.csv",
            category="{model}",
            subcategory="Tables",
            labels={"model": "{model}", "table": "top 10 layers"},
        ),
        summary=report(
            "results/{model}/summary.json",
            category="{model}",
            subcategory="Tables",
            labels={"model": "{model}", "table": "summary"},
        ),
        pickle="results/{model}/validated_directions.pkl",
    log:
        "results/logs/aggregate_layers/{model}.log",
    conda:
        "../envs/stats.yaml"
    params:
        model=model_spec,
        statistics=STATISTICS,
        thresholds=THRESHOLDS,
        splits=SPLITS,
        control=CONTROL,
        config_hash=lookup(dpath="{model}", within=RESULTS_CONFIG_HASHES),
        code=code_version("aggregate_layers"),
    script:
        "../scripts/aggregate_layers.py"
