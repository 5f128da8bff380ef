from refusal_directions.config.resources import conversion_mem_mb

# Per GGUF conversion: the GGUF file (inside the model's package folder or its local folder, both checked
# with the config), what the conversion depends on (where the file comes from, not how the model is used),
# and the memory of dequantising it.
GGUF_FILES = {
    key: str(
        (package_dir(spec["package"]) if spec["package"] else Path(spec["id"])) / spec["gguf_file"]
    )
    for key, spec in CONVERSIONS.items()
}
CONVERSION_SPECS = {
    key: {
        name: spec[name] for name in ("gguf_file", "id", "package", "revision", "trust_remote_code")
    }
    for key, spec in CONVERSIONS.items()
}
CONVERSION_MEMORY = {
    conversion_key(spec): conversion_mem_mb(MODEL_SIZES[key].n_params)
    for key, spec in SIZED_MODELS.items()
    if spec["gguf_file"]
}


rule convert_model:
    input:
        gguf=lookup(dpath="{conversion}", within=GGUF_FILES),
    output:
        converted=directory("results/converted/{conversion}"),
    log:
        "results/logs/convert_model/{conversion}.log",
    benchmark:
        "results/benchmarks/convert_model/{conversion}.tsv"
    conda:
        "../envs/torch.yaml"
    resources:
        mem_mb=lookup(dpath="{conversion}", within=CONVERSION_MEMORY),
        runtime=30,
    params:
        model=lookup(dpath="{conversion}", within=CONVERSION_SPECS),
        code=code_version("convert_model"),
    script:
        "../scripts/convert_model.py"


checkpoint extract_activations:
    input:
        unpack(converted_model),
        prompts=expand(rules.sample_prompts.output.prompts, dataset=USED_DATASETS),
    output:
        activations=directory(ACTIVATIONS),
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
