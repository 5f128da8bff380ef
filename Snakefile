"""refusal-directions: find and validate difference-in-means directions, layer by layer."""

from snakemake.utils import min_version

min_version("9.20")


configfile: "config/config.yaml"


report: "report/workflow.rst"


# Each file takes paths from the outputs of the files included above it (rules.NAME.output).
include: "rules/common.smk"
include: "rules/data.smk"
include: "rules/extract.smk"
include: "rules/stats.smk"
include: "rules/behaviour.smk"
include: "rules/interventions.smk"
include: "rules/selection.smk"
include: "rules/export.smk"
include: "rules/capability.smk"
include: "rules/judges.smk"
include: "rules/methods.smk"
include: "rules/report.smk"
include: "rules/compare.smk"
include: "rules/targets.smk"


# Hub downloads need the network, which cluster compute nodes often lack: run them where snakemake runs.
localrules:
    all,
    download_dataset,
    download_capability_texts,


# Model jobs keep their finished batches for a rerun after an interruption (refusal_directions/model/resume.py):
# once the whole run has succeeded they are not needed.
onsuccess:
    remove_resume_folders()


rule all:
    default_target: True
    input:
        final_outputs(),
        per_layer_targets,
