"""Stage judging (rules/judges.smk, and every stage with responses): what counts as a refusal: the
registry of judges, the labels of each response, the llm judge model job and the judges' agreement.

May import: workflow, data, model, stats."""
