"""Fail-fast access to the Hugging Face hub.

Nothing in the kit may hang on a closed network. Before any hub download the
kit asks :func:`hub_reachable`, which resolves and connects to the hub host in a
background thread and gives up after a few seconds; ``HF_HUB_OFFLINE=1`` (or
``HF_DATASETS_OFFLINE=1``) short-cuts it to ``False``.
"""

from __future__ import annotations

import os
import socket
import threading
from urllib.parse import urlparse

__all__ = ["HubUnavailableError", "hub_reachable", "require_hub"]

_TRUE = {"1", "true", "yes", "on"}


class HubUnavailableError(RuntimeError):
    """The hub is needed but cannot be reached; the message says what to pass instead."""


def _hub_host() -> tuple[str, int]:
    url = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    return url.hostname or "huggingface.co", url.port or (443 if url.scheme != "http" else 80)


def hub_reachable(timeout: float = 3.0) -> bool:
    """Whether a TCP connection to the hub opens within ``timeout`` seconds."""
    if any(os.environ.get(v, "").lower() in _TRUE for v in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")):
        return False
    result: list[bool] = []

    def probe() -> None:
        try:
            with socket.create_connection(_hub_host(), timeout=timeout):
                result.append(True)
        except OSError:
            result.append(False)

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout)
    return bool(result and result[0])


def require_hub(what: str, instead: str, timeout: float = 3.0) -> None:
    """Raise :class:`HubUnavailableError` naming ``what`` and the ``instead`` remedy when offline."""
    if not hub_reachable(timeout):
        host, _ = _hub_host()
        raise HubUnavailableError(
            f"{what} needs the Hugging Face hub ({host}), which cannot be reached from here "
            f"(no network, or HF_HUB_OFFLINE is set). {instead}"
        )
