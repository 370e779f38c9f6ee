"""Where a run came from: code version, libraries, device, threads, times.

Every run record carries :func:`provenance` so a reader can tell which code, on which machine,
with which libraries produced it, and whether it resumed from a checkpoint.
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

__all__ = ["git_state", "cpu_model", "device_info", "provenance", "now"]

_REPO = Path(__file__).resolve().parents[1]


def now() -> str:
    """The current UTC time, ISO 8601 with seconds."""
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def git_state(repo: str | os.PathLike = _REPO) -> dict[str, Any]:
    """``{"commit", "dirty"}`` of the checkout holding the package; ``commit`` None outside git.

    ``dirty`` is True when tracked files differ from the commit (untracked files do not count).
    """
    try:
        commit = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=10, check=True).stdout.strip()
        changed = subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
                                 capture_output=True, text=True, timeout=10, check=True).stdout.strip()
        return {"commit": commit, "dirty": bool(changed)}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux, else ``platform.processor()``)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def device_info(device: Any = None) -> dict[str, Any]:
    """``{"device", "device_name"}``: e.g. ``cuda:0`` and ``NVIDIA H100 80GB HBM3``, or ``cpu`` and the CPU model."""
    import torch

    dev = torch.device(device) if device is not None else torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if dev.type == "cuda":
        return {"device": str(dev), "device_name": torch.cuda.get_device_name(dev)}
    return {"device": str(dev), "device_name": cpu_model()}


def provenance(device: Any = None, started: str | None = None, resumed_from_step: int | None = None) -> dict[str, Any]:
    """Everything a record needs to say where it came from (see the module docstring)."""
    import datasets
    import torch
    import transformers

    from . import __version__

    return {
        **git_state(),
        "package_version": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "datasets": datasets.__version__,
        **device_info(device),
        "cpu": cpu_model(),
        "threads": torch.get_num_threads(),
        "host": platform.node(),
        "started": started,
        "finished": now(),
        "resumed_from_step": resumed_from_step,
    }
