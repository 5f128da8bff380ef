"""Imported at start-up by every Python process whose PYTHONPATH holds this folder (tests/test_interruptions.py
puts it there for one snakemake run): once a process logs a line that starts with PAUSE_AT_LOG_LINE (for
example "extraction: batch 5,"), it sleeps until a signal ends it. The test then interrupts a job that is
known to stand still mid-extraction, on a machine of any speed and under any load: no race with a timer."""

import os

PREFIX = os.environ.get("PAUSE_AT_LOG_LINE")

if PREFIX:
    import logging
    import time

    _handle = logging.Logger.handle

    def _handle_then_pause(self, record):
        _handle(self, record)
        if record.getMessage().startswith(PREFIX):
            while True:
                time.sleep(3600)

    logging.Logger.handle = _handle_then_pause
