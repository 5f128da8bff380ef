# Judging refusal (README: "Judging refusal"): the llm judge's verdicts on every response file of the run,
# and how far the judges agree.
from refusal_directions.judging.judges import RESPONSE_SOURCES

# Each response file, by the stage that wrote it, and the label table it ends up in.
RESPONSE_FILES = {
    "behaviour": rules.generate_responses.output.responses,
    "interventions": rules.run_interventions.output.generations,
    "evaluation": rules.evaluate_direction.output.generations,
    "edited": rules.check_edited_model.output.generations,
}
LABEL_TABLES = {
    "behaviour": rules.score_refusals.output.refusals,
    "interventions": rules.summarize_interventions.output.labels,
    "evaluation": rules.summarize_evaluation.output.labels,
}
# The sources of this run: a stage's responses exist when its branch runs.
SOURCE_BRANCHES = {
    "behaviour": "behaviour",
    "interventions": "interventions",
    "evaluation": "selection",
    "edited": "export",
}
JUDGED_SOURCES = [s for s in RESPONSE_SOURCES if config[SOURCE_BRANCHES[s]]["enabled"]]
LABELLED_SOURCES = {s: LABEL_TABLES[s] for s in JUDGED_SOURCES if s in LABEL_TABLES}
# What a verdict depends on: the judge model as its jobs use it, its format and answers, the empty rule.
JUDGE_SETTINGS = (
    {
        **LLM_JUDGE,
        "model": {k: v for k, v in LLM_JUDGE["model"].items() if k not in NOT_RESULTS},
    }
    if LLM_JUDGE
    else None
)


wildcard_constraints:
    source="|".join(RESPONSE_SOURCES),


rule judge_responses:
    input:
        **(converted_folder(LLM_JUDGE["model"]) if LLM_JUDGE else {}),
        responses=lookup(dpath="{source}", within=RESPONSE_FILES),
    output:
        judgements=JUDGEMENTS,
    log:
        "results/logs/judge_responses/{model}.{source}.log",
    benchmark:
        "results/benchmarks/judge_responses/{model}.{source}.tsv"
    conda:
        "../envs/torch.yaml"
    threads: model_job_threads("judge_responses")
    resources:
        **model_job_resources("judge_responses"),
    params:
        judge=JUDGE_SETTINGS,
        empty_is_refusal=REFUSAL["empty_is_refusal"],
        code=code_version("judge_responses"),
    script:
        "../scripts/judge_responses.py"


rule judge_agreement:
    input:
        **LABELLED_SOURCES,
    output:
        agreement=report(
            "results/{model}/judges/agreement.csv",
            category="{model}",
            subcategory="Judges",
            labels={"model": "{model}", "table": "judge agreement"},
        ),
        rates="results/{model}/judges/rates.csv",
        disagreements="results/{model}/judges/disagreements.csv",
    log:
        "results/logs/judge_agreement/{model}.log",
    conda:
        "../envs/stats.yaml"
    params:
        judges=REFUSAL["judges"],
        primary=REFUSAL["primary"],
        intervals=INTERVALS,
        code=code_version("judge_agreement"),
    script:
        "../scripts/judge_agreement.py"
