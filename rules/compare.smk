rule compare_models:
    input:
        summaries=expand("results/{model}/summary.json", model=MODELS),
        validations=expand("results/{model}/validation_results.csv", model=MODELS),
        selected=selected_directions(),
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
