rule run_interventions:
    input:
        unpack(model_job_inputs),
    output:
        generations="results/{model}/interventions/generations.jsonl",
        kl="results/{model}/interventions/kl.csv",
    log:
        "results/logs/run_interventions/{model}.log",
    benchmark:
        "results/benchmarks/run_interventions/{model}.tsv"
    retries: 1
    conda:
        "../envs/torch.yaml"
    threads: 8
    resources:
        gpu=1,
        mem_mb=extraction_mem_mb,
        runtime=240,
        batch_size=extraction_batch_size,
        torch_device=config["device"],
        device_map=config["device_map"] or "none",
    params:
        model=model_spec,
        interventions=config["interventions"],
        code=code_version("run_interventions"),
    script:
        "../scripts/run_interventions.py"


rule summarize_interventions:
    input:
        generations="results/{model}/interventions/generations.jsonl",
        kl="results/{model}/interventions/kl.csv",
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
        refusal=config["refusal"],
        title=model_title,
        dpi=config["plot_dpi"],
        code=code_version("summarize_interventions"),
    script:
        "../scripts/summarize_interventions.py"
