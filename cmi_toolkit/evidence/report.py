"""A suite's report, generated from its records: per task and method the mean ± sd over seeds, the paired
difference to the baseline with its 95 % interval, seed wins and the minimum detectable effect; flagged and
missing runs named; Markdown, CSV and figures written (:func:`report`).
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..files import atomic_write_text
from ..runs.plan import PAIR
from ..runs.store import ResultStore
from ..runs.suites import BASELINES, planned_without_record, suite_records
from .verdicts import baseline_runs, mechanism_results, runs_by_task_method

__all__ = ["summary_figure", "summarise", "summary_table", "summary_markdown", "report"]
METHOD_LABELS = {"ce": "CE fine-tuning", "cmi": "CMI-minimised", "cmi_tuned": "CMI-minimised (tuned settings)",
                 "mcmi": "CMI-maximised teacher",
                 "student": "student alone", "kd_ce": "student <- CE teacher", "kd_mcmi": "student <- MCMI teacher"}


def _usable(record: dict[str, Any]) -> bool:
    """A record counts for its method unless a degenerate-run flag is set on it."""
    return not record.get("checks", {}).get("flags")


def summarise(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (task, method), stated as :mod:`cmi_toolkit.evidence.statistics` says.

    Score: mean and sd over the seeds whose run is not flagged degenerate. Comparison with the
    baseline (``BASELINES``): paired over the seeds where neither run is flagged, with a 95 %
    interval, p-value, seeds won, MDE80 and the verdict word. Mechanism: runs passing / checked.
    """
    from .statistics import paired_comparison

    by = runs_by_task_method(records)
    rows = []
    order = {m: i for i, m in enumerate(METHOD_LABELS)}
    for (task, method), seeds in sorted(by.items(), key=lambda kv: (kv[0][0], order.get(kv[0][1], 99))):
        any_rec = next(iter(seeds.values()))
        metric = any_rec["headline_metric"]
        good = {s: r for s, r in seeds.items() if _usable(r)}
        values = np.array([good[s]["metrics"][metric] for s in sorted(good)])
        flagged = {s: r["checks"]["flags"] for s, r in seeds.items() if not _usable(r)}
        mech = mechanism_results(seeds.values())
        row = {"task": task, "method": method, "metric": metric, "seeds": len(seeds), "used": len(good),
               "flagged": "; ".join(f"seed {s}: {','.join(f)}" for s, f in sorted(flagged.items())),
               "unchecked": sum("checks" not in r for r in seeds.values()),
               "no_provenance": sum("provenance" not in r for r in seeds.values()),
               "mean": float(values.mean()) if len(values) else None,
               "std": float(values.std(ddof=1)) if len(values) > 1 else (0.0 if len(values) else None),
               "majority": next((r["majority_score"] for r in seeds.values() if "majority_score" in r), None),
               "mechanism": f"{sum(mech)}/{len(mech)}" if mech else "",
               "feature_cmi": float(np.mean([r["metrics"]["feature_cmi"] for r in seeds.values()])),
               "feature_ncmi": float(np.mean([r["metrics"]["feature_ncmi"] for r in seeds.values()])),
               "baseline": None, "diff_mean": None, "diff_low": None, "diff_high": None, "p": None,
               "seed_wins": None, "mde80": None, "verdict": None}
        base = BASELINES.get(method)
        if base and (task, base) in by:
            other = baseline_runs(by, task, base, seeds)
            shared = sorted(s for s in set(good) & set(other) if _usable(other[s]))
            if shared:
                cmp = paired_comparison([good[s]["metrics"][metric] for s in shared],
                                        [other[s]["metrics"][metric] for s in shared])
                unchecked = any("checks" not in r for r in [*(good[s] for s in shared), *(other[s] for s in shared)])
                row.update(baseline=base, diff_mean=cmp["mean"], diff_low=cmp["low"], diff_high=cmp["high"],
                           p=cmp["p"], seed_wins=f"{cmp['won']}/{cmp['n']}", mde80=cmp["mde80"],
                           verdict=cmp["verdict"] + (" †" if unchecked else ""))
        rows.append(row)
    return rows


def _pct(v, signed: bool = False) -> str:
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return "–"
    return f"{100 * v:+.2f}" if signed else f"{100 * v:.2f}"


def method_label(arm: str) -> str:
    """The words for an arm in tables (an amendment's fp32 baselines named as such)."""
    if arm.endswith(PAIR):
        base = arm[: -len(PAIR)]
        return f"{METHOD_LABELS.get(base, base)} (fp32, paired baseline)"
    return METHOD_LABELS.get(arm, arm)


def summary_table(rows: list[dict[str, Any]]) -> list[str]:
    """The markdown table of :func:`summarise`'s rows (the README embeds these lines)."""
    lines = ["| task (metric) | method | seeds used | score | Δ vs baseline [95 % CI] | p (paired t) | seeds won | MDE80 | verdict | mechanism | flagged |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        diff = "" if r["diff_mean"] is None else f"{_pct(r['diff_mean'], True)} [{_pct(r['diff_low'], True)}, {_pct(r['diff_high'], True)}]"
        p = "" if r["p"] is None else ("–" if not np.isfinite(r["p"]) else f"{r['p']:.3f}")
        score = "–" if r["mean"] is None else f"{_pct(r['mean'])} ± {_pct(r['std'])}"
        lines.append(f"| {r['task']} ({r['metric']}) | {method_label(r['method'])} | {r['used']}/{r['seeds']} | "
                     f"{score} | {diff} | {p} | {r['seed_wins'] or ''} | {'' if r['mde80'] is None else _pct(r['mde80'])} | "
                     f"{r['verdict'] or ''} | {r['mechanism']} | {r['flagged']} |")
    return lines


def report(store: ResultStore, spec: dict[str, Any], suite: str | None = None, out_dir: str | os.PathLike | None = None,
           figures_dir: str | os.PathLike | None = None, title: str | None = None, **select) -> dict[str, Path]:
    """Write summary_<suite>.csv, summary_<suite>.md (and a plotly figure) from the records of one suite.

    Only the runs of ``spec`` (keys computed from the suite: its runs, their teachers and CE
    twins) are read; other records in the store are ignored and counted; two records claiming
    the same run stop the report (:class:`~cmi_toolkit.runs.store.DuplicateRunError`).
    """
    suite = suite or str(spec.get("suite", "suite"))
    out_dir = Path(out_dir or store.root)
    records, ignored = suite_records(store, spec, suite, **select)
    rows = summarise(records)
    missing = planned_without_record(store, spec, records, **select)
    for row in rows:  # a table never reads as complete when a planned run has no record
        gone = missing.get((row["task"], row["method"]), [])
        if gone:
            row["flagged"] = "; ".join(x for x in (row["flagged"], f"seed {', '.join(map(str, gone))}: no record") if x)
    if not rows:
        raise ValueError(f"{store.runs}: no records of suite {suite!r}; run `cmi-toolkit reproduce --suite {suite}` first")
    buf = io.StringIO()
    fields = ["task", "method", "metric", "seeds", "used", "flagged", "mean", "std", "majority", "baseline", "diff_mean",
              "diff_low", "diff_high", "p", "seed_wins", "mde80", "verdict", "mechanism", "feature_cmi", "feature_ncmi",
              "unchecked", "no_provenance"]
    writer = csv.DictWriter(buf, fieldnames=fields, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    paths = {"csv": out_dir / f"summary_{suite}.csv", "md": out_dir / f"summary_{suite}.md"}
    atomic_write_text(paths["csv"], buf.getvalue())
    title = title or f"GLUE dev results, suite {suite}"
    from ..runs.plan import plan_lines, plan_status, stopping_lines
    from .verdicts import family_table, family_verdicts, not_counted, pooled

    fam = family_verdicts(records, spec)
    pools = pooled(fam, exclude=not_counted(spec))
    extra = []
    if missing:
        extra += ["", f"**Planned runs with no record** ({sum(map(len, missing.values()))}): "
                  + "; ".join(f"{t} {method_label(m)} seed {', '.join(map(str, seeds))}"
                              for (t, m), seeds in sorted(missing.items()))
                  + f". `cmi-toolkit reproduce --suite {suite}` makes them."]
    extra += ["", "## The family of comparisons", "",
             "Each comparison is paired by seed. Two intervals: over seeds (paired t: training randomness, the dev "
             "set held fixed) and over seeds and dev examples (a paired bootstrap that resamples both, the same "
             "resample for both methods: also the finite dev set). The verdict uses the wider one; its p-value (the "
             "larger) is Holm-adjusted within the family, and better / worse needs adjusted p < 0.05 with the "
             "interval excluding 0. McNemar per seed tests the paired correctness of that seed's two models.", ""]
    extra += family_table(fam, pools)
    if spec.get("equivalence"):
        from .verdicts import equivalence, equivalence_lines

        extra += ["", f"## Equivalence with suite {spec['equivalence']['reference_suite']} (TOST)", ""]
        extra += equivalence_lines(equivalence(spec, store, records))
    if spec.get("search"):
        from ..runs.search import UNINFORMATIVE, uninformative_searches

        blind = uninformative_searches(spec, store.root)
        extra += ["", "## Held-out searches", "",
                  (f"Uninformative: {', '.join(blind)}: {UNINFORMATIVE}." if blind else
                   "Every finished search had runs that were not degenerate at its last budget.")
                  + " The search tables (README, `results/search/<suite>/`) count each candidate's degenerate runs."]
    status = plan_status(spec, spec.get("_file"), records)
    extra += ["", "## Plan", ""] + plan_lines(status) + stopping_lines(status, fam)
    atomic_write_text(paths["md"], "\n".join(summary_markdown(rows, title, ignored, extra)) + "\n")
    if figures_dir is not None:
        paths["figure"] = _figure(rows, Path(figures_dir), title, f"glue_summary_{suite}")
        if pools:
            from ..plotting import save_figure
            from .figures import forest_plot

            paths["forest"] = save_figure(forest_plot(fam, pools, f"Paired Δ per task and pooled, suite {suite}"),
                                          f"forest_{suite}", Path(figures_dir))["html"]
    return paths


def caveats(rows: list[dict[str, Any]]) -> list[str]:
    """The lines that say which records predate the checks (and what † means)."""
    unchecked = sum(r["unchecked"] for r in rows)
    missing = sum(r["no_provenance"] for r in rows)
    if not (unchecked or missing):
        return []
    return ["", f"† Caveat: {unchecked} record(s) predate the degenerate-run and mechanism checks and {missing} carry "
            "no provenance (commit, library versions, device, data fingerprint); their flags are unknown, not clean, "
            "so a verdict marked † holds only if those runs learned."]


def summary_markdown(rows: list[dict[str, Any]], title: str, ignored: int = 0,
                     extra: list[str] | None = None) -> list[str]:
    """The whole summary.md: how to read it, the table, majority-class scores, caveats."""
    lines = [f"# {title}", "",
             "Score: mean ± sd over the seeds whose run is not flagged degenerate (percent). Δ: paired per-seed "
             "difference to the baseline (CE fine-tuning for the CMI-minimised model and the MCMI teacher; the "
             "student alone for distillation) with its 95 % paired-t interval, the paired t-test's p-value (the family "
             "table's p, where there is one, is the larger of this and the paired bootstrap's), seeds won, and MDE80, the "
             "smallest true difference detectable with 80 % power at this spread. Verdict: better / worse only when "
             "the interval excludes 0. Mechanism: runs whose CMI moved the way their objective asks, against the CE "
             "twin, out of those checked.", ""]
    lines += summary_table(rows)
    majority = {r["task"]: r["majority"] for r in rows if r["majority"] is not None}
    if majority:
        lines += ["", "Majority-class score (always predict the training set's majority class): "
                  + ", ".join(f"{t} {_pct(v)}" for t, v in sorted(majority.items())) + "."]
    lines += caveats(rows)
    lines += extra or []
    if ignored:
        lines += ["", f"{ignored} other record(s) in the store belong to no run of this suite and were ignored."]
    return lines


def summary_figure(rows: list[dict[str, Any]], title: str = "GLUE dev results"):
    """Per task: each method's mean with its 95 % t interval over seeds, and the majority-class line."""
    from scipy.stats import t as student_t

    from .figures import grouped_intervals

    methods = [m for m in METHOD_LABELS if any(r["method"] == m for r in rows)]
    # a task whose every run was flagged degenerate has nothing to draw: named in the title, not an empty column
    empty = sorted({r["task"] for r in rows} - {r["task"] for r in rows if r["mean"] is not None})
    tasks = sorted({r["task"] for r in rows} - set(empty))
    if empty:
        title += f"<br><sup>not drawn: {', '.join(empty)} (every run flagged degenerate)</sup>"
    cell = {(r["task"], r["method"]): r for r in rows}

    def half(r):
        n = r["used"]
        return float(student_t.ppf(0.975, n - 1)) * r["std"] / np.sqrt(n) if n > 1 else 0.0

    series, low, high = {}, {}, {}
    for m in methods:
        vals = [cell.get((t, m)) for t in tasks]
        series[METHOD_LABELS[m]] = [None if r is None or r["mean"] is None else 100 * r["mean"] for r in vals]
        low[METHOD_LABELS[m]] = [None if r is None or r["mean"] is None else 100 * (r["mean"] - half(r)) for r in vals]
        high[METHOD_LABELS[m]] = [None if r is None or r["mean"] is None else 100 * (r["mean"] + half(r)) for r in vals]
    majority = [next((100 * r["majority"] for r in rows if r["task"] == t and r["majority"] is not None), None) for t in tasks]
    lo = min([v for vs in low.values() for v in vs if v is not None] + [v for v in majority if v is not None] + [0])
    from ..plotting import METHOD_COLOURS

    return grouped_intervals(tasks, series, low, high, reference=majority, title=title,
                             yaxis="dev score (%), mean with 95 % interval over seeds", yrange=(min(0, lo), 100),
                             colours={METHOD_LABELS[m]: METHOD_COLOURS[m] for m in methods})


def _figure(rows: list[dict[str, Any]], figures_dir: Path, title: str, name: str) -> Path:
    from ..plotting import save_figure

    return save_figure(summary_figure(rows, title), name, figures_dir)["html"]
