rule generate_responses:
    input:
        unpack(model_job_inputs),
    output:
        "results/{model}/behaviour/responses.jsonl",
    log:
        "results/logs/generate_responses/{model}.log",
    benchmark:
        "results/benchmarks/generate_responses/{model}.tsv"
    retries: 1
    conda:
        "../envs/torch.yaml"
    threads: 8
    resources:
        gpu=1,
        mem_mb=extraction_mem_mb,
        runtime=120,
        batch_size=extraction_batch_size,
        torch_device=config["device"],
        device_map=config["device_map"] or "none",
    params:
        model=model_spec,
        generation=config["behaviour"],
        code=code_version("generate_responses"),
    script:
        "../scripts/generate_responses.py"


rule score_refusals:
    input:
        "results/{model}/behaviour/responses.jsonl",
    output:
        "results/{model}/behaviour/refusals.csv",
    log:
        "results/logs/score_refusals/{model}.log",
    conda:
        "../envs/torch.yaml"
    params:
        refusal=config["refusal"],
        code=code_version("score_refusals"),
    script:
        "../scripts/score_refusals.py"


rule behaviour_analysis:
    input:
        refusals="results/{model}/behaviour/refusals.csv",
        directions="results/{model}/directions.safetensors",
        manifest=activation_manifest,
        prompts=expand("results/{{model}}/prompts/{dataset}.jsonl", dataset=MAIN_DATASETS),
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
    log:
        "results/logs/behaviour_analysis/{model}.log",
    conda:
        "../envs/stats.yaml"
    params:
        statistics=statistics_config(),
        title=model_title,
        dpi=config["plot_dpi"],
        code=code_version("behaviour_analysis"),
    script:
        "../scripts/behaviour_analysis.py"
