"""Stage data (rules/data.smk): prompt sets from local files or the Hub, the names of the main contrast's
sets, seeded samples, train / validation / test splits, and the chat format that turns a prompt into the
model's input.

May import: workflow."""
