# The tables and figures of each optional branch that the report reads, when that branch runs.
BRANCH_REPORT_INPUTS = {
    "behaviour": {
        "auroc": rules.behaviour_analysis.output.auroc,
        "refusal_rates": rules.behaviour_analysis.output.rates,
        "refusals": rules.score_refusals.output.refusals,
        "levels": rules.behaviour_analysis.output.levels,
    },
    "interventions": {"sweep": rules.summarize_interventions.output.sweep},
    "selection": {
        "selected": rules.select_direction.output.summary,
        "selection_figure": rules.plot_selection.output.figure,
        "evaluation": rules.summarize_evaluation.output.table,
        "evaluation_labels": rules.summarize_evaluation.output.labels,
    },
    "export": {"edited_check": rules.check_edited_model.output.check},
    "capability": {
        "capability": rules.summarize_capability.output.table,
        "capability_figure": rules.plot_capability.output.figure,
    },
}
REPORT_BRANCH_INPUTS = {
    key: path
    for branch, paths in BRANCH_REPORT_INPUTS.items()
    if config[branch]["enabled"]
    for key, path in paths.items()
}
# The direction methods' comparison, when methods besides mean_diff run (rules/methods.smk).
REPORT_METHOD_INPUTS = (
    {
        "methods": rules.compare_methods.output.table,
        "methods_figure": rules.plot_methods.output.figure,
    }
    if OTHER_METHODS
    else {}
)
# The judges' agreement, when a branch wrote responses (rules/judges.smk), and what the report says of them.
REPORT_JUDGE_INPUTS = (
    {
        "agreement": rules.judge_agreement.output.agreement,
        "judge_rates": rules.judge_agreement.output.rates,
        "disagreements": rules.judge_agreement.output.disagreements,
    }
    if LABELLED_SOURCES
    else {}
)
REPORT_JUDGES = {
    "judges": REFUSAL["judges"],
    "primary": REFUSAL["primary"],
    "llm_model": (LLM_JUDGE["model"]["name"] or LLM_JUDGE["model"]["id"]) if LLM_JUDGE else None,
    "llm_n_params": MODEL_SIZES[JUDGE_KEY].n_params if LLM_JUDGE else 0,
}


rule plot_directions:
    input:
        validation=rules.aggregate_layers.output.validation,
    output:
        figure=report(
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
        **REPORT_BRANCH_INPUTS,
        **REPORT_JUDGE_INPUTS,
        **REPORT_METHOD_INPUTS,
        summary=rules.aggregate_layers.output.summary,
        validation=rules.aggregate_layers.output.validation,
        top10=rules.aggregate_layers.output.top10,
        figure=rules.plot_directions.output.figure,
    output:
        report=report(
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
        judges=REPORT_JUDGES,
        evaluation_dataset=config["selection"]["evaluation"]["harmful_dataset"],
        code=code_version("write_report"),
    script:
        "../scripts/write_report.py"
