# The edited model (README: "The edited model"): the direction projected out of the weights, saved as a
# standard Hugging Face checkpoint, and checked against the hook ablation it should equal.
from refusal_directions.config.resources import export_disk_mb

EXPORT = canonical(config["export"])
# The direction: the selected one (through the selection's checkpoint: a choice that writes the same bytes
# skips the export), or a configured layer's train-split direction.
EXPORT_DIRECTION = {
    "direction": (
        checkpoint_output("select_direction", "direction")
        if EXPORT["layer"] is None
        else rules.compute_directions.output.directions
    )
}
EXPORT_DISK_MB = {
    slug: export_disk_mb(MODEL_SIZES[slug].n_params, EXPORT["dtype"]) for slug in MODELS
}


rule orthogonalize_model:
    input:
        unpack(converted_model),
        **EXPORT_DIRECTION,
        manifest=activation_manifest,
    output:
        edited=directory("results/{model}/edited"),
    log:
        "results/logs/orthogonalize_model/{model}.log",
    benchmark:
        "results/benchmarks/orthogonalize_model/{model}.tsv"
    conda:
        "../envs/torch.yaml"
    threads: model_job_threads("orthogonalize_model")
    resources:
        **model_job_resources("orthogonalize_model"),
        disk_mb=lookup(dpath="{model}", within=EXPORT_DISK_MB),
    params:
        model=model_spec,
        export={key: EXPORT[key] for key in ("dtype", "layer")},
        code=code_version("orthogonalize_model"),
    script:
        "../scripts/orthogonalize_model.py"


# Beside the checkpoint, not in it: a rule cannot write inside another rule's directory output.
rule check_edited_model:
    input:
        unpack(evaluation_inputs),
        **EXPORT_DIRECTION,
        manifest=activation_manifest,
        edited=rules.orthogonalize_model.output.edited,
    output:
        check="results/{model}/edited_check.json",
        # The edited model as a condition of the evaluation (summarize_evaluation reads them).
        generations="results/{model}/edited_generations.jsonl",
        kl="results/{model}/edited_kl.csv",
    log:
        "results/logs/check_edited_model/{model}.log",
    benchmark:
        "results/benchmarks/check_edited_model/{model}.tsv"
    conda:
        "../envs/torch.yaml"
    threads: model_job_threads("check_edited_model")
    resources:
        **model_job_resources("check_edited_model"),
    params:
        model=model_spec,
        evaluation=SELECTION["evaluation"],
        layer=EXPORT["layer"],
        code=code_version("check_edited_model"),
    script:
        "../scripts/check_edited_model.py"
