"""Entry-script plumbing: send a job's output to its log and turn user errors into one clear line."""

from __future__ import annotations

import logging
import sys
import traceback
from contextlib import contextmanager

from .errors import UserError


@contextmanager
def rule_log(log_path: str):
    """Redirect stderr and logging to ``log_path``. A UserError ends the job with exit status 1: one line
    ``error: ...`` on the terminal, and the message (without that prefix, so a log shown on failure does not
    repeat it) in the log; any other exception leaves its traceback in the log."""
    terminal = sys.stderr
    with open(log_path, "w", buffering=1) as log:
        sys.stderr = log
        logging.basicConfig(stream=log, level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", force=True)
        logger = logging.getLogger("refusal_directions")
        logger.info("job started")
        try:
            yield logger
            logger.info("job finished")
        except UserError as error:
            logger.error("%s", error)
            print(f"error: {error}", file=terminal)
            sys.exit(1)
        except BaseException:
            traceback.print_exc(file=log)
            raise
        finally:
            sys.stderr = terminal


def named_files(snakemake) -> dict:
    """A job's named inputs and outputs as plain dicts, as the package's job functions take them."""
    return {"inputs": dict(snakemake.input.items()), "outputs": dict(snakemake.output.items())}
