# Each step's params hold only the selection settings it depends on.
SELECTION = canonical(config["selection"])
# The edited model's responses and KL (its check, rules/export.smk), a condition of the evaluation when
# the export runs.
# What the candidates' scores depend on: which layers are scored (the layer filter's bound only when it limits
# the scoring) and the prefilter (its top k only when it runs).
CANDIDATE_SCORING = {
    key: SELECTION[key]
    for key in (
        "layer_stride",
        "max_candidates",
        "score_all_layers",
        "max_layer_fraction",
        "prefilter",
        "prefilter_top_k",
    )
    if (key != "max_layer_fraction" or not SELECTION["score_all_layers"])
    and (key != "prefilter_top_k" or SELECTION["prefilter"] != "none")
}
EDITED_CONDITION = {
    key: [f"results/{{model}}/edited_{name}"] if config["export"]["enabled"] else []
    for key, name in (("generations", "generations.jsonl"), ("kl", "kl.csv"))
}


rule compute_candidates:
    input:
        manifest=activation_manifest,
        layers=activation_files,
        splits=rules.split_prompts.output.splits,
    output:
        candidates="results/{model}/selection/candidates.safetensors",
    log:
        "results/logs/compute_candidates/{model}.log",
    conda:
        "../envs/stats.yaml"
    params:
        model_id=model_id,
        code=code_version("compute_candidates"),
    script:
        "../scripts/compute_candidates.py"


rule score_candidates:
    input:
        unpack(generation_inputs),
        manifest=activation_manifest,
        candidates=rules.compute_candidates.output.candidates,
    output:
        scores="results/{model}/selection/candidate_scores.csv",
    log:
        "results/logs/score_candidates/{model}.log",
    benchmark:
        "results/benchmarks/score_candidates/{model}.tsv"
    conda:
        "../envs/torch.yaml"
    threads: model_job_threads("score_candidates")
    resources:
        **model_job_resources("score_candidates"),
    params:
        model=model_spec,
        scoring=CANDIDATE_SCORING,
        code=code_version("score_candidates"),
    script:
        "../scripts/score_candidates.py"


checkpoint select_direction:
    input:
        scores=rules.score_candidates.output.scores,
        candidates=rules.compute_candidates.output.candidates,
    output:
        scores=report(
            "results/{model}/selection/scores.csv",
            category="{model}",
            subcategory="Selection",
            labels={"model": "{model}", "table": "candidate scores"},
        ),
        summary="results/{model}/selection/selected_direction.json",
        direction="results/{model}/selection/selected_direction.safetensors",
    log:
        "results/logs/select_direction/{model}.log",
    conda:
        "../envs/stats.yaml"
    params:
        selection={
            key: SELECTION[key] for key in ("method", "kl_max", "induce_min", "max_layer_fraction")
        },
        code=code_version("select_direction"),
    script:
        "../scripts/select_direction.py"


rule plot_selection:
    input:
        scores=rules.select_direction.output.scores,
        summary=rules.select_direction.output.summary,
    output:
        figure=report(
            "results/{model}/selection/selection.png",
            caption="../report/selection.rst",
            category="{model}",
            subcategory="Selection",
            labels={"model": "{model}", "figure": "candidate scores"},
        ),
    log:
        "results/logs/plot_selection/{model}.log",
    conda:
        "../envs/plot.yaml"
    params:
        title=model_title,
        dpi=config["plot_dpi"],
        code=code_version("plot_selection"),
    script:
        "../scripts/plot_selection.py"


rule evaluate_direction:
    input:
        unpack(evaluation_inputs),
        manifest=activation_manifest,
        # Through the checkpoint: a selection that writes the same direction again (Snakemake compares
        # its checksum) skips the evaluation, a model job.
        selected=checkpoint_output("select_direction", "direction"),
        directions=rules.compute_directions.output.directions,
    output:
        generations="results/{model}/selection/evaluation_generations.jsonl",
        kl="results/{model}/selection/evaluation_kl.csv",
    log:
        "results/logs/evaluate_direction/{model}.log",
    benchmark:
        "results/benchmarks/evaluate_direction/{model}.tsv"
    conda:
        "../envs/torch.yaml"
    threads: model_job_threads("evaluate_direction")
    resources:
        **model_job_resources("evaluate_direction"),
    params:
        model=model_spec,
        evaluation=SELECTION["evaluation"],
        code=code_version("evaluate_direction"),
    script:
        "../scripts/evaluate_direction.py"


rule summarize_evaluation:
    input:
        generations=[rules.evaluate_direction.output.generations, *EDITED_CONDITION["generations"]],
        kl=[rules.evaluate_direction.output.kl, *EDITED_CONDITION["kl"]],
        judgements=judgement_files(
            "evaluation", *(["edited"] if config["export"]["enabled"] else [])
        ),
    output:
        labels="results/{model}/selection/evaluation_labels.csv",
        table=report(
            "results/{model}/selection/evaluation.csv",
            category="{model}",
            subcategory="Selection",
            labels={"model": "{model}", "table": "evaluation on the test split"},
        ),
    log:
        "results/logs/summarize_evaluation/{model}.log",
    conda:
        "../envs/torch.yaml"
    params:
        refusal=REFUSAL,
        intervals=INTERVALS,
        code=code_version("summarize_evaluation"),
    script:
        "../scripts/summarize_evaluation.py"
