"""Plotly figures of the kit, and saving them (HTML always, PNG when a renderer is available)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ..plotting import PALETTE

__all__ = ["lambda_sweep_figure", "convergence_figure", "cluster_figure", "fpdc_heatmap", "kl_histograms", "training_curve", "side_by_side"]


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
    at = _lambda_positions(lam + ([float(selected)] if selected is not None else []))
    n_max = max(len(g) for g in groups.values())
    fig = make_subplots(rows=1, cols=3, subplot_titles=("dev accuracy", "CMI (nats)", "NCMI"))
    for col, key in enumerate(("accuracy", "cmi", "ncmi"), start=1):
        mean = [float(np.mean([r[key] for r in groups[x]])) for x in lam]
        sd = [float(np.std([r[key] for r in groups[x]], ddof=1)) if len(groups[x]) > 1 else 0.0 for x in lam]
        if n_max > 1:
            fig.add_scatter(x=[at[float(r["lambda"])] for r in rows], y=[r[key] for r in rows], mode="markers",
                            row=1, col=col, showlegend=False, hovertext=[f"λ = {float(r['lambda']):g}" for r in rows],
                            hoverinfo="text+y", marker={"color": PALETTE[col - 1], "size": 5, "opacity": 0.35})
        fig.add_scatter(x=[at[x] for x in lam], y=mean, mode="lines+markers", row=1, col=col, name=key,
                        showlegend=False, marker={"color": PALETTE[col - 1]}, hovertext=[f"λ = {x:g}" for x in lam],
                        hoverinfo="text+y", error_y={"type": "data", "array": sd, "visible": n_max > 1})
        if selected is not None:
            if selected in groups:
                i = lam.index(selected)
                fig.add_scatter(x=[at[float(selected)]], y=[mean[i]], mode="markers", row=1, col=col,
                                showlegend=False,
                                marker={"size": 16, "symbol": "circle-open", "line": {"width": 3}, "color": "black"})
            fig.add_vline(x=at[float(selected)], line_dash="dot", row=1, col=col)
    label = f"selected λ = {selected:g}" if selected is not None else ""
    seeds = f"   (mean ± sd over {n_max} seeds)" if n_max > 1 else "   (one seed)"
    fig.update_layout(title=(title or f"CE + λ·CMI: the effect of λ   {label}") + seeds, template="plotly_white",
                      height=380)
    fig.update_xaxes(title_text="λ (log scale; 0 = plain CE, set apart)", tickvals=[at[x] for x in sorted(at)],
                     ticktext=[("0 (CE)" if x == 0 else f"{x:g}") for x in sorted(at)])
    fig.update_yaxes(range=[0, 1], row=1, col=1)
    for col in (2, 3):
        fig.update_yaxes(rangemode="tozero", row=1, col=col)
    if majority is not None:
        fig.add_hline(y=majority, line_dash="dash", line_color="black", row=1, col=1,
                      annotation_text="majority class", annotation_position="bottom right")
    return fig


def _lambda_positions(lambdas: Sequence[float]) -> dict[float, float]:
    """Where each λ sits on a log axis: log10(λ) for λ > 0, and λ = 0 (plain CE) one step left of the smallest
    positive λ, a step being the grid's typical spacing (a geometric grid 0.03, 0.1, 0.3, 1 comes out even)."""
    positive = sorted({float(x) for x in lambdas if x > 0})
    logs = [math.log10(x) for x in positive]
    step = float(np.median(np.diff(logs))) if len(logs) > 1 else 0.5
    out = {x: v for x, v in zip(positive, logs, strict=True)}
    if any(x == 0 for x in lambdas):
        out[0.0] = (logs[0] if logs else 0.0) - step
    return out


def convergence_figure(study: dict):
    """The plug-in CMI estimate against the sample size (:func:`cmi_toolkit.method.markov.estimator_bias`).

    Left: the plug-in and the exact-centroid ("oracle") estimates, mean and one standard deviation
    over draws, with the exact value as a dashed line. Right: their mean difference, the downward
    bias that fitting the centroids to the same samples adds, against a zero line.
    """
    from plotly.subplots import make_subplots

    ns = list(study["n"])
    fig = make_subplots(rows=1, cols=2, subplot_titles=("estimate from N samples (mean ± sd over draws)",
                                                        "bias of the plug-in: plug-in − oracle"))
    for i, (name, label) in enumerate((("plugin", "plug-in (centroids fitted to the samples)"),
                                       ("oracle", "oracle (exact centroids Q_y)"))):
        fig.add_scatter(x=ns, y=study[f"{name}_mean"], mode="lines+markers", name=label, row=1, col=1,
                        marker={"color": PALETTE[i]}, error_y={"type": "data", "array": study[f"{name}_sd"]})
    fig.add_hline(y=study["exact"], line_dash="dash", row=1, col=1,
                  annotation_text=f"exact I(X; Ŷ | Y) = {study['exact']:.4f}")
    fig.add_scatter(x=ns, y=study["gap_mean"], mode="lines+markers", name="mean gap", row=1, col=2,
                    marker={"color": PALETTE[2]}, showlegend=False)
    fig.add_hline(y=0.0, line_color="black", row=1, col=2)
    fig.update_xaxes(type="log", title_text="samples N")
    fig.update_yaxes(title_text="nats", rangemode="tozero", row=1, col=1)
    fig.update_yaxes(title_text="nats", row=1, col=2)
    fig.update_layout(title="Plug-in CMI of the Bayes classifier against the truth", template="plotly_white",
                      height=420, legend={"orientation": "h", "y": -0.25})
    return fig


def cluster_figure(xy: np.ndarray, labels: Sequence[int], centroids_xy: np.ndarray | None, label_names: Sequence[str],
                   title: str, method: str = "PCA"):
    """Scatter of 2-D projected samples coloured by class, centroids (when given) as large crosses.

    Draw centroids only in a linear projection (PCA), where a class's centroid is exactly the mean of
    its projected points; a non-linear map (UMAP) has no place for them.
    """
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
    fig.update_layout(title=f"{title} ({method} of f_x)", template="plotly_white", yaxis={"scaleanchor": "x"},
                      xaxis_title=f"{method} 1", yaxis_title=f"{method} 2")
    return fig


def fpdc_heatmap(views: dict[str, dict], title: str = "FPDCs g_y of both models on one colour scale"):
    """The centroids of several models (``{name: view}``, views of :func:`cmi_toolkit.course.lab.model_view`).

    One row per (model, class), one column per feature dimension, one colour scale from 0 to the
    largest entry, so a sharper centroid looks sharper. Columns are ordered by the first model's
    g_1 - g_0 (the dimensions that separate the classes at the two ends).
    """
    import plotly.graph_objects as go

    names = list(views)
    first = np.asarray(views[names[0]]["fpdc"])
    order = np.argsort(first[-1] - first[0])[::-1] if first.shape[0] > 1 else np.arange(first.shape[1])
    rows, labels = [], []
    for name in names:
        g = np.asarray(views[name]["fpdc"])
        for c, label in enumerate(views[name]["label_names"]):
            rows.append(g[c, order])
            labels.append(f"{name} · {label}")
    z = np.asarray(rows)
    fig = go.Figure(go.Heatmap(z=z, y=labels, zmin=0.0, zmax=float(z.max()), colorscale="Viridis",
                               colorbar={"title": "g_y(i)"}))
    fig.update_layout(title=title, template="plotly_white", height=120 + 45 * len(rows),
                      xaxis_title=f"feature dimension i, ordered by {names[0]}'s g_1(i) − g_0(i)",
                      yaxis={"autorange": "reversed"})
    return fig


def kl_histograms(views: dict[str, dict], bins: int = 40):
    """Each example's KL(f_x || g_y) to its own class centroid, per model and class, on one x axis.

    The mean of a model's values is its CMI (a dotted line per model). Tight clusters pile up near 0.
    """
    from plotly.subplots import make_subplots

    names = list(views)
    top = max(float(np.quantile(views[n]["kl"], 0.99)) for n in names)
    fig = make_subplots(rows=1, cols=len(names), shared_yaxes=True, subplot_titles=[
        f"{n}: CMI = mean KL = {np.mean(views[n]['kl']):.3f} nats" for n in names])
    for col, name in enumerate(names, start=1):
        kl, labels = np.asarray(views[name]["kl"]), np.asarray(views[name]["labels"])
        for c, label in enumerate(views[name]["label_names"]):
            fig.add_histogram(x=kl[labels == c], name=label, opacity=0.6, marker={"color": PALETTE[c % 6]},
                              xbins={"start": 0.0, "end": top, "size": top / bins}, histnorm="probability",
                              showlegend=col == 1, row=1, col=col)
        fig.add_vline(x=float(kl.mean()), line_dash="dot", line_color="black", row=1, col=col)
    fig.update_layout(barmode="overlay", template="plotly_white", height=400,
                      title="Per-example KL(f_x ‖ g_y) to the own class centroid (99 % of examples shown)")
    fig.update_xaxes(title_text="nats", range=[0, top])
    fig.update_yaxes(title_text="share of the class", rangemode="tozero", row=1, col=1)
    return fig


#: readable panel titles of the measures :class:`~cmi_toolkit.method.trainers.MeasureCallback` records
MEASURE_TITLES = {"accuracy": "dev accuracy", "feature_cmi": "CMI in feature space (nats)",
                  "feature_ncmi": "NCMI in feature space", "feature_separation": "separation Γ, feature space (nats)",
                  "output_cmi": "CMI in output space (nats)", "output_ncmi": "NCMI in output space"}


def training_curve(history: Sequence[dict], keys: Sequence[str] = ("accuracy", "feature_cmi", "feature_ncmi"),
                   majority: float | None = None, title: str = "Along training"):
    """Measures recorded along training (``step`` plus ``keys``), one panel each, on anchored axes.

    Accuracy runs from 0 to 1 with the majority-class accuracy (``majority``) as a dashed line; the information
    measures start at 0; steps start at 0 (the model before its first update). ``history`` holds one run: there
    is no spread to draw, and the title should say so.
    """
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=len(keys), subplot_titles=[MEASURE_TITLES.get(k, k) for k in keys])
    steps = [h["step"] for h in history]
    for i, k in enumerate(keys, start=1):
        fig.add_scatter(x=steps, y=[h[k] for h in history], mode="lines+markers", row=1, col=i, showlegend=False,
                        marker={"color": PALETTE[(i - 1) % len(PALETTE)]}, name=MEASURE_TITLES.get(k, k))
        if k == "accuracy":
            fig.update_yaxes(range=[0, 1], row=1, col=i)
            if majority is not None:
                fig.add_hline(y=majority, line_dash="dash", line_color="black", row=1, col=i,
                              annotation_text="majority class", annotation_position="bottom right")
        else:
            fig.update_yaxes(rangemode="tozero", row=1, col=i)
    fig.update_xaxes(title_text="training step", rangemode="tozero")
    fig.update_layout(title=title, template="plotly_white", height=380)
    return fig


def side_by_side(figures: Sequence, titles: Sequence[str], title: str = "", shared_axes: bool = False):
    """Several single-panel figures as the panels of one row (legend from the first); ``shared_axes``: every
    panel on the same x and y ranges (panels of one projection, to be compared point by point)."""
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=len(figures), subplot_titles=list(titles), shared_xaxes=shared_axes,
                        shared_yaxes=shared_axes)
    for col, panel in enumerate(figures, start=1):
        for trace in panel.data:
            trace.showlegend = col == 1
            fig.add_trace(trace, row=1, col=col)
        fig.update_xaxes(title_text=panel.layout.xaxis.title.text, row=1, col=col)
        fig.update_yaxes(title_text=panel.layout.yaxis.title.text, row=1, col=col)
    if shared_axes:
        fig.update_xaxes(matches="x")
        fig.update_yaxes(matches="y")
    fig.update_layout(title=title, template="plotly_white", height=480)
    return fig
