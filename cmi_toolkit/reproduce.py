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
import dataclasses
import io
import os
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from tqdm.auto import tqdm

from .experiments import METHODS, RunConfig, dependencies
from .plan import PAIR, fp32_run
from .results import ResultStore, atomic_write_text
from .verdicts import baseline_runs, mechanism_results, runs_by_task_method

__all__ = ["SUITE_DIR", "load_suite", "suite_runs", "execute_runs", "execute_with_papermill", "run_suite",
           "summary_figure", "summarise", "cached_or_run", "summary_table", "summary_markdown", "suite_records", "report", "BASELINES"]

SUITE_DIR = Path(__file__).resolve().parents[1] / "configs"
BASELINES = {"cmi": "ce", "cmi_tuned": "ce", "mcmi": "ce", "kd_ce": "student", "kd_mcmi": "student"}
METHOD_LABELS = {"ce": "CE fine-tuning", "cmi": "CMI-minimised", "cmi_tuned": "CMI-minimised (tuned settings)",
                 "mcmi": "CMI-maximised teacher",
                 "student": "student alone", "kd_ce": "student <- CE teacher", "kd_mcmi": "student <- MCMI teacher"}


class _UniqueKeyLoader(yaml.SafeLoader):
    """A SafeLoader that refuses a mapping with the same key twice (PyYAML would keep the last silently)."""

    def construct_mapping(self, node, deep=False):
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} appears twice (lines {seen[key]} and {key_node.start_mark.line + 1})",
                    key_node.start_mark)
            seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


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
    try:
        spec = yaml.load(path.read_text(encoding="utf-8"), Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader
    except RecursionError:
        raise ValueError(f"{path}: a YAML anchor refers to itself; write the values out") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f", line {mark.line + 1}" if mark is not None else ""
        raise ValueError(f"{path}{where}: not valid YAML ({getattr(exc, 'problem', exc)}); fix the suite file") from None
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not UTF-8 text; save the suite file as UTF-8") from None
    if not isinstance(spec, dict):
        raise ValueError(f"{path}: a suite is a YAML mapping with seeds, tasks and common")
    for key in ("seeds", "tasks", "common"):
        if key not in spec:
            raise ValueError(f"{path}: suite lacks {key!r}; see configs/cpu/suite.yaml for the layout")
    from .schemas import validate_suite

    try:
        validate_suite(spec)
    except RecursionError:
        raise ValueError(f"{path}: a YAML anchor refers to itself; write the values out") from None
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}; fix the suite file (configs/cpu/suite.yaml shows the layout)") from None
    from .plan import parse_plan

    parse_plan(spec, str(path))  # a malformed plan is refused before anything runs
    spec["_file"] = str(path.resolve())
    return spec


def suite_runs(spec: dict[str, Any], tasks: list[str] | None = None, seeds: list[int] | None = None,
               methods: list[str] | None = None, overrides: dict[str, Any] | None = None,
               with_dependencies: bool = False, results_root: Path | None = None) -> list[RunConfig]:
    """The runs of a suite.

    A suite's ``teacher`` section (CMI settings of the MCMI teacher: space, lambda, T, centroid
    mode) applies to ``mcmi`` and ``kd_mcmi`` runs. ``with_dependencies`` adds the runs the
    suite's runs execute first: the teachers of ``kd_*`` runs and the CE twins of ``cmi``/``mcmi``.
    """
    runs = []
    for _task, cfg, _arm in arm_runs(spec, tasks, seeds, methods, overrides, results_root):
        runs.append(cfg)
    if with_dependencies:
        seen = {cfg.key for cfg in runs}
        todo = list(runs)
        while todo:
            for dep in dependencies(todo.pop(0)):
                if dep.key not in seen:
                    seen.add(dep.key)
                    runs.append(dep)
                    todo.append(dep)
    return runs


def arm_runs(spec: dict[str, Any], tasks: list[str] | None = None, seeds: list[int] | None = None,
             methods: list[str] | None = None, overrides: dict[str, Any] | None = None,
             results_root: Path | None = None) -> list[tuple[str, RunConfig, str]]:
    """(task, run, arm) of every run of a suite; the arm is the method's name or a named arm's.

    * A task's ``methods`` entry restricts the suite's methods (and arms) for that task.
    * A task's ``teacher`` entry overrides the suite's ``teacher`` section for that task; ``teacher: search``
      (suite-wide or per task) takes the winner of the suite's teacher search, and a task whose search has
      not finished has no ``mcmi`` / ``kd_mcmi`` runs yet.
    * ``arms:`` adds named variants of a method: ``{name: cmi_tuned, method: cmi, tasks: {sst2: {...}}}`` with
      per-task settings, or ``{name: cmi_tuned, method: cmi, settings: search}`` for the winner of the suite's
      minimiser search; a task without settings (search not finished, or its winner equal to the defaults,
      which would duplicate the ``cmi`` arm) has no run in that arm.
    """
    from .search import search_winner

    wanted = list(spec.get("finetune_methods", [])) + list(spec.get("distill_methods", []))
    if methods:
        arm_names = [arm["name"] for arm in spec.get("arms", []) or []]
        unknown = [m for m in methods if m not in METHODS and m not in arm_names]
        if unknown:
            raise ValueError(f"--methods {','.join(unknown)}: not a method or arm of this suite; choose from "
                             f"{', '.join(dict.fromkeys(wanted + list(METHODS) + arm_names))}")
        # an arm's name selects that arm only; a method's name selects it and the arms built on it
        wanted = [m for m in wanted if m in methods] + [m for m in methods if m not in wanted and m in METHODS]
    out = []
    for task, params in spec["tasks"].items():
        if tasks and task not in tasks:
            continue
        params = dict(params or {})
        only = params.pop("methods", None)
        suite_teacher = spec.get("teacher") or {}
        teacher = params.pop("teacher", None) or suite_teacher
        if teacher == "search":
            teacher = search_winner(spec, task, "teacher", results_root)
        arms = [(m, m, {}) for m in wanted if not only or m in only]
        if teacher is None:  # its search has not finished
            arms = [a for a in arms if a[1] not in ("mcmi", "kd_mcmi")]
        for arm in spec.get("arms", []) or []:
            if only and arm["name"] not in only:
                continue
            if methods and arm["name"] not in methods and arm["method"] not in methods:
                continue
            settings = (search_winner(spec, task, "minimiser", results_root) if arm.get("settings") == "search"
                        else (arm.get("tasks") or {}).get(task))
            if settings is None:
                continue
            probe = RunConfig(**{**spec["common"], **params, **settings, "task": task, "method": arm["method"]})
            plain = RunConfig(**{**spec["common"], **params, "task": task, "method": arm["method"]})
            if probe.key == plain.key:  # the same runs as the method's own arm
                continue
            arms.append((arm["name"], arm["method"], settings))
        planned, moved = [], []
        for seed in seeds or spec["seeds"]:
            for name, method, settings in arms:
                extra = teacher if method in ("mcmi", "kd_mcmi") else {}
                cfg = RunConfig(**{**spec["common"], **params, **extra, **settings, **(overrides or {}),
                                   "task": task, "seed": seed, "method": method})
                if cfg.bf16 and fp32_run(spec, task, name, seed):
                    cfg = dataclasses.replace(cfg, bf16=False)
                    moved.append((cfg, name))
                planned.append((task, cfg, name))
        out += planned + _fp32_pairs(spec, task, moved, {cfg.key for _, cfg, _ in planned})
    return out


def _fp32_pairs(spec: dict[str, Any], task: str, moved: list[tuple[RunConfig, str]],
                planned: set[str]) -> list[tuple[str, RunConfig, str]]:
    """The baselines an amendment's fp32 runs are paired with at their own precision: per moved run, its family
    baseline (``family:``) and, for a fine-tuning arm, CE (its mechanism check's twin, trained anyway), each
    as the same run in fp32, unless that is itself a planned run. Their arm is ``<baseline>`` + :data:`PAIR`."""
    out, seen = [], set(planned)
    for cfg, name in moved:
        bases = [c["baseline"] for c in spec.get("family") or [] if c["method"] == name]
        bases += ["ce"] if BASELINES.get(name) == "ce" else []
        for base in dict.fromkeys(b for b in bases if b in METHODS):
            pair = dataclasses.replace(cfg, method=base)
            if pair.key not in seen:
                seen.add(pair.key)
                out.append((task, pair, base + PAIR))
    return out


def execute_runs(runs: list[RunConfig], store: ResultStore, glue_dir: str | None = None, progress: bool = True,
                 suite: str | None = None, keep_model: bool | None = None, engine=None):
    """Execute ``runs`` not yet in ``store`` with ``engine`` (:class:`~cmi_toolkit.engine.EngineArgs`; default
    local: one after another in this process); returns the :class:`~cmi_toolkit.engine.BatchResult`."""
    from .engine import run_batch

    return run_batch(runs, store, glue_dir, engine, suite=suite, keep_model=keep_model, progress=progress)


def cached_or_run(runs: list[RunConfig], store: ResultStore, cache_dir: str | os.PathLike | None = None,
                  glue_dir: str | None = None, train: bool = True, suite: str | None = None,
                  progress: bool = True) -> list[dict[str, Any]]:
    """The records of ``runs``, in order: each read from the read-only ``cache_dir`` (e.g. the repository's
    committed ``results/``; never written) or from ``store``; the others trained into ``store``.

    Before training it prints how many runs are missing and about how long they take, judged by the median
    recorded training time of the cached runs of the same method (and the machines they ran on); the training
    shows one bar over the missing runs. With ``train`` false a miss raises FileNotFoundError naming the runs.
    """
    import statistics

    from .experiments import execute
    from .results import load_cached

    found = {cfg.key: load_cached(cfg.store_key(glue_dir), store, cache_dir) for cfg in runs}
    missing = [cfg for cfg in runs if found[cfg.key] is None]
    if missing and not train:
        raise FileNotFoundError(f"{len(missing)} run(s) are in neither {cache_dir} nor {store.root}: "
                                f"{', '.join(f'{c.task}/{c.method}/seed{c.seed}' for c in missing)}; "
                                "run with train_missing=True to train them here")
    if missing:
        times: dict[str, list[float]] = defaultdict(list)
        machines = set()
        for r in found.values():
            if r is not None and r.get("timings", {}).get("train_s") is not None:
                times[r["params"]["method"]].append(r["timings"]["train_s"])
                prov = r.get("provenance", {})
                machines.add(f"{prov.get('device_name') or prov.get('cpu') or '?'}, {prov.get('threads', '?')} threads")
        known = [statistics.median(times[c.method]) for c in missing if times.get(c.method)]
        guess = (f"; about {sum(known) / 60:.0f} min for the {len(known)} whose method has cached runs "
                 f"(their median training time on {'; '.join(sorted(machines))})" if known else "")
        print(f"{len(missing)} of {len(runs)} runs not cached: training them here into {store.root}{guess}",
              flush=True)
        for cfg in tqdm(missing, desc="training runs not cached", unit="run", disable=not progress):
            found[cfg.key] = execute(cfg, store, glue_dir=glue_dir, progress=False, suite=suite)
    return [found[cfg.key] for cfg in runs]


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
            parameters={"task": task, "seeds": [seed], "methods": methods, "suite": str(suite), "cache_dir": None,
                        "results_dir": str(store.root.resolve()), "glue_dir": glue_dir,
                        "output_dir": str((out / name).resolve()), "figures_dir": str((out / name).resolve())},
            progress_bar=False, kernel_name="python3")
    records = [store.load(cfg.store_key(glue_dir)) for cfg in runs]
    missing = [cfg.key for cfg, r in zip(runs, records, strict=True) if r is None]
    if missing:
        raise RuntimeError(f"the notebooks did not record runs {missing}: are the suite and its notebook in step?")
    return records


def run_suite(spec: dict[str, Any], store: ResultStore, glue_dir: str | None = None, progress: bool = True,
              engine=None, executor: str = "package", suite: str | os.PathLike | None = None,
              keep_model: bool | None = None, **select):
    """Execute the suite's missing runs (finished ones are read, not rerun).

    ``executor="package"`` calls the package through ``engine`` (:class:`~cmi_toolkit.engine.EngineArgs`: local
    or Ray) and returns its :class:`~cmi_toolkit.engine.BatchResult` (``.records``); ``"papermill"`` runs
    notebook 04 per task and seed (``suite`` names the suite file for the notebook) and returns the records.
    """
    runs = suite_runs(spec, **select, results_root=store.root)
    if executor == "papermill":
        if suite is None:
            raise ValueError("the papermill executor needs the suite's name or path")
        return execute_with_papermill(runs, store, suite, glue_dir, progress)
    if executor != "package":
        raise ValueError(f"executor must be 'package' or 'papermill', got {executor!r}")
    name = str(spec.get("suite") or suite or "suite")
    store.check_writable()
    return execute_runs(runs, store, glue_dir, progress, suite=name, keep_model=keep_model, engine=engine)


def _usable(record: dict[str, Any]) -> bool:
    """A record counts for its method unless a degenerate-run flag is set on it."""
    return not record.get("checks", {}).get("flags")


def summarise(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (task, method), stated as :mod:`cmi_toolkit.evidence` says.

    Score: mean and sd over the seeds whose run is not flagged degenerate. Comparison with the
    baseline (``BASELINES``): paired over the seeds where neither run is flagged, with a 95 %
    interval, p-value, seeds won, MDE80 and the verdict word. Mechanism: runs passing / checked.
    """
    from .evidence import paired_comparison

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
    lines = ["| task (metric) | method | seeds used | score | Δ vs baseline [95 % CI] | p | seeds won | MDE80 | verdict | mechanism | flagged |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        diff = "" if r["diff_mean"] is None else f"{_pct(r['diff_mean'], True)} [{_pct(r['diff_low'], True)}, {_pct(r['diff_high'], True)}]"
        p = "" if r["p"] is None else ("–" if not np.isfinite(r["p"]) else f"{r['p']:.3f}")
        score = "–" if r["mean"] is None else f"{_pct(r['mean'])} ± {_pct(r['std'])}"
        lines.append(f"| {r['task']} ({r['metric']}) | {method_label(r['method'])} | {r['used']}/{r['seeds']} | "
                     f"{score} | {diff} | {p} | {r['seed_wins'] or ''} | {'' if r['mde80'] is None else _pct(r['mde80'])} | "
                     f"{r['verdict'] or ''} | {r['mechanism']} | {r['flagged']} |")
    return lines


def suite_records(store: ResultStore, spec: dict[str, Any], suite: str | None = None,
                  **select) -> tuple[list[dict[str, Any]], int]:
    """The records of ``spec``'s runs (with their teachers and CE twins) and the count of others ignored."""
    wanted = {cfg.key: (cfg.task, cfg.method, cfg.seed)
              for cfg in suite_runs(spec, with_dependencies=True, results_root=store.root, **select)}
    arm_of = {cfg.key: arm for _, cfg, arm in arm_runs(spec, select.get("tasks"), select.get("seeds"),
                                                         select.get("methods"), select.get("overrides"), store.root)
              if arm != cfg.method}
    records, ignored = store.select(wanted, suite or str(spec.get("suite", "suite")))
    from .results import run_key

    return [{**r, "arm": arm_of[k]} if (k := run_key(r["params"])) in arm_of else r for r in records], ignored


def planned_without_record(store: ResultStore, spec: dict[str, Any], records: list[dict[str, Any]],
                           **select) -> dict[tuple[str, str], list[int]]:
    """``{(task, arm): [seeds]}`` of the suite's planned runs (its arms, not their dependencies) that have no record
    among ``records``: a deleted or edited record shows as missing, never as a complete table."""
    from .results import run_key

    have = {run_key(r["params"]) for r in records}
    out: dict[tuple[str, str], list[int]] = {}
    for task, cfg, arm in arm_runs(spec, select.get("tasks"), select.get("seeds"), select.get("methods"),
                                   select.get("overrides"), store.root):
        if cfg.key not in have:
            out.setdefault((task, arm), []).append(cfg.seed)
    return out


def report(store: ResultStore, spec: dict[str, Any], suite: str | None = None, out_dir: str | os.PathLike | None = None,
           figures_dir: str | os.PathLike | None = None, title: str | None = None, **select) -> dict[str, Path]:
    """Write summary_<suite>.csv, summary_<suite>.md (and a plotly figure) from the records of one suite.

    Only the runs of ``spec`` (keys computed from the suite: its runs, their teachers and CE
    twins) are read; other records in the store are ignored and counted; two records claiming
    the same run stop the report (:class:`~cmi_toolkit.results.DuplicateRunError`).
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
    from .plan import plan_lines, plan_status, stopping_lines
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
        from .search import UNINFORMATIVE, uninformative_searches

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
            from .viz import forest_plot, save_figure

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
             "student alone for distillation) with its 95 % paired-t interval, p-value, seeds won, and MDE80, the "
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

    from .viz import grouped_intervals

    methods = [m for m in METHOD_LABELS if any(r["method"] == m for r in rows)]
    tasks = sorted({r["task"] for r in rows})
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
    return grouped_intervals(tasks, series, low, high, reference=majority, title=title,
                             yaxis="dev score (%), mean with 95 % interval over seeds", yrange=(min(0, lo), 100))


def _figure(rows: list[dict[str, Any]], figures_dir: Path, title: str, name: str) -> Path:
    from .viz import save_figure

    return save_figure(summary_figure(rows, title), name, figures_dir)["html"]
