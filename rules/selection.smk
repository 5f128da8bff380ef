rule compute_candidates:
    input:
        manifest=activation_manifest,
        layers=activation_files,
        splits="results/splits.json",
    output:
        "results/{model}/selection/candidates.safetensors",
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
        unpack(selection_inputs),
        candidates="results/{model}/selection/candidates.safetensors",
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
        scoring=selection_config("layer_stride", "max_candidates"),
        code=code_version("score_candidates"),
    script:
        "../scripts/score_candidates.py"


checkpoint select_direction:
    input:
        scores="results/{model}/selection/candidate_scores.csv",
        candidates="results/{model}/selection/candidates.safetensors",
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
        selection=selection_config("method", "kl_max", "induce_min", "max_layer_fraction"),
        code=code_version("select_direction"),
    script:
        "../scripts/select_direction.py"


rule plot_selection:
    input:
        scores="results/{model}/selection/scores.csv",
        summary="results/{model}/selection/selected_direction.json",
    output:
        report(
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
        unpack(selection_inputs),
        selected=chosen_direction,
        directions="results/{model}/directions.safetensors",
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
        evaluation=selection_config("evaluation")["evaluation"],
        code=code_version("evaluate_direction"),
    script:
        "../scripts/evaluate_direction.py"


rule summarize_evaluation:
    input:
        generations="results/{model}/selection/evaluation_generations.jsonl",
        kl="results/{model}/selection/evaluation_kl.csv",
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
        refusal=canonical(config["refusal"]),
        intervals=interval_config(),
        code=code_version("summarize_evaluation"),
    script:
        "../scripts/summarize_evaluation.py"
