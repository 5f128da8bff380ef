"""The targets of `all` (Snakefile), named from the outputs of every rule file included before this one."""

# The rules of each optional branch: they run when the config enables it (<branch>: enabled: true).
BRANCHES = {
    "behaviour": ("generate_responses", "score_refusals", "behaviour_analysis"),
    "interventions": ("run_interventions", "summarize_interventions"),
    "selection": (
        "score_candidates",
        "select_direction",
        "plot_selection",
        "evaluate_direction",
        "summarize_evaluation",
    ),
    "export": ("orthogonalize_model", "check_edited_model", "measure_edited_capability"),
    "capability": (
        "download_capability_texts",
        "measure_capability",
        "measure_edited_capability",
        "summarize_capability",
        "plot_capability",
    ),
}
# Rules that a setting leaves out: the generic text without one, the llm judge when it does not run, the
# judges' agreement when no branch writes responses.
UNUSED = (
    ({"download_capability_texts"} if config["capability"]["texts"] is None else set())
    | (set() if LLM_JUDGE else {"judge_responses"})
    | (set() if LABELLED_SOURCES else {"judge_agreement"})
    | (set() if OTHER_METHODS else {"compare_methods", "plot_methods"})
)


def final_outputs():
    """Every file the workflow writes whose name is known before the extraction runs: the outputs of every
    rule (but those of a disabled branch, and those a setting leaves out), for every model, dataset and GGUF
    conversion, and each direction method's for its methods. A target that goes missing is rebuilt; an
    intermediate file that is not a target would not be once the files after it exist. Files per layer are
    named once the extraction has run: per_layer_targets."""
    values = {
        "model": list(MODELS),
        "dataset": USED_DATASETS,
        "conversion": list(CONVERSIONS),
        "source": JUDGED_SOURCES,
    }
    disabled = UNUSED | {
        name
        for branch, names in BRANCHES.items()
        if not config[branch]["enabled"]
        for name in names
    }
    # A direction method's rule runs for its methods (rules/methods.smk) and judges their own response files.
    method_paths = [
        path
        for name, methods in RULE_METHODS.items()
        for method in methods
        for path in expand(
            list(getattr(rules, name).output),
            model=list(MODELS),
            method=[method],
            source=method_sources(method),
        )
    ]
    return [
        path
        for rule in workflow.rules
        if rule.name not in disabled
        and rule.name not in RULE_METHODS
        and "layer" not in rule.wildcard_names
        for path in expand(
            list(getattr(rules, rule.name).output),
            **{name: values[name] for name in rule.wildcard_names},
        )
    ] + method_paths


def per_layer_targets(wildcards):
    """The per-layer outputs of every model whose extraction has finished, as targets of `all`, so one
    that goes missing is rebuilt (Snakemake rebuilds a missing intermediate file only when a job that
    needs it runs anyway). Before any extraction has finished there are none to list, and asking the
    checkpoint would hide every later job from a dry run."""
    return [
        path
        for model in MODELS
        if Path(ACTIVATIONS.format(model=model), "manifest.json").exists()
        for path in expand(list(rules.layer_stats.output), model=model, layer=layer_labels(model))
    ]
