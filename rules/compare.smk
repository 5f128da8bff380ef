rule compare_models:
    input:
        summaries=expand(rules.aggregate_layers.output.summary, model=MODELS),
        validations=expand(rules.aggregate_layers.output.validation, model=MODELS),
        # Every model's selected direction, when the selection runs.
        selected=(
            expand(rules.select_direction.output.summary, model=MODELS)
            if config["selection"]["enabled"]
            else []
        ),
    output:
        table=report(
            "results/comparison/models.csv",
            category="Comparison",
            labels={"table": "strongest layer per model"},
        ),
        figure=report(
            "results/comparison/cohens_d_by_depth.png",
            caption="../report/cohens_d_by_depth.rst",
            category="Comparison",
            labels={"figure": "Cohen's d by relative depth"},
        ),
    log:
        "results/logs/compare_models.log",
    conda:
        "../envs/plot.yaml"
    params:
        models=list(MODELS),
        dpi=config["plot_dpi"],
        code=code_version("compare_models"),
    script:
        "../scripts/compare_models.py"
