"""Batch reproduction of the GLUE results and the summary report.

A suite (``configs/<suite>/suite.yaml``) lists tasks, seeds, methods and parameters.
:func:`run_suite` executes every (task, method, seed) run that is not yet in the result store,
with a progress bar over runs; :func:`report` turns the store into ``summary.csv`` /
``summary.md`` (mean and standard deviation over seeds, paired per-seed differences against the
baseline, wins out of tasks) and a plotly figure.

Baselines: ``cmi`` is compared with ``ce``; ``kd_ce`` and ``kd_mcmi`` with ``student``.
"""

from __future__ import annotations

import csv
import io
import os
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from tqdm.auto import tqdm

from .experiments import RunConfig, execute
from .results import ResultStore, atomic_write_text

__all__ = ["SUITE_DIR", "load_suite", "suite_runs", "execute_runs", "execute_with_papermill", "run_suite", "summary_figure", "summarise", "report", "BASELINES"]

SUITE_DIR = Path(__file__).resolve().parents[1] / "configs"
BASELINES = {"cmi": "ce", "mcmi": "ce", "kd_ce": "student", "kd_mcmi": "student"}
METHOD_LABELS = {"ce": "CE fine-tuning", "cmi": "CMI-minimised", "mcmi": "CMI-maximised teacher",
                 "student": "student alone", "kd_ce": "student <- CE teacher", "kd_mcmi": "student <- MCMI teacher"}


def load_suite(suite: str | os.PathLike) -> dict[str, Any]:
    """A suite by name (``cpu``, ``paper``: ``configs/<name>/suite.yaml``) or path."""
    path = Path(suite)
    if not path.is_file():
        path = SUITE_DIR / str(suite) / "suite.yaml"
    if not path.is_file():
        known = sorted(p.parent.name for p in SUITE_DIR.glob("*/suite.yaml"))
        raise FileNotFoundError(
            f"no suite {suite!r} in {SUITE_DIR}: pass a suite YAML file or one of {known}"
            + ("" if known else " (the presets live in the repository's configs/ folder: install with pip install -e .)"))
    spec = yaml.safe_load(path.read_text())
    for key in ("seeds", "tasks", "common"):
        if key not in spec:
            raise ValueError(f"{path}: suite lacks {key!r}")
    return spec


def suite_runs(spec: dict[str, Any], tasks: list[str] | None = None, seeds: list[int] | None = None,
               methods: list[str] | None = None, overrides: dict[str, Any] | None = None) -> list[RunConfig]:
    """The runs of a suite, teachers (mcmi) included before the students that need them."""
    wanted = list(spec.get("finetune_methods", [])) + list(spec.get("distill_methods", []))
    if methods:
        wanted = [m for m in wanted if m in methods] + [m for m in methods if m not in wanted]
    runs = []
    for task, params in spec["tasks"].items():
        if tasks and task not in tasks:
            continue
        for seed in seeds or spec["seeds"]:
            for method in wanted:
                runs.append(RunConfig(**{**spec["common"], **(params or {}), **(overrides or {}),
                                         "task": task, "seed": seed, "method": method}))
    return runs


def _worker(args: tuple[list[RunConfig], str, str | None]) -> int:
    runs, root, glue_dir = args
    store = ResultStore(root)
    for cfg in runs:
        execute(cfg, store, glue_dir=glue_dir, progress=False)
    return len(runs)


def execute_runs(runs: list[RunConfig], store: ResultStore, glue_dir: str | None = None, progress: bool = True,
                 workers: int = 1) -> list[dict[str, Any]]:
    """Execute ``runs`` not yet in ``store`` (progress bar over runs) and return every record.

    ``workers > 1`` runs groups of runs that share a task and seed (so a teacher is trained once,
    before its students) in that many processes: useful on a GPU that one small model leaves idle.
    """
    if workers > 1:
        import multiprocessing as mp

        groups: dict[tuple[str, int], list[RunConfig]] = defaultdict(list)
        for cfg in runs:
            groups[(cfg.task, cfg.seed)].append(cfg)
        with mp.get_context("spawn").Pool(workers) as pool:
            jobs = [(g, str(store.root), glue_dir) for g in groups.values()]
            for _ in tqdm(pool.imap_unordered(_worker, jobs), total=len(jobs), desc="run groups", disable=not progress):
                pass
        return [store.load(cfg.key) for cfg in runs]
    records = []
    bar = tqdm(runs, desc="runs", unit="run", disable=not progress)
    for cfg in bar:
        bar.set_postfix_str(f"{cfg.task}/{cfg.method}/seed{cfg.seed}")
        records.append(execute(cfg, store, glue_dir=glue_dir, progress=False))
    return records


NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"
BATCH_NOTEBOOK = "04_teacher_student_kd.ipynb"


def execute_with_papermill(runs: list[RunConfig], store: ResultStore, suite: str | os.PathLike,
                           glue_dir: str | None = None, progress: bool = True) -> list[dict[str, Any]]:
    """Execute ``runs`` by running notebook 04 with papermill once per (task, seed).

    Each execution gets the suite, the task, the seed, the methods and the store as parameters, so
    it computes the same run keys and skips the same finished runs as the direct executor; the
    executed notebooks are kept in ``<store>/notebooks/<task>_seed<seed>.ipynb``.
    """
    import papermill as pm

    groups: dict[tuple[str, int], list[str]] = defaultdict(list)
    for cfg in runs:
        if cfg.method not in groups[(cfg.task, cfg.seed)]:
            groups[(cfg.task, cfg.seed)].append(cfg.method)
    out = store.root / "notebooks"
    out.mkdir(parents=True, exist_ok=True)
    for (task, seed), methods in tqdm(groups.items(), desc="notebooks", unit="notebook", disable=not progress):
        name = f"{task}_seed{seed}"
        pm.execute_notebook(
            str(NOTEBOOK_DIR / BATCH_NOTEBOOK), str(out / f"{name}.ipynb"), cwd=str(NOTEBOOK_DIR),
            parameters={"task": task, "seeds": [seed], "methods": methods, "suite": str(suite),
                        "results_dir": str(store.root.resolve()), "glue_dir": glue_dir,
                        "output_dir": str((out / name).resolve()), "figures_dir": str((out / name).resolve())},
            progress_bar=False, kernel_name="python3")
    records = [store.load(cfg.key) for cfg in runs]
    missing = [cfg.key for cfg, r in zip(runs, records, strict=True) if r is None]
    if missing:
        raise RuntimeError(f"the notebooks did not record runs {missing}: are the suite and its notebook in step?")
    return records


def run_suite(spec: dict[str, Any], store: ResultStore, glue_dir: str | None = None, progress: bool = True,
              workers: int = 1, executor: str = "package", suite: str | os.PathLike | None = None,
              **select) -> list[dict[str, Any]]:
    """Execute the suite's missing runs; returns every record (finished ones are read, not rerun).

    ``executor="package"`` calls the package directly (``workers`` processes); ``"papermill"`` runs
    notebook 04 per task and seed (``suite`` names the suite file for the notebook).
    """
    runs = suite_runs(spec, **select)
    if executor == "papermill":
        if suite is None:
            raise ValueError("the papermill executor needs the suite's name or path")
        return execute_with_papermill(runs, store, suite, glue_dir, progress)
    if executor != "package":
        raise ValueError(f"executor must be 'package' or 'papermill', got {executor!r}")
    return execute_runs(runs, store, glue_dir, progress, workers)


def summarise(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (task, method): mean/std over seeds of the headline metric and CMI, paired diffs."""
    by: dict[tuple[str, str], dict[int, dict]] = defaultdict(dict)
    for r in records:
        p = r["params"]
        by[(p["task"], p["method"])][p["seed"]] = r
    rows = []
    order = {m: i for i, m in enumerate(METHOD_LABELS)}
    for (task, method), seeds in sorted(by.items(), key=lambda kv: (kv[0][0], order.get(kv[0][1], 99))):
        any_rec = next(iter(seeds.values()))
        metric = any_rec["headline_metric"]
        values = np.array([seeds[s]["metrics"][metric] for s in sorted(seeds)])
        cmis = np.array([seeds[s]["metrics"]["feature_cmi"] for s in sorted(seeds)])
        row = {"task": task, "method": method, "metric": metric, "seeds": len(values),
               "mean": float(values.mean()), "std": float(values.std(ddof=1)) if len(values) > 1 else 0.0,
               "feature_cmi": float(cmis.mean()),
               "feature_ncmi": float(np.mean([seeds[s]["metrics"]["feature_ncmi"] for s in sorted(seeds)])),
               "diff_mean": None, "diff_std": None, "seed_wins": None}
        base = BASELINES.get(method)
        if base and (task, base) in by:
            shared = sorted(set(seeds) & set(by[(task, base)]))
            if shared:
                d = np.array([seeds[s]["metrics"][metric] - by[(task, base)][s]["metrics"][metric] for s in shared])
                row.update(diff_mean=float(d.mean()), diff_std=float(d.std(ddof=1)) if len(d) > 1 else 0.0,
                           seed_wins=f"{int((d > 0).sum())}/{len(d)}", baseline=base)
        rows.append(row)
    return rows


def _fmt(v, pct=True):
    return "" if v is None else (f"{100 * v:.2f}" if pct else f"{v:.4f}")


def report(store: ResultStore, out_dir: str | os.PathLike | None = None, figures_dir: str | os.PathLike | None = None,
           title: str = "GLUE dev results") -> dict[str, Path]:
    """Write summary.csv, summary.md (and a plotly figure) from every record in ``store``."""
    out_dir = Path(out_dir or store.root)
    rows = summarise(store.all_records())
    if not rows:
        raise ValueError(f"{store.runs}: no run records to report; run `cmi-toolkit reproduce` first")
    buf = io.StringIO()
    fields = ["task", "method", "metric", "seeds", "mean", "std", "diff_mean", "diff_std", "seed_wins",
              "feature_cmi", "feature_ncmi"]
    writer = csv.DictWriter(buf, fieldnames=fields, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    paths = {"csv": out_dir / "summary.csv", "md": out_dir / "summary.md"}
    atomic_write_text(paths["csv"], buf.getvalue())

    lines = [f"# {title}", "", "Mean ± standard deviation over seeds (percent); Δ = paired per-seed difference "
             "against the baseline (CE fine-tuning for CMI; the student alone for distillation).", "",
             "| task | method | metric | seeds | score | Δ vs baseline | seeds won | feature CMI | feature NCMI |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        diff = "" if r["diff_mean"] is None else f"{100 * r['diff_mean']:+.2f} ± {100 * r['diff_std']:.2f}"
        lines.append(f"| {r['task']} | {METHOD_LABELS.get(r['method'], r['method'])} | {r['metric']} | {r['seeds']} | "
                     f"{_fmt(r['mean'])} ± {_fmt(r['std'])} | {diff} | {r['seed_wins'] or ''} | "
                     f"{r['feature_cmi']:.4f} | {r['feature_ncmi']:.4f} |")
    lines += ["", "Wins out of tasks (mean paired difference > 0):", ""]
    for method, base in BASELINES.items():
        diffs = [r["diff_mean"] for r in rows if r["method"] == method and r["diff_mean"] is not None]
        if diffs:
            lines.append(f"- {METHOD_LABELS[method]} vs {METHOD_LABELS[base]}: {sum(d > 0 for d in diffs)}/{len(diffs)} tasks")
    atomic_write_text(paths["md"], "\n".join(lines) + "\n")
    if figures_dir is not None:
        paths["figure"] = _figure(rows, Path(figures_dir), title)
    return paths


def summary_figure(rows: list[dict[str, Any]], title: str = "GLUE dev results"):
    """Grouped bars: one group per task, one bar per method (mean ± std over seeds, percent)."""
    from .viz import grouped_bars

    methods = [m for m in METHOD_LABELS if any(r["method"] == m for r in rows)]
    tasks = sorted({r["task"] for r in rows})
    cell = {(r["task"], r["method"]): r for r in rows}
    series = {METHOD_LABELS[m]: [100 * cell[(t, m)]["mean"] if (t, m) in cell else None for t in tasks] for m in methods}
    errors = {METHOD_LABELS[m]: [100 * cell[(t, m)]["std"] if (t, m) in cell else 0 for t in tasks] for m in methods}
    return grouped_bars(tasks, series, errors, title=title, yaxis="dev score (%)")


def _figure(rows: list[dict[str, Any]], figures_dir: Path, title: str) -> Path:
    from .viz import save_figure

    return save_figure(summary_figure(rows, title), "glue_summary", figures_dir)["html"]
