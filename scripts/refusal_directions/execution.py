"""How a model job runs, as opposed to what it computes: batch size, device, device map, threads.

These settings reach the jobs as Snakemake resources, never as params, so changing them reruns nothing
(config/README.md). This class is the one place that reads them from the config, turns them into resources
and back into settings. Standard library only: the workflow definition uses it before any job runs.
"""

from __future__ import annotations

from dataclasses import dataclass

# batch_size "auto": the number of prompts a batch starts with; any batch halves on out-of-memory.
AUTO_BATCH_SIZE = 32
# Resources hold numbers and strings only, so "no device map" needs a name.
NO_DEVICE_MAP = "none"


@dataclass(frozen=True)
class ExecutionSettings:
    batch_size: int | str = "auto"
    device: str = "auto"
    device_map: str | None = None
    threads: int = 1

    @property
    def max_batch_size(self) -> int:
        """Prompts per batch at the start; a batch that runs out of memory is halved."""
        return AUTO_BATCH_SIZE if self.batch_size == "auto" else int(self.batch_size)

    @classmethod
    def from_config(cls, config: dict) -> ExecutionSettings:
        return cls(config["batch_size"], config["device"], config["device_map"])

    def resources(self) -> dict[str, int | str]:
        return {
            "batch_size": self.batch_size,
            "torch_device": self.device,
            "device_map": self.device_map or NO_DEVICE_MAP,
        }

    @classmethod
    def from_resources(cls, resources, threads: int) -> ExecutionSettings:
        """Settings of a running job from its Snakemake ``resources`` and ``threads``."""
        device_map = resources.device_map
        return cls(
            batch_size=resources.batch_size,
            device=resources.torch_device,
            device_map=None if device_map == NO_DEVICE_MAP else device_map,
            threads=threads,
        )
