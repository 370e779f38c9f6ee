"""Plotly figures of the kit, and saving them (HTML always, PNG when a renderer is available)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

__all__ = [
    "save_figure",
    "lambda_sweep_figure",
    "convergence_figure",
    "cluster_figure",
    "centroid_heatmap",
    "training_curve",
    "grouped_bars",
    "grouped_intervals",
    "embed_2d",
    "side_by_side",
]

PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"]


def _chromium() -> str | None:
    import shutil

    return os.environ.get("BROWSER_PATH") or shutil.which("chromium") or shutil.which("google-chrome")


def _write_plotlyjs(folder: Path) -> Path:
    """One local copy of plotly.js beside the figures (HTML pages load it relatively: no network)."""
    from plotly.offline import get_plotlyjs

    from .results import atomic_write_text

    target = folder / "plotly.min.js"
    js = get_plotlyjs()
    if not target.is_file() or target.stat().st_size != len(js.encode()):
        atomic_write_text(target, js)
    return target


def grouped_intervals(groups: Sequence[str], series: dict[str, Sequence[float | None]],
                      low: dict[str, Sequence[float | None]], high: dict[str, Sequence[float | None]],
                      reference: Sequence[float | None] | None = None, reference_name: str = "majority class",
                      title: str = "", yaxis: str = "score (%)", yrange: tuple[float, float] | None = (0, 100)):
    """Points with interval bars per group and series, a per-group reference line, an anchored axis."""
    import plotly.graph_objects as go

    fig = go.Figure()
    n = max(1, len(series))
    for i, (name, values) in enumerate(series.items()):
        x = [j + (i - (n - 1) / 2) * 0.8 / n for j in range(len(groups))]
        lo, hi = low[name], high[name]
        fig.add_scatter(name=name, x=x, y=list(values), mode="markers", marker={"size": 9, "color": PALETTE[i % len(PALETTE)]},
                        error_y={"type": "data", "symmetric": False,
                                 "array": [None if v is None or h is None else h - v for v, h in zip(values, hi, strict=True)],
                                 "arrayminus": [None if v is None or lo_ is None else v - lo_ for v, lo_ in zip(values, lo, strict=True)]})
    if reference is not None:
        for j, ref in enumerate(reference):
            if ref is not None:
                fig.add_shape(type="line", x0=j - 0.45, x1=j + 0.45, y0=ref, y1=ref, line={"dash": "dash", "color": "black"})
        fig.add_scatter(x=[None], y=[None], mode="lines", line={"dash": "dash", "color": "black"}, name=reference_name)
    fig.update_xaxes(tickvals=list(range(len(groups))), ticktext=list(groups))
    fig.update_layout(title=title, yaxis_title=yaxis, template="plotly_white", height=480)
    if yrange is not None:
        fig.update_yaxes(range=list(yrange))
    return fig


def save_figure(fig, name: str, figures_dir: str | os.PathLike = "figures", png: bool = True) -> dict[str, Path]:
    """Write ``<figures_dir>/<name>.html`` (always) and ``.png`` when kaleido and a Chromium are there.

    kaleido 1.x renders through a Chromium: ``$BROWSER_PATH``, else ``chromium`` on the PATH.
    """
    from .results import atomic_write_text

    folder = Path(figures_dir)
    folder.mkdir(parents=True, exist_ok=True)
    out = {"html": folder / f"{name}.html"}
    atomic_write_text(out["html"], fig.to_html(include_plotlyjs="directory", full_html=True))
    _write_plotlyjs(folder)
    browser = _chromium()
    if png and browser:
        os.environ.setdefault("BROWSER_PATH", browser)
        try:
            fig.write_image(str(folder / f"{name}.png"), width=900, height=500)
            out["png"] = folder / f"{name}.png"
        except Exception:  # noqa: BLE001 - no kaleido or no Chromium: HTML is the always-written format
            pass
    return out


def lambda_sweep_figure(rows: Sequence[dict], selected: float | None = None, title: str | None = None,
                        majority: float | None = None):
    """Accuracy, CMI and NCMI against lambda (one panel each); ``selected`` is marked.

    ``rows``: dicts with ``lambda``, ``accuracy``, ``cmi``, ``ncmi`` (and ``seed`` when several seeds
    share a lambda). Several rows per lambda are drawn as their mean with a bar of one standard
    deviation over seeds, each seed as a faint dot. The accuracy axis is anchored at [0, 1] (a
    one-example change must not look like a cliff), with the majority-class accuracy as a dashed
    line when ``majority`` is given; CMI and NCMI axes start at 0.
    """
    from plotly.subplots import make_subplots

    lam = sorted({float(r["lambda"]) for r in rows})
    groups = {x: [r for r in rows if abs(float(r["lambda"]) - x) < 1e-12] for x in lam}
    n_max = max(len(g) for g in groups.values())
    fig = make_subplots(rows=1, cols=3, subplot_titles=("dev accuracy", "CMI (nats)", "NCMI"))
    for col, key in enumerate(("accuracy", "cmi", "ncmi"), start=1):
        mean = [float(np.mean([r[key] for r in groups[x]])) for x in lam]
        sd = [float(np.std([r[key] for r in groups[x]], ddof=1)) if len(groups[x]) > 1 else 0.0 for x in lam]
        if n_max > 1:
            fig.add_scatter(x=[float(r["lambda"]) for r in rows], y=[r[key] for r in rows], mode="markers",
                            row=1, col=col, showlegend=False, hoverinfo="x+y",
                            marker={"color": PALETTE[col - 1], "size": 5, "opacity": 0.35})
        fig.add_scatter(x=lam, y=mean, mode="lines+markers", row=1, col=col, name=key, showlegend=False,
                        marker={"color": PALETTE[col - 1]},
                        error_y={"type": "data", "array": sd, "visible": n_max > 1})
        if selected is not None:
            if selected in groups:
                i = lam.index(selected)
                fig.add_scatter(x=[selected], y=[mean[i]], mode="markers", row=1, col=col, showlegend=False,
                                marker={"size": 16, "symbol": "circle-open", "line": {"width": 3}, "color": "black"})
            fig.add_vline(x=selected, line_dash="dot", row=1, col=col)
    label = f"selected λ = {selected:g}" if selected is not None else ""
    seeds = f"   (mean ± sd over {n_max} seeds)" if n_max > 1 else "   (one seed)"
    fig.update_layout(title=(title or f"CE + λ·CMI: the effect of λ   {label}") + seeds, template="plotly_white",
                      height=380)
    fig.update_xaxes(title_text="λ")
    fig.update_yaxes(range=[0, 1], row=1, col=1)
    for col in (2, 3):
        fig.update_yaxes(rangemode="tozero", row=1, col=col)
    if majority is not None:
        fig.add_hline(y=majority, line_dash="dash", line_color="black", row=1, col=1,
                      annotation_text="majority class", annotation_position="bottom right")
    return fig


def convergence_figure(ns: Sequence[int], estimates: Sequence[float], exact: float, spread: Sequence[float] | None = None):
    """Plug-in CMI estimates against the sample size, with the exact value as a line."""
    import plotly.graph_objects as go

    fig = go.Figure()
    fig.add_scatter(x=list(ns), y=list(estimates), mode="lines+markers", name="estimate from N samples",
                    error_y={"type": "data", "array": list(spread)} if spread is not None else None)
    fig.add_hline(y=exact, line_dash="dash", annotation_text=f"exact I(X; Ŷ | Y) = {exact:.4f}")
    fig.update_layout(title="Estimated vs exact CMI of the Bayes classifier", xaxis_type="log",
                      xaxis_title="samples N", yaxis_title="nats", template="plotly_white")
    return fig


def embed_2d(points: np.ndarray, extra: np.ndarray | None = None, method: str = "umap", seed: int = 0):
    """2-D embedding of ``points`` (and of ``extra`` in the same map). Returns (xy, extra_xy, method used).

    ``method="umap"`` uses umap-learn; when it is not installed, PCA (numpy SVD) is used and the
    returned method says so.
    """
    if method == "umap":
        try:
            import umap

            reducer = umap.UMAP(n_components=2, random_state=seed, n_neighbors=min(15, len(points) - 1))
            xy = reducer.fit_transform(points)
            return xy, (reducer.transform(extra) if extra is not None else None), "UMAP"
        except ImportError:
            method = "pca"
    mean = points.mean(0, keepdims=True)
    _, _, vt = np.linalg.svd(points - mean, full_matrices=False)
    proj = vt[:2].T
    return (points - mean) @ proj, ((extra - mean) @ proj if extra is not None else None), "PCA (umap-learn missing)"


def cluster_figure(xy: np.ndarray, labels: Sequence[int], centroids_xy: np.ndarray | None, label_names: Sequence[str],
                   title: str, method: str = "UMAP"):
    """Scatter of 2-D embedded samples coloured by class, centroids as large crosses."""
    import plotly.graph_objects as go

    labels = np.asarray(labels)
    fig = go.Figure()
    for c, name in enumerate(label_names):
        m = labels == c
        fig.add_scatter(x=xy[m, 0], y=xy[m, 1], mode="markers", name=name, marker={"size": 5, "opacity": 0.6,
                                                                                  "color": PALETTE[c % 6]})
    if centroids_xy is not None:
        fig.add_scatter(x=centroids_xy[:, 0], y=centroids_xy[:, 1], mode="markers+text", name="FPDC (centroid)",
                        text=list(label_names), textposition="top center",
                        marker={"size": 18, "symbol": "x", "color": "black"})
    fig.update_layout(title=f"{title} ({method} of f_x)", template="plotly_white",
                      xaxis_title=f"{method} 1", yaxis_title=f"{method} 2")
    return fig


def centroid_heatmap(centroids: np.ndarray, label_names: Sequence[str], title: str = "FPDCs g_y over feature dimensions"):
    """The centroids themselves: one row per class, one column per feature dimension."""
    import plotly.graph_objects as go

    fig = go.Figure(go.Heatmap(z=np.asarray(centroids), y=list(label_names), colorscale="Viridis",
                               colorbar={"title": "probability"}))
    fig.update_layout(title=title, xaxis_title="feature dimension i", template="plotly_white", height=300)
    return fig


def training_curve(history: Sequence[dict], keys: Sequence[str] = ("accuracy", "feature_cmi", "feature_ncmi")):
    """Measures recorded along training (``step`` plus ``keys``), one line each."""
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=len(keys), subplot_titles=list(keys))
    steps = [h["step"] for h in history]
    for i, k in enumerate(keys, start=1):
        fig.add_scatter(x=steps, y=[h[k] for h in history], mode="lines+markers", row=1, col=i, showlegend=False)
    fig.update_xaxes(title_text="training step")
    fig.update_layout(title="Along training", template="plotly_white", height=350)
    return fig


def grouped_bars(groups: Sequence[str], series: dict[str, Sequence[float]], errors: dict[str, Sequence[float]] | None = None,
                 title: str = "", yaxis: str = "score (%)"):
    """Grouped bar chart: one bar per series within each group, optional error bars."""
    import plotly.graph_objects as go

    fig = go.Figure()
    for name, values in series.items():
        err = (errors or {}).get(name)
        fig.add_bar(name=name, x=list(groups), y=list(values),
                    error_y={"type": "data", "array": list(err)} if err is not None else None)
    fig.update_layout(barmode="group", title=title, yaxis_title=yaxis, template="plotly_white")
    return fig


def side_by_side(figures: Sequence, titles: Sequence[str], title: str = ""):
    """Several single-panel figures as the panels of one row (legend from the first)."""
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=len(figures), subplot_titles=list(titles))
    for col, panel in enumerate(figures, start=1):
        for trace in panel.data:
            trace.showlegend = col == 1
            fig.add_trace(trace, row=1, col=col)
        fig.update_xaxes(title_text=panel.layout.xaxis.title.text, row=1, col=col)
        fig.update_yaxes(title_text=panel.layout.yaxis.title.text, row=1, col=col)
    fig.update_layout(title=title, template="plotly_white", height=480)
    return fig
