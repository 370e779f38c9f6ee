"""The set-up every course notebook shares: its output folders and where its data lives."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["folders", "data_dir"]

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
