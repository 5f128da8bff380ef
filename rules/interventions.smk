rule run_interventions:
    input:
        unpack(generation_inputs),
        directions=rules.compute_directions.output.directions,
        manifest=activation_manifest,
    output:
        generations="results/{model}/interventions/generations.jsonl",
        kl="results/{model}/interventions/kl.csv",
    log:
        "results/logs/run_interventions/{model}.log",
    benchmark:
        "results/benchmarks/run_interventions/{model}.tsv"
    conda:
        "../envs/torch.yaml"
    threads: model_job_threads("run_interventions")
    resources:
        **model_job_resources("run_interventions"),
    params:
        model=model_spec,
        interventions=canonical(config["interventions"]),
        code=code_version("run_interventions"),
    script:
        "../scripts/run_interventions.py"


rule summarize_interventions:
    input:
        generations=rules.run_interventions.output.generations,
        kl=rules.run_interventions.output.kl,
        judgements=judgement_files("interventions"),
    output:
        labels="results/{model}/interventions/labels.csv",
        sweep=report(
            "results/{model}/interventions/sweep.csv",
            category="{model}",
            subcategory="Interventions",
            labels={"model": "{model}", "table": "intervention sweep"},
        ),
        figure=report(
            "results/{model}/interventions/sweep.png",
            caption="../report/interventions.rst",
            category="{model}",
            subcategory="Interventions",
            labels={"model": "{model}", "figure": "intervention sweep"},
        ),
    log:
        "results/logs/summarize_interventions/{model}.log",
    conda:
        "../envs/torch.yaml"
    params:
        refusal=REFUSAL,
        intervals=INTERVALS,
        title=model_title,
        dpi=config["plot_dpi"],
        code=code_version("summarize_interventions"),
    script:
        "../scripts/summarize_interventions.py"
