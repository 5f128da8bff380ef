rule download_dataset:
    input:
        dataset_source,
    output:
        "results/datasets/{dataset}.jsonl",
    log:
        "results/logs/download_dataset/{dataset}.log",
    conda:
        "../envs/data.yaml"
    params:
        spec=dataset_spec,
        code=code_version("download_dataset"),
    script:
        "../scripts/download_dataset.py"


rule sample_prompts:
    input:
        "results/datasets/{dataset}.jsonl",
    output:
        "results/prompts/{dataset}.jsonl",
    log:
        "results/logs/sample_prompts/{dataset}.log",
    conda:
        "../envs/data.yaml"
    params:
        n_samples=dataset_samples,
        seed=config["seed"],
        code=code_version("sample_prompts"),
    script:
        "../scripts/sample_prompts.py"


rule split_prompts:
    input:
        expand("results/prompts/{dataset}.jsonl", dataset=USED_DATASETS),
    output:
        "results/splits.json",
    log:
        "results/logs/split_prompts.log",
    conda:
        "../envs/data.yaml"
    params:
        datasets=USED_DATASETS,
        splits=SPLITS,
        code=code_version("split_prompts"),
    script:
        "../scripts/split_prompts.py"
