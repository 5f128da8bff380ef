"""Entry-script plumbing: send a job's output to its log, turn user errors into one clear line, and hand the
job function its arguments."""

from __future__ import annotations

import logging
import sys
import traceback
from contextlib import contextmanager

from .errors import UserError
from .execution import ExecutionSettings


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


def job_arguments(snakemake) -> dict:
    """The keyword arguments of a rule's job function, from its Snakemake job: ``inputs`` and ``outputs``
    (the rule's named files; a list stays a list), every param but ``code`` (the code version, a rerun
    trigger only) under its own name, and for a job that runs the model, ``execution``: a job whose
    resources hold the execution settings (rules/common.smk: model_job_resources)."""
    arguments = {"inputs": _named(snakemake.input), "outputs": _named(snakemake.output)}
    arguments.update((name, value) for name, value in snakemake.params.items() if name != "code")
    if set(ExecutionSettings().resources()) <= set(snakemake.resources.keys()):
        arguments["execution"] = ExecutionSettings.from_resources(snakemake.resources, snakemake.threads)
    return arguments


def _named(files) -> dict:
    return {name: [str(f) for f in value] if isinstance(value, list) else str(value) for name, value in files.items()}
