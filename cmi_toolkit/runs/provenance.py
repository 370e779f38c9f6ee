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

from .. import defaults as D

__all__ = ["git_state", "cpu_features", "cpu_model", "device_info", "provenance", "run_start", "now",
           "recreation_blocker"]

_REPO = D.REPO_ROOT


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
        # `make setup` reads notebooks through nbstripout (.gitattributes); in a fresh clone every file is "racily
        # clean", so a plain status would start that filter once per notebook (seconds): compare raw bytes instead
        changed = subprocess.run(["git", "-C", str(repo), "-c", "filter.nbstripout.clean=cat", "status", "--porcelain",
                                  "--untracked-files=no"],
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


def cpu_features() -> dict[str, Any]:
    """``{"cpu_capability", "cpu_bf16"}``: the vector instruction set PyTorch's CPU kernels use here (``AVX2``,
    ``AVX512``, ...) and whether this CPU does bf16 natively (AVX-512 BF16 or AMX, as oneDNN reports it).

    CPU training is deterministic for a given thread count *on one kind of CPU*: kernels of another instruction
    set round differently, so a run trained again elsewhere does not match its record to the digit. Without
    native bf16, bf16 autocast is emulated (measured on an AVX2 EPYC: a 1024x384x1536 bf16 GEMM at 1.3 GFLOP/s
    against 60 in fp32, one thread).
    """
    import torch

    try:
        bf16 = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        bf16 = False
    return {"cpu_capability": torch.backends.cpu.get_cpu_capability(), "cpu_bf16": bf16}


def device_info(device: Any = None) -> dict[str, Any]:
    """``{"device", "device_name"}``: e.g. ``cuda:0`` and ``NVIDIA H100 80GB HBM3``, or ``cpu`` and the CPU model."""
    import torch

    dev = torch.device(device) if device is not None else torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if dev.type == "cuda":
        return {"device": str(dev), "device_name": torch.cuda.get_device_name(dev)}
    return {"device": str(dev), "device_name": cpu_model()}


def run_start() -> dict[str, Any]:
    """What a run notes as it starts: the time and the code (commit and dirty flag) it starts from. Passed to
    :func:`provenance` at the end, so a commit made while a run trains is never taken for the run's code."""
    return {"started": now(), **git_state()}


def provenance(device: Any = None, started: str | dict[str, Any] | None = None,
               resumed_from_step: int | None = None) -> dict[str, Any]:
    """Everything a record needs to say where it came from (see the module docstring). ``started`` is
    :func:`run_start`'s note (the commit then), or only a start time (the commit is then read now)."""
    at_start = started if isinstance(started, dict) else {"started": started, **git_state()}
    import datasets
    import torch
    import transformers

    from .. import __version__

    return {
        "commit": at_start.get("commit"), "dirty": at_start.get("dirty"),
        "package_version": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "datasets": datasets.__version__,
        **device_info(device),
        "cpu": cpu_model(),
        **cpu_features(),
        "threads": torch.get_num_threads(),
        "host": platform.node(),
        "started": at_start.get("started"),
        "finished": now(),
        "resumed_from_step": resumed_from_step,
    }


def recreation_blocker(record: dict[str, Any], bf16: bool) -> str | None:
    """Why a CPU record cannot be matched to the digit by training its run again on this machine (None: it can).

    ``bf16``: whether the run trains under bf16 autocast. A bf16 record that names its CPU's instruction set must
    have been made with this one's (bf16 rounds too coarsely for another one's kernels to follow the same path); a
    bf16 record that does not say whether its CPU had native bf16 was made with it (every bf16 CPU record of the kit
    so far came from an AVX-512 BF16 machine), which this CPU must then have. An fp32 run can be made again on
    another instruction set: it follows its record up to rounding, which the re-creation then checks
    (:func:`cmi_toolkit.runs.execute._rounding_gap`).
    """
    import torch

    prov = record.get("provenance") or {}
    if str(prov.get("device", "cpu")).startswith("cuda") or torch.cuda.is_available():
        return None
    here = cpu_features()
    there = prov.get("cpu_capability")
    if bf16 and there is not None and there != here["cpu_capability"]:
        return (f"it was trained on a CPU whose kernels use {there} and this one's use {here['cpu_capability']}; "
                "they round differently, so a run trained here cannot match it to the digit")
    if bf16 and not here["cpu_bf16"] and prov.get("cpu_bf16", True):
        return ("it was trained under bf16 autocast on a CPU with native bf16 and this CPU has none (no AVX-512 BF16 "
                "or AMX): here bf16 is emulated, tens of times slower, and cannot match it to the digit")
    return None
