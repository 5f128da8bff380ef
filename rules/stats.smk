rule layer_stats:
    input:
        "results/{model}/activations/layer_{layer}.h5",
    output:
        stats="results/{model}/layers/layer_{layer}.json",
        direction="results/{model}/layers/layer_{layer}.safetensors",
    log:
        "results/logs/layer_stats/{model}/layer_{layer}.log",
    conda:
        "../envs/stats.yaml"
    params:
        statistics=statistics_config(),
        control=config["control"],
        code=code_version("layer_stats"),
    script:
        "../scripts/layer_stats.py"


rule aggregate_layers:
    input:
        stats=layer_results("json"),
        directions=layer_results("safetensors"),
        manifest=activation_manifest,
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
        directions="results/{model}/directions.safetensors",
        pickle="results/{model}/validated_directions.pkl",
    log:
        "results/logs/aggregate_layers/{model}.log",
    conda:
        "../envs/stats.yaml"
    params:
        model=model_spec,
        statistics=statistics_config(),
        control=config["control"],
        config_hash=results_config_hash,
        code=code_version("aggregate"),
    script:
        "../scripts/aggregate_layers.py"
