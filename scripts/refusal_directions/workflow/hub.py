"""Hugging Face Hub access: dataset ids, a quick reachability check, and cache-only mode when offline.

Standard library only at import time: the workflow definition uses ``hub_id`` before any job runs.
"""

from __future__ import annotations

import os
import socket
import sys
from urllib.parse import urlparse

HUB_SCHEME = "hf://"
OFFLINE_HINT = (
    "without Hub access, run the offline default instead: `make run` "
    "(config/config.yaml: the embedded SmolLM2-135M-Instruct and the prompts under data/)"
)


def hub_id(source: str) -> str | None:
    """The Hub dataset id of an ``hf://`` dataset source, None for a local file."""
    return source.removeprefix(HUB_SCHEME) if source.startswith(HUB_SCHEME) else None


def hub_reachable(timeout: float = 5.0) -> bool:
    """True when the Hub endpoint accepts a TCP connection (and HF_HUB_OFFLINE is not set)."""
    if os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False"):
        return False
    endpoint = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    try:
        with socket.create_connection((endpoint.hostname, endpoint.port or 443), timeout=timeout):
            return True
    except OSError:
        return False


def cache_only_unless_reachable() -> None:
    """Without a reachable Hub, make the Hugging Face libraries read their caches only: a cached model or
    dataset still loads, anything else fails at once instead of after minutes of retries."""
    if hub_reachable():
        return
    os.environ["HF_HUB_OFFLINE"] = "1"
    # Libraries imported before this call read the variable once, at import.
    for module, attribute in (("huggingface_hub.constants", "HF_HUB_OFFLINE"), ("datasets.config", "HF_HUB_OFFLINE")):
        if module in sys.modules:
            setattr(sys.modules[module], attribute, True)
