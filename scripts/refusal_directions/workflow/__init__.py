"""Workflow plumbing that every stage and the workflow definition stand on: the one user-facing error,
strict JSON, Hub access, execution settings (batch size, device: resources, never params), progress lines,
the entry scripts' logs and interruption handling, orphan and stale-lock detection, where a model job keeps
its finished batches, the layer files' integrity, and the code versions and canonical params of the rules.

May import: no other subpackage."""
