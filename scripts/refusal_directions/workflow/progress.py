"""Progress of a model job as log lines, one per batch, so a long job can be followed with ``tail -f``."""

from __future__ import annotations

import logging
import time

log = logging.getLogger(__name__)


class Progress:
    """Counts prompts through one pass (an extraction, a condition of an intervention) and logs each batch."""

    def __init__(self, label: str, total: int):
        self.label = label
        self.total = total
        self.done = 0
        self.batches = 0
        self.started = time.perf_counter()

    def update(self, n_prompts: int) -> None:
        self.done += n_prompts
        self.batches += 1
        elapsed = time.perf_counter() - self.started
        rate = self.done / elapsed if elapsed > 0 else float("inf")
        log.info("%s: batch %d, %d/%d prompts, %.1f prompts/s", self.label, self.batches, self.done, self.total, rate)
