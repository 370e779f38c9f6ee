"""Showing and saving a plotly figure: HTML always (plotly.js beside it, so it opens offline), PNG when a
renderer (Chromium through Kaleido) is available, a one-line notice when it is not. Base layer: imports
only :mod:`cmi_toolkit.files`.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

__all__ = ["save_figure", "show_figure"]

PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"]
#: one colour per method in every figure of the kit and the course (GLUE methods, then the CoT students): a method
#: keeps its colour from one figure to the next, and no two methods of one figure share one
METHOD_COLOURS: dict[str, str] = {"ce": "#1f77b4", "cmi": "#d62728", "cmi_tuned": "#ff7f0e", "mcmi": "#9467bd",
                                  "student": "#7f7f7f", "kd_ce": "#17becf", "kd_mcmi": "#e377c2",
                                  "label_only": "#1f77b4", "dss": "#2ca02c", "dss_mi": "#8c564b", "dss_mi_var": "#bcbd22"}


def _chromium() -> str | None:
    import shutil

    return os.environ.get("BROWSER_PATH") or shutil.which("chromium") or shutil.which("google-chrome")


def _write_plotlyjs(folder: Path) -> Path:
    """One local copy of plotly.js beside the figures (HTML pages load it relatively: no network)."""
    from plotly.offline import get_plotlyjs

    from .files import atomic_write_text

    target = folder / "plotly.min.js"
    js = get_plotlyjs()
    if not target.is_file() or target.stat().st_size != len(js.encode()):
        atomic_write_text(target, js)
    return target


def show_figure(fig, name: str, figures_dir: str | os.PathLike = "figures") -> None:
    """:func:`save_figure`, then display ``fig`` with its PNG as a fallback in the same output.

    The output carries the plotly figure (JupyterLab draws it, interactive) and, when a PNG could be
    written, the PNG too: GitHub and nbviewer, which run no JavaScript, show the picture. Nothing is
    returned, so a notebook cell ending with it echoes no paths (:func:`save_figure` returns them).
    """
    import base64
    import json

    from IPython.display import display

    out = save_figure(fig, name, figures_dir)
    bundle = {"application/vnd.plotly.v1+json": json.loads(fig.to_json()), "text/plain": f"<figure {name}>"}
    if "png" in out:
        bundle["image/png"] = base64.b64encode(out["png"].read_bytes()).decode()
    display(bundle, raw=True)


def save_figure(fig, name: str, figures_dir: str | os.PathLike = "figures", png: bool = True) -> dict[str, Path]:
    """Write ``<figures_dir>/<name>.html`` (always) and ``.png`` when kaleido and a Chromium are there.

    kaleido 1.x renders through a Chromium: ``$BROWSER_PATH``, else ``chromium`` on the PATH.
    """
    from .files import atomic_write_text

    folder = Path(figures_dir)
    folder.mkdir(parents=True, exist_ok=True)
    out = {"html": folder / f"{name}.html"}
    atomic_write_text(out["html"], fig.to_html(include_plotlyjs="directory", full_html=True))
    _write_plotlyjs(folder)
    browser = _chromium()
    if png and browser:
        import logging

        os.environ.setdefault("BROWSER_PATH", browser)
        # kaleido's browser driver logs a message it could not decode and ignored as an error with its traceback; the
        # image is still written (or the failure is warned about below), so that noise stays out of notebooks
        logging.getLogger("choreographer").setLevel(logging.CRITICAL)
        error: Exception | None = None
        for _ in range(2):  # kaleido's Chromium can time out on a busy machine: once more before giving up
            try:
                fig.write_image(str(folder / f"{name}.png"), width=900, height=500)
                out["png"] = folder / f"{name}.png"
                break
            except Exception as exc:  # noqa: BLE001 - kaleido's errors have no common base
                error = exc
        else:
            first = (str(error).strip().splitlines() or [""])[0][:200]
            warnings.warn(f"{folder / name}.png not written ({type(error).__name__}: {first}); the HTML is",
                          stacklevel=2)
    return out
