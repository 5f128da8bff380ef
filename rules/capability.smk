# What the direction costs (README: "What the edit costs"): the cross-entropy of every condition of the
# evaluation and of the edited model, on the baseline's own responses and on optional generic text.
from refusal_directions.workflow.hub import hub_id

CAPABILITY = canonical(config["capability"])
CAPABILITY_TEXTS = CAPABILITY["texts"]
# The generic text's local file, so that editing it reruns (nothing for a Hub dataset or without one).
CAPABILITY_TEXT_FILES = (
    []
    if CAPABILITY_TEXTS is None or hub_id(CAPABILITY_TEXTS["source"])
    else [CAPABILITY_TEXTS["source"]]
)
CAPABILITY_TEXT_PATH = "results/capability_texts.jsonl"
# The documents both measurements read: the evaluation's responses (the baseline's on harmless prompts are
# the on-distribution text) and the generic text where one is configured.
CAPABILITY_DOCUMENTS = {
    "generations": rules.evaluate_direction.output.generations,
    **({"texts": CAPABILITY_TEXT_PATH} if CAPABILITY_TEXTS else {}),
}
# Each measurement's losses: the hook conditions', and the edited model's when the export runs.
# What a measurement's losses depend on: the generic text's token budget, where there is generic text.
CAPABILITY_PARAMS = {"n_tokens": CAPABILITY["n_tokens"] if CAPABILITY_TEXTS else None}
CAPABILITY_LOSSES = [
    "results/{model}/capability/losses.csv",
    *(["results/{model}/capability/edited_losses.csv"] if config["export"]["enabled"] else []),
]


# First of all jobs (priority): a bad file stops the run before any model job.
rule download_capability_texts:
    input:
        source=CAPABILITY_TEXT_FILES,
    output:
        dataset=CAPABILITY_TEXT_PATH,
    log:
        "results/logs/download_capability_texts.log",
    priority: 100
    conda:
        "../envs/data.yaml"
    params:
        name="capability.texts",
        spec=CAPABILITY_TEXTS,
        what="texts",
        code=code_version("download_dataset"),
    script:
        "../scripts/download_dataset.py"


rule measure_capability:
    input:
        unpack(generation_inputs),
        **CAPABILITY_DOCUMENTS,
        selected=checkpoint_output("select_direction", "direction"),
        directions=rules.compute_directions.output.directions,
    output:
        losses=CAPABILITY_LOSSES[0],
    log:
        "results/logs/measure_capability/{model}.log",
    benchmark:
        "results/benchmarks/measure_capability/{model}.tsv"
    conda:
        "../envs/torch.yaml"
    threads: model_job_threads("measure_capability")
    resources:
        **model_job_resources("measure_capability"),
    params:
        model=model_spec,
        capability=CAPABILITY_PARAMS,
        seed=SELECTION["evaluation"]["seed"],
        code=code_version("measure_capability"),
    script:
        "../scripts/measure_capability.py"


rule measure_edited_capability:
    input:
        unpack(generation_inputs),
        **CAPABILITY_DOCUMENTS,
        # The edited model's direction, through the selection's checkpoint as the export takes it: a choice
        # that writes the same direction again skips this job as it skips the export.
        **EXPORT_DIRECTION,
        edited=rules.orthogonalize_model.output.edited,
    output:
        losses="results/{model}/capability/edited_losses.csv",
    log:
        "results/logs/measure_edited_capability/{model}.log",
    benchmark:
        "results/benchmarks/measure_edited_capability/{model}.tsv"
    conda:
        "../envs/torch.yaml"
    threads: model_job_threads("measure_edited_capability")
    resources:
        **model_job_resources("measure_edited_capability"),
    params:
        model=model_spec,
        capability=CAPABILITY_PARAMS,
        code=code_version("measure_edited_capability"),
    script:
        "../scripts/measure_edited_capability.py"


rule summarize_capability:
    input:
        losses=CAPABILITY_LOSSES,
    output:
        table=report(
            "results/{model}/capability.csv",
            category="{model}",
            subcategory="Capability",
            labels={"model": "{model}", "table": "cross-entropy by condition"},
        ),
    log:
        "results/logs/summarize_capability/{model}.log",
    conda:
        "../envs/stats.yaml"
    params:
        intervals=INTERVALS,
        code=code_version("summarize_capability"),
    script:
        "../scripts/summarize_capability.py"


rule plot_capability:
    input:
        capability=rules.summarize_capability.output.table,
        evaluation=rules.summarize_evaluation.output.table,
    output:
        figure=report(
            "results/{model}/capability.png",
            caption="../report/capability.rst",
            category="{model}",
            subcategory="Capability",
            labels={"model": "{model}", "figure": "effect against cost"},
        ),
    log:
        "results/logs/plot_capability/{model}.log",
    conda:
        "../envs/plot.yaml"
    params:
        title=model_title,
        dpi=config["plot_dpi"],
        code=code_version("plot_capability"),
    script:
        "../scripts/plot_capability.py"
