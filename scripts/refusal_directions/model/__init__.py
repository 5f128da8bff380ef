"""Stage model (rules/extract.smk, and every job that runs a model): loading and GGUF conversion, sizes
read without loading, batching, the prefix cache, the forward runner and its hooks on the residual stream,
resume state, the extraction of the residual stream into HDF5 layer files, the refusal score and the
cross-entropy of text.

May import: workflow, data."""
