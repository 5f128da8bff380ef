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
        mem_mb=8000,
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
    # A second attempt gets half the batch size and twice the memory (see the resource functions).
    retries: 1
    conda:
        "../envs/torch.yaml"
    threads: 8
    resources:
        gpu=1,
        mem_mb=extraction_mem_mb,
        runtime=120,
        # Execution settings, deliberately not params: they never rerun anything (config/README.md).
        batch_size=extraction_batch_size,
        torch_device=config["device"],
        device_map=config["device_map"] or "none",
    params:
        model=model_spec,
        datasets=USED_DATASETS,
        code=code_version("extract"),
    script:
        "../scripts/extract_activations.py"
