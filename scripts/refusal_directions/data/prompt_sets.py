"""The names of the main contrast's prompt sets: the one spelling of "harmful" and "harmless" in every file,
table and condition."""

HARMFUL, HARMLESS = "harmful", "harmless"
# The main contrast's sets: the prompts the model jobs after the extraction run, and the only sets whose
# post-instruction positions the extraction keeps.
MAIN_SETS = (HARMFUL, HARMLESS)
