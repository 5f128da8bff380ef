rule generate_responses:
    input:
        unpack(generation_inputs),
    output:
        responses="results/{model}/behaviour/responses.jsonl",
    log:
        "results/logs/generate_responses/{model}.log",
    benchmark:
        "results/benchmarks/generate_responses/{model}.tsv"
    conda:
        "../envs/torch.yaml"
    threads: model_job_threads("generate_responses")
    resources:
        **model_job_resources("generate_responses"),
    params:
        model=model_spec,
        generation=canonical(config["behaviour"]),
        code=code_version("generate_responses"),
    script:
        "../scripts/generate_responses.py"


rule score_refusals:
    input:
        responses=rules.generate_responses.output.responses,
        manifest=activation_manifest,
        judgements=judgement_files("behaviour"),
    output:
        refusals="results/{model}/behaviour/refusals.csv",
    log:
        "results/logs/score_refusals/{model}.log",
    conda:
        "../envs/torch.yaml"
    params:
        refusal=REFUSAL,
        code=code_version("score_refusals"),
    script:
        "../scripts/score_refusals.py"


rule behaviour_analysis:
    input:
        refusals=rules.score_refusals.output.refusals,
        directions=rules.compute_directions.output.directions,
        manifest=activation_manifest,
        layers=activation_files,
        splits=rules.split_prompts.output.splits,
        prompts=formatted_prompts,
    output:
        auroc=report(
            "results/{model}/behaviour/auroc_by_layer.csv",
            category="{model}",
            subcategory="Behaviour",
            labels={"model": "{model}", "table": "AUROC by layer"},
        ),
        figure=report(
            "results/{model}/behaviour/auroc_by_layer.png",
            caption="../report/auroc_by_layer.rst",
            category="{model}",
            subcategory="Behaviour",
            labels={"model": "{model}", "figure": "AUROC by layer"},
        ),
        levels="results/{model}/behaviour/projection_by_level.csv",
        rates="results/{model}/behaviour/refusal_rates.csv",
    log:
        "results/logs/behaviour_analysis/{model}.log",
    conda:
        "../envs/stats.yaml"
    params:
        statistics=INTERVALS,
        title=model_title,
        dpi=config["plot_dpi"],
        code=code_version("behaviour_analysis"),
    script:
        "../scripts/behaviour_analysis.py"
