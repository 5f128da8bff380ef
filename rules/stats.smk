rule layer_stats:
    input:
        unpack(layer_activations),
        splits="results/splits.json",
    output:
        stats="results/{model}/layers/layer_{layer}.json",
        null="results/{model}/layers/layer_{layer}_null.safetensors",
    log:
        "results/logs/layer_stats/{model}/layer_{layer}.log",
    conda:
        "../envs/stats.yaml"
    params:
        statistics=statistics_config(),
        control=CONTROL,
        code=code_version("layer_stats"),
    script:
        "../scripts/layer_stats.py"


rule compute_directions:
    input:
        manifest=activation_manifest,
        layers=activation_files,
        splits="results/splits.json",
    output:
        "results/{model}/directions.safetensors",
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
        stats=layer_statistics_files,
        manifest=activation_manifest,
        directions="results/{model}/directions.safetensors",
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
        statistics=statistics_config(),
        thresholds=thresholds_config(),
        splits=SPLITS,
        control=CONTROL,
        config_hash=results_config_hash,
        code=code_version("aggregate_layers"),
    script:
        "../scripts/aggregate_layers.py"
