rule convert_model:
    input:
        gguf_source,
    output:
        directory("results/converted/{conversion}"),
    log:
        "results/logs/convert_model/{conversion}.log",
    benchmark:
        "results/benchmarks/convert_model/{conversion}.tsv"
    conda:
        "../envs/torch.yaml"
    resources:
        mem_mb=conversion_memory,
        runtime=30,
    params:
        model=conversion_spec,
        code=code_version("convert_model"),
    script:
        "../scripts/convert_model.py"


checkpoint extract_activations:
    input:
        unpack(extraction_inputs),
    output:
        activations=directory("results/{model}/activations"),
        prompts=expand("results/{{model}}/prompts/{dataset}.jsonl", dataset=USED_DATASETS),
    log:
        "results/logs/extract_activations/{model}.log",
    benchmark:
        "results/benchmarks/extract_activations/{model}.tsv"
    conda:
        "../envs/torch.yaml"
    threads: model_job_threads("extract_activations")
    resources:
        **model_job_resources("extract_activations"),
    params:
        model=model_spec,
        datasets=USED_DATASETS,
        positions=config["positions"],
        refusal_score=canonical(config["refusal_score"]),
        code=code_version("extract_activations"),
    script:
        "../scripts/extract_activations.py"
