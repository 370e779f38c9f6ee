"""The set-up every course notebook shares: its output folders and where its data lives."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["setup", "folders", "data_dir", "cap_threads", "SMOKE_BANNER"]

SMOKE_BANNER = "smoke: pipeline check, numbers are not meaningful"

_ENV = {"glue": "CMI_TOOLKIT_GLUE_DIR", "cot": "CMI_TOOLKIT_COT_DIR"}


def folders(output_dir: str | os.PathLike, figures_dir: str | os.PathLike) -> tuple[Path, Path]:
    """(output_dir, figures_dir) as paths; the output folder is created."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    return output_dir, Path(figures_dir)


def data_dir(kind: str, given: str | os.PathLike | None = None) -> str:
    """The ``glue`` or ``cot`` data folder: ``given``, else its environment variable, else ``../../shared/data/<kind>``
    (the notebooks run from ``notebooks/``, with ``shared/`` beside the checkout)."""
    if given is not None:
        return str(given)
    return os.environ.get(_ENV[kind]) or str(Path.cwd().parent.parent / "shared" / "data" / kind)


def cap_threads(limit: int = 4) -> int:
    """Cap torch's intra-op threads at ``limit`` (or ``$CMI_TOOLKIT_THREADS``) and its inter-op threads at 1.

    Small models gain little beyond four threads, and a class's laptops or a shared server should
    stay responsive; tokenizers' own thread pool is switched off for the same reason. Returns the
    number of threads torch will use.
    """
    import torch

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    wanted = int(os.environ.get("CMI_TOOLKIT_THREADS") or limit)
    threads = max(1, min(wanted, os.cpu_count() or 1))
    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # already set, or parallel work has started: keep what is there
        pass
    return threads


def setup(smoke: bool, output_dir: str | os.PathLike, figures_dir: str | os.PathLike, kind: str | None = None,
          data: str | os.PathLike | None = None) -> tuple[Path, Path, str | None]:
    """A course notebook's set-up: the smoke banner, its folders (:func:`folders`), capped threads
    (:func:`cap_threads`) and, for ``kind`` ``"glue"`` or ``"cot"``, its data folder (:func:`data_dir`).

    Returns ``(output_dir, figures_dir, data folder or None)``.
    """
    if smoke:
        print(SMOKE_BANNER)
    output_dir, figures_dir = folders(output_dir, figures_dir)
    cap_threads()
    return output_dir, figures_dir, (data_dir(kind, data) if kind else None)
