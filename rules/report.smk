rule plot_directions:
    input:
        "results/{model}/validation_results.csv",
    output:
        report(
            "results/{model}/direction_analysis.png",
            caption="../report/direction_analysis.rst",
            category="{model}",
            subcategory="Figures",
            labels={"model": "{model}", "figure": "direction analysis"},
        ),
    log:
        "results/logs/plot_directions/{model}.log",
    conda:
        "../envs/plot.yaml"
    params:
        title=model_title,
        d_min=config["d_min"],
        ci_level=config["ci_level"],
        dpi=config["plot_dpi"],
        code=code_version("plot_directions"),
    script:
        "../scripts/plot_directions.py"


rule write_report:
    input:
        unpack(report_inputs),
    output:
        report(
            "results/{model}/report.md",
            category="{model}",
            subcategory="Report",
            labels={"model": "{model}", "file": "report.md"},
        ),
    log:
        "results/logs/write_report/{model}.log",
    conda:
        "../envs/stats.yaml"
    params:
        datasets=DATASETS,
        seed=config["seed"],
        title=model_title,
        code=code_version("write_report"),
    script:
        "../scripts/write_report.py"
