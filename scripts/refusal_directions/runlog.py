"""Entry-script plumbing: send output to the rule's log and turn user errors into one clear line."""

from __future__ import annotations

import logging
import sys
import traceback
from contextlib import contextmanager


class UserError(Exception):
    """A problem with the user's input or environment, reported as one line without a traceback."""


@contextmanager
def rule_log(log_path: str):
    """Redirect stderr and logging to ``log_path``; report a UserError as one line on the terminal too."""
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
            message = f"error: {error}"
            print(message, file=log)
            print(message, file=terminal)
            sys.exit(1)
        except BaseException:
            traceback.print_exc(file=log)
            raise
        finally:
            sys.stderr = terminal
