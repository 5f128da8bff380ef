"""Entry-script plumbing: send a job's output to its log, turn user errors and interruptions into one clear
line, and hand the job function its arguments."""

from __future__ import annotations

import logging
import signal
import sys
import traceback
from contextlib import contextmanager
from dataclasses import replace

from .errors import UserError
from .execution import ExecutionSettings
from .orphan_watch import watch_snakemake
from .resume_place import resume_place

# The terminal of the running job (its stderr before rule_log sends it to the log), for ``say``.
TERMINAL: list = []
# What the job keeps for a rerun, each as a function that says what (model.resume.ResumeState.summary).
KEPT: list = []
# Exit status of a job stopped by a signal: 128 + SIGINT, as a shell reports Ctrl-C.
INTERRUPTED_STATUS = 130


def say(message: str) -> None:
    """One line for the user: in the job's log, and on the terminal as ``note: ...``."""
    logging.getLogger("refusal_directions").info("%s", message)
    if TERMINAL:
        print(f"note: {message}", file=TERMINAL[-1])


def _interrupt(signum, _frame):
    raise KeyboardInterrupt(signal.Signals(signum).name)


@contextmanager
def rule_log(log_path: str):
    """Redirect stderr and logging to ``log_path``. A UserError ends the job with exit status 1: one line
    ``error: ...`` on the terminal, and the message (without that prefix, so a log shown on failure does not
    repeat it) in the log; any other exception leaves its traceback in the log. Ctrl-C, SIGTERM (a cluster's
    time limit or preemption) and the death of the snakemake process that started the job (orphan_watch.py)
    end the job with one line saying what was kept for the next run (model/resume.py)."""
    terminal = sys.stderr
    with open(log_path, "w", buffering=1) as log:
        sys.stderr = log
        TERMINAL.append(terminal)
        logging.basicConfig(stream=log, level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", force=True)
        logger = logging.getLogger("refusal_directions")
        logger.info("job started")
        signal.signal(signal.SIGTERM, _interrupt)
        watch_snakemake()
        try:
            yield logger
            logger.info("job finished")
        except UserError as error:
            logger.error("%s", error)
            print(f"error: {error}", file=terminal)
            sys.exit(1)
        except KeyboardInterrupt as interruption:
            kept = "; ".join(summary() for summary in KEPT) or f"nothing of the job logging to {log_path} is kept"
            message = f"interrupted ({str(interruption) or 'SIGINT'}): {kept}; the next run resumes from there"
            logger.error("%s", message)
            print(message, file=terminal)
            sys.exit(INTERRUPTED_STATUS)
        except BaseException:
            traceback.print_exc(file=log)
            raise
        finally:
            sys.stderr = terminal
            TERMINAL.remove(terminal)


def job_arguments(snakemake) -> dict:
    """The keyword arguments of a rule's job function, from its Snakemake job: ``inputs`` and ``outputs``
    (the rule's named files; a list stays a list), every param but ``code`` (the code version, a rerun
    trigger only) under its own name, and for a job that runs the model, ``execution``: a job whose
    resources hold the execution settings (rules/common.smk: model_job_resources)."""
    arguments = {"inputs": _named(snakemake.input), "outputs": _named(snakemake.output)}
    arguments.update((name, value) for name, value in snakemake.params.items() if name != "code")
    if set(ExecutionSettings().resources()) <= set(snakemake.resources.keys()):
        place = resume_place(snakemake.rule, dict(snakemake.wildcards.items()), dict(snakemake.params.items()),
                             [str(path) for path in snakemake.input])  # fmt: skip
        execution = ExecutionSettings.from_resources(snakemake.resources, snakemake.threads)
        arguments["execution"] = replace(execution, resume=place)
    return arguments


def _named(files) -> dict:
    return {name: [str(f) for f in value] if isinstance(value, list) else str(value) for name, value in files.items()}
