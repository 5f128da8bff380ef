# Direction methods side by side (README: "Direction methods"): each configured method's direction goes through
# the selection, the evaluation, the capability cost and the export that mean_diff's goes through (the same
# rules, used again with the method's files), and one table compares them. mean_diff's outputs stay where
# they are; every other method's are under results/{model}/methods/{method}/.

# Where each result of a method comes from: mean_diff's rules, or the rules above.
RESULT_RULES = {
    "evaluation": ("summarize_evaluation", "summarize_method_evaluation", "table"),
    "labels": ("summarize_evaluation", "summarize_method_evaluation", "labels"),
    **(
        {
            "capability": ("summarize_capability", "summarize_method_capability", "table"),
            "losses": ("measure_capability", "measure_method_capability", "losses"),
        }
        if COSTS
        else {}
    ),
    **({"check": ("check_edited_model", "check_method_edit", "check")} if EXPORTS else {}),
}


rule compute_method_candidates:
    input:
        manifest=activation_manifest,
        layers=activation_files,
        splits=rules.split_prompts.output.splits,
    output:
        candidates="results/{model}/methods/{method}/candidates.safetensors",
    log:
        "results/logs/compute_method_candidates/{model}.{method}.log",
    wildcard_constraints:
        method=names(OWN_CANDIDATES),
    conda:
        "../envs/stats.yaml"
    params:
        model_id=model_id,
        method="{method}",
        settings=lookup(dpath="{method}", within=CANDIDATE_SETTINGS),
        code=code_version("compute_method_candidates"),
    script:
        "../scripts/compute_method_candidates.py"


use rule score_candidates as score_method_candidates with:
    input:
        unpack(generation_inputs),
        manifest=activation_manifest,
        candidates=method_candidates,
    output:
        scores="results/{model}/methods/{method}/selection/candidate_scores.csv",
    log:
        "results/logs/score_method_candidates/{model}.{method}.log",
    benchmark:
        "results/benchmarks/score_method_candidates/{model}.{method}.tsv"
    wildcard_constraints:
        method=names(CLOSED_FORM),
    params:
        method="{method}",


use rule select_direction as select_method_direction with:
    input:
        scores=rules.score_method_candidates.output.scores,
        candidates=method_candidates,
    output:
        scores="results/{model}/methods/{method}/selection/scores.csv",
        summary="results/{model}/methods/{method}/selection/selected_direction.json",
        direction="results/{model}/methods/{method}/selection/selected_direction.safetensors",
    log:
        "results/logs/select_method_direction/{model}.{method}.log",
    wildcard_constraints:
        method=names(CLOSED_FORM),


rule method_direction:
    input:
        selected=method_selected,
        candidates=method_candidates,
    output:
        direction=METHOD_DIRECTION,
    log:
        "results/logs/method_direction/{model}.{method}.log",
    wildcard_constraints:
        method=names([MEAN_DIFF, *CLOSED_FORM]),
    conda:
        "../envs/stats.yaml"
    params:
        method="{method}",
        code=code_version("method_direction"),
    script:
        "../scripts/method_direction.py"


rule optimize_direction:
    input:
        unpack(generation_inputs),
        manifest=activation_manifest,
        # Through the checkpoint, as the evaluation takes it: a choice that writes the same bytes reruns nothing.
        selected=checkpoint_output("select_direction", "direction"),
        directions=rules.compute_directions.output.directions,
    output:
        direction=METHOD_DIRECTION,
        history="results/{model}/methods/{method}/optimization.csv",
    log:
        "results/logs/optimize_direction/{model}.{method}.log",
    benchmark:
        "results/benchmarks/optimize_direction/{model}.{method}.tsv"
    wildcard_constraints:
        method=names(OPTIMIZED),
    conda:
        "../envs/torch.yaml"
    threads: model_job_threads("optimize_direction")
    resources:
        **model_job_resources("optimize_direction"),
    params:
        model=model_spec,
        method="{method}",
        settings=lookup(dpath="{method}", within=DIRECTIONS),
        code=code_version("optimize_direction"),
    script:
        "../scripts/optimize_direction.py"


use rule evaluate_direction as evaluate_method with:
    input:
        unpack(evaluation_inputs),
        manifest=activation_manifest,
        method=METHOD_DIRECTION,
        directions=rules.compute_directions.output.directions,
    output:
        generations="results/{model}/methods/{method}/evaluation_generations.jsonl",
        kl="results/{model}/methods/{method}/evaluation_kl.csv",
    log:
        "results/logs/evaluate_method/{model}.{method}.log",
    benchmark:
        "results/benchmarks/evaluate_method/{model}.{method}.tsv"
    wildcard_constraints:
        method=names(OTHER_METHODS),


use rule judge_responses as judge_method_responses with:
    input:
        **(converted_folder(LLM_JUDGE["model"]) if LLM_JUDGE else {}),
        responses="results/{model}/methods/{method}/{source}_generations.jsonl",
    output:
        judgements="results/{model}/methods/{method}/judgements/{source}/llm.csv",
    log:
        "results/logs/judge_method_responses/{model}.{method}.{source}.log",
    benchmark:
        "results/benchmarks/judge_method_responses/{model}.{method}.{source}.tsv"
    wildcard_constraints:
        method=names(OTHER_METHODS),
        source=names(METHOD_SOURCES),


use rule orthogonalize_model as orthogonalize_method with:
    input:
        unpack(converted_model),
        direction=METHOD_DIRECTION,
        manifest=activation_manifest,
    output:
        edited=directory("results/{model}/methods/{method}/edited"),
    log:
        "results/logs/orthogonalize_method/{model}.{method}.log",
    benchmark:
        "results/benchmarks/orthogonalize_method/{model}.{method}.tsv"
    wildcard_constraints:
        method=names(EXPORTED),
    params:
        export={"dtype": EXPORT["dtype"], "layer": None},


use rule check_edited_model as check_method_edit with:
    input:
        unpack(evaluation_inputs),
        direction=METHOD_DIRECTION,
        manifest=activation_manifest,
        edited=rules.orthogonalize_method.output.edited,
    output:
        check="results/{model}/methods/{method}/edited_check.json",
        generations="results/{model}/methods/{method}/edited_generations.jsonl",
        kl="results/{model}/methods/{method}/edited_kl.csv",
    log:
        "results/logs/check_method_edit/{model}.{method}.log",
    benchmark:
        "results/benchmarks/check_method_edit/{model}.{method}.tsv"
    wildcard_constraints:
        method=names(EXPORTED),
    params:
        layer=None,


use rule summarize_evaluation as summarize_method_evaluation with:
    input:
        generations=method_files(
            ("evaluate_method", "generations"), ("check_method_edit", "generations")
        ),
        kl=method_files(("evaluate_method", "kl"), ("check_method_edit", "kl")),
        judgements=method_judgements,
    output:
        labels="results/{model}/methods/{method}/evaluation_labels.csv",
        table="results/{model}/methods/{method}/evaluation.csv",
    log:
        "results/logs/summarize_method_evaluation/{model}.{method}.log",
    wildcard_constraints:
        method=names(OTHER_METHODS),


use rule measure_capability as measure_method_capability with:
    input:
        unpack(generation_inputs),
        **CAPABILITY_DOCUMENTS,
        method=METHOD_DIRECTION,
        directions=rules.compute_directions.output.directions,
    output:
        losses="results/{model}/methods/{method}/capability/losses.csv",
    log:
        "results/logs/measure_method_capability/{model}.{method}.log",
    benchmark:
        "results/benchmarks/measure_method_capability/{model}.{method}.tsv"
    wildcard_constraints:
        method=names(OTHER_METHODS),


use rule measure_edited_capability as measure_method_edited_capability with:
    input:
        unpack(generation_inputs),
        **CAPABILITY_DOCUMENTS,
        direction=METHOD_DIRECTION,
        edited=rules.orthogonalize_method.output.edited,
    output:
        losses="results/{model}/methods/{method}/capability/edited_losses.csv",
    log:
        "results/logs/measure_method_edited_capability/{model}.{method}.log",
    benchmark:
        "results/benchmarks/measure_method_edited_capability/{model}.{method}.tsv"
    wildcard_constraints:
        method=names(EXPORTED),


use rule summarize_capability as summarize_method_capability with:
    input:
        losses=method_files(
            ("measure_method_capability", "losses"),
            ("measure_method_edited_capability", "losses"),
        ),
    output:
        table="results/{model}/methods/{method}/capability.csv",
    log:
        "results/logs/summarize_method_capability/{model}.{method}.log",
    wildcard_constraints:
        method=names(OTHER_METHODS),


rule compare_methods:
    input:
        unpack(method_results),
    output:
        table=report(
            "results/{model}/methods/comparison.csv",
            category="{model}",
            subcategory="Direction methods",
            labels={"model": "{model}", "table": "direction methods"},
        ),
    log:
        "results/logs/compare_methods/{model}.log",
    conda:
        "../envs/stats.yaml"
    params:
        methods=COMPARED,
        intervals=INTERVALS,
        code=code_version("compare_methods"),
    script:
        "../scripts/compare_methods.py"


rule plot_methods:
    input:
        table=rules.compare_methods.output.table,
    output:
        figure=report(
            "results/{model}/methods/comparison.png",
            caption="../report/methods.rst",
            category="{model}",
            subcategory="Direction methods",
            labels={"model": "{model}", "figure": "effect against cost by method"},
        ),
    log:
        "results/logs/plot_methods/{model}.log",
    conda:
        "../envs/plot.yaml"
    params:
        title=model_title,
        dpi=config["plot_dpi"],
        code=code_version("plot_methods"),
    script:
        "../scripts/plot_methods.py"
