"""Figures of evidence: grouped intervals per task and method, and the forest plot of paired differences
(every comparison with its interval, a zero line, the pooled estimate).
"""

from __future__ import annotations

from collections.abc import Sequence

from ..plotting import PALETTE

__all__ = ["grouped_intervals"]


def grouped_intervals(groups: Sequence[str], series: dict[str, Sequence[float | None]],
                      low: dict[str, Sequence[float | None]], high: dict[str, Sequence[float | None]],
                      reference: Sequence[float | None] | None = None, reference_name: str = "majority class",
                      title: str = "", yaxis: str = "score (%)", yrange: tuple[float, float] | None = (0, 100),
                      colours: dict[str, str] | None = None):
    """Points with interval bars per group and series, a per-group reference line, an anchored axis.

    ``colours`` maps a series name, or every group name (one series whose groups are methods), to its colour
    (:data:`~cmi_toolkit.plotting.METHOD_COLOURS`, so a method is drawn alike in every figure); otherwise the
    series take the palette in order."""
    import plotly.graph_objects as go

    fig = go.Figure()
    n = max(1, len(series))
    for i, (name, values) in enumerate(series.items()):
        x = [j + (i - (n - 1) / 2) * 0.8 / n for j in range(len(groups))]
        lo, hi = low[name], high[name]
        colours = colours or {}
        colour = colours.get(name) or ([colours[g] for g in groups] if groups and all(g in colours for g in groups)
                                       else PALETTE[i % len(PALETTE)])
        fig.add_scatter(name=name, x=x, y=list(values), mode="markers", marker={"size": 9, "color": colour},
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


def forest_plot(rows: Sequence[dict], pools: dict[str, dict], title: str = "Paired Δ per task and pooled"):
    """Forest plot: each comparison's Δ (points) with its verdict interval, a pooled diamond per question, zero line.

    ``rows`` are :func:`cmi_toolkit.evidence.verdicts.family_verdicts` rows, ``pools`` :func:`~cmi_toolkit.evidence.verdicts.pooled`.
    The x axis is symmetric around 0, so a reader sees at once which side an interval leans to.
    """
    import plotly.graph_objects as go

    fig = go.Figure()
    labels: list[str] = []
    y = 0
    extent = 0.5
    for qi, question in enumerate(dict.fromkeys(r["question"] for r in rows)):
        color = PALETTE[qi % len(PALETTE)]
        items = [r for r in rows if r["question"] == question and r["n"] >= 2]
        for r in items:
            mean, lo, hi = 100 * r["mean"], 100 * r["low"], 100 * r["high"]
            extent = max(extent, abs(lo), abs(hi))
            fig.add_scatter(x=[mean], y=[y], mode="markers", marker={"size": 10, "color": color, "symbol": "square"},
                            error_x={"type": "data", "symmetric": False, "array": [hi - mean], "arrayminus": [mean - lo]},
                            name=question, legendgroup=question, showlegend=r is items[0],
                            hovertext=f"{r['task']}: {mean:+.2f} [{lo:+.2f}, {hi:+.2f}], Holm p {r['p_holm']:.3f}")
            labels.append(f"{r['task']} ({r['metric']})")
            y += 1
        pool = pools.get(question)
        if pool:
            m, lo, hi = 100 * pool["mean"], 100 * pool["low"], 100 * pool["high"]
            extent = max(extent, abs(lo), abs(hi))
            fig.add_scatter(x=[lo, m, hi, m, lo], y=[y, y + 0.3, y, y - 0.3, y], fill="toself", mode="lines",
                            line={"color": color}, name=f"pooled: {question}", legendgroup=question, showlegend=False)
            labels.append(f"pooled, {pool['metric']} tasks (I² {100 * pool['i2']:.0f} %)" if pool.get("metric")
                          else f"pooled (I² {100 * pool['i2']:.0f} %)")
            y += 1
        y += 0.5
        labels.append("")
    fig.add_vline(x=0, line={"color": "black", "dash": "dash"})
    pos, txt, k = [], [], 0.0
    for lab in labels:
        if lab:
            pos.append(k)
            txt.append(lab)
            k += 1
        else:
            k += 0.5
    pad = 1.1 * extent
    fig.update_yaxes(tickvals=pos, ticktext=txt, autorange="reversed")
    fig.update_xaxes(range=[-pad, pad], zeroline=False)
    fig.update_layout(title=title, xaxis_title="Δ method − baseline (points of the task's headline metric), 95 % "
                      "interval used for the verdict", template="plotly_white", height=120 + 40 * max(1, len(pos)))
    return fig
