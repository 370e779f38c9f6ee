"""Batch reproduction of the GLUE results and the summary report.

A suite (``configs/<suite>/suite.yaml``) lists tasks, seeds, methods and parameters.
:func:`run_suite` executes every (task, method, seed) run that is not yet in the result store,
with a progress bar over runs; :func:`report` turns the store into ``summary.csv`` /
``summary.md`` (mean and standard deviation over seeds, paired per-seed differences against the
baseline, wins out of tasks) and a plotly figure.

Baselines: ``cmi`` is compared with ``ce``; ``kd_ce`` and ``kd_mcmi`` with ``student``.
"""

from __future__ import annotations

import dataclasses
import os
from collections import defaultdict
from pathlib import Path
from typing import Any

import yaml
from tqdm.auto import tqdm

from .. import defaults as D
from .config import METHODS, RunConfig, dependencies
from .plan import PAIR, fp32_run
from .store import ResultStore

__all__ = ["SUITE_DIR", "load_suite", "suite_runs", "execute_runs", "execute_with_papermill", "run_suite", "cached_or_run", "suite_records", "BASELINES"]

SUITE_DIR = D.REPO_ROOT / "configs"
BASELINES = {"cmi": "ce", "cmi_tuned": "ce", "mcmi": "ce", "kd_ce": "student", "kd_mcmi": "student"}


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
    from .suite_schema import validate_suite

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
      minimiser search; a task without settings (search not finished, stopped because its last budget could not
      rank the candidates, or its winner equal to the defaults, which would duplicate the ``cmi`` arm) has no run
      in that arm.
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
    """Execute ``runs`` not yet in ``store`` with ``engine`` (:class:`~cmi_toolkit.runs.engine.EngineArgs`; default
    local: one after another in this process); returns the :class:`~cmi_toolkit.runs.engine.BatchResult`."""
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

    from .execute import execute
    from .store import load_cached

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


NOTEBOOK_DIR = D.REPO_ROOT / "notebooks"
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

    ``executor="package"`` calls the package through ``engine`` (:class:`~cmi_toolkit.runs.engine.EngineArgs`: local
    or Ray) and returns its :class:`~cmi_toolkit.runs.engine.BatchResult` (``.records``); ``"papermill"`` runs
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


def suite_records(store: ResultStore, spec: dict[str, Any], suite: str | None = None,
                  **select) -> tuple[list[dict[str, Any]], int]:
    """The records of ``spec``'s runs (with their teachers and CE twins) and the count of others ignored."""
    wanted = {cfg.key: (cfg.task, cfg.method, cfg.seed)
              for cfg in suite_runs(spec, with_dependencies=True, results_root=store.root, **select)}
    arm_of = {cfg.key: arm for _, cfg, arm in arm_runs(spec, select.get("tasks"), select.get("seeds"),
                                                         select.get("methods"), select.get("overrides"), store.root)
              if arm != cfg.method}
    records, ignored = store.select(wanted, suite or str(spec.get("suite", "suite")))
    from .store import run_key

    return [{**r, "arm": arm_of[k]} if (k := run_key(r["params"])) in arm_of else r for r in records], ignored


def planned_without_record(store: ResultStore, spec: dict[str, Any], records: list[dict[str, Any]],
                           **select) -> dict[tuple[str, str], list[int]]:
    """``{(task, arm): [seeds]}`` of the suite's planned runs (its arms, not their dependencies) that have no record
    among ``records``: a deleted or edited record shows as missing, never as a complete table."""
    from .store import run_key

    have = {run_key(r["params"]) for r in records}
    out: dict[tuple[str, str], list[int]] = {}
    for task, cfg, arm in arm_runs(spec, select.get("tasks"), select.get("seeds"), select.get("methods"),
                                   select.get("overrides"), store.root):
        if cfg.key not in have:
            out.setdefault((task, arm), []).append(cfg.seed)
    return out
