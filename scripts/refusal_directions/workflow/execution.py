"""How a model job runs, as opposed to what it computes: batch size, token budget, device, device map,
prefix cache, threads, and the prompt-length guard.

These settings reach the jobs as Snakemake resources, never as params, so changing them reruns nothing
(config/README.md). This class is the one place that reads them from the config, turns them into resources
and back into settings. Standard library only: the workflow definition uses it before any job runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .resume_place import ResumePlace

# batch_size "auto": the most prompts in a batch; any batch halves on out-of-memory.
AUTO_BATCH_SIZE = 32
# Resources hold numbers and strings only, so "no device map" and "no explicit limit" need a name.
NO_DEVICE_MAP = "none"
CONTEXT_LENGTH = 0


@dataclass(frozen=True)
class ExecutionSettings:
    batch_size: int | str = "auto"
    max_batch_tokens: int | str = "auto"  # auto: sized when the model is loaded (model.batching.token_budget)
    device: str = "auto"
    device_map: str | None = None
    # auto: the prompt prefix a pass shares runs once (model.forward.ModelRunner); off: every prompt whole.
    prefix_cache: str = "auto"
    # A guard, not a result: the longest prompt the job may feed (None: the model's context length).
    max_prompt_tokens: int | None = None
    threads: int = 1
    # Where the job keeps its finished batches for a rerun after an interruption (model/resume.py); None: nowhere.
    resume: ResumePlace | None = None

    @property
    def max_batch_size(self) -> int:
        """The most prompts in a batch; a batch that runs out of memory is halved."""
        return AUTO_BATCH_SIZE if self.batch_size == "auto" else int(self.batch_size)

    @classmethod
    def from_config(cls, config: dict) -> ExecutionSettings:
        return cls(
            config["batch_size"], config["max_batch_tokens"], config["device"], config["device_map"],
            "off" if config["prefix_cache"] in ("off", False) else "auto", config["max_prompt_tokens"],
        )  # fmt: skip

    def resources(self) -> dict[str, int | str]:
        return {
            "batch_size": self.batch_size,
            "max_batch_tokens": self.max_batch_tokens,
            "torch_device": self.device,
            "device_map": self.device_map or NO_DEVICE_MAP,
            "prefix_cache": self.prefix_cache,
            "max_prompt_tokens": self.max_prompt_tokens or CONTEXT_LENGTH,
        }

    @classmethod
    def from_resources(cls, resources, threads: int) -> ExecutionSettings:
        """Settings of a running job from its Snakemake ``resources`` and ``threads``."""
        device_map = resources.device_map
        return cls(
            batch_size=resources.batch_size,
            max_batch_tokens=resources.max_batch_tokens,
            device=resources.torch_device,
            device_map=None if device_map == NO_DEVICE_MAP else device_map,
            prefix_cache=resources.prefix_cache,
            max_prompt_tokens=resources.max_prompt_tokens or None,
            threads=threads,
        )
