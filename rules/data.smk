from refusal_directions.config.check import sampled_prompts
from refusal_directions.workflow.hub import hub_id

# Per dataset: the local file behind it (so editing it reruns; nothing for a Hub dataset) and the number of
# prompts sampled from it.
DATASET_FILES = {
    name: [] if hub_id(spec["source"]) else [spec["source"]] for name, spec in DATASETS.items()
}
SAMPLE_SIZES = {name: sampled_prompts(config, name) for name in DATASETS}


rule download_dataset:
    input:
        source=lookup(dpath="{dataset}", within=DATASET_FILES),
    output:
        dataset="results/datasets/{dataset}.jsonl",
    log:
        "results/logs/download_dataset/{dataset}.log",
    conda:
        "../envs/data.yaml"
    params:
        name="{dataset}",
        spec=lookup(dpath="{dataset}", within=DATASETS),
        code=code_version("download_dataset"),
    script:
        "../scripts/download_dataset.py"


rule sample_prompts:
    input:
        dataset=rules.download_dataset.output.dataset,
    output:
        prompts="results/prompts/{dataset}.jsonl",
    log:
        "results/logs/sample_prompts/{dataset}.log",
    conda:
        "../envs/data.yaml"
    params:
        name="{dataset}",
        n_samples=lookup(dpath="{dataset}", within=SAMPLE_SIZES),
        seed=config["seed"],
        code=code_version("sample_prompts"),
    script:
        "../scripts/sample_prompts.py"


rule split_prompts:
    input:
        prompts=expand(rules.sample_prompts.output.prompts, dataset=USED_DATASETS),
    output:
        splits="results/splits.json",
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
