"""Choosing a task's settings on held-out training data only: a grid, successive halving, a stated rule.

Every candidate is scored on a stratified held-out share of the training subset
(``RunConfig.eval_on="heldout"``); the dev sets are never read. The search runs on Optuna: a
``GridSampler`` walks the grid and a ``SuccessiveHalvingPruner`` stops candidates early. A
candidate is trained at growing budgets (``budgets``: epochs); at each budget its value is
reported to Optuna and the pruner keeps only the best third for the next budget.

Objectives (the mean over ``seeds``, each seed paired with the same seed's baseline):

* ``minimiser`` (CE + lambda * CMI): held-out score of the CMI run minus that of its CE twin.
* ``teacher`` (CE - lambda * CMI): held-out score of the *student distilled from* the teacher
  minus that of the student distilled from the CE teacher. A teacher that fails its mechanism
  check (its CMI did not rise above its CE twin's) on any seed is refused (value -inf).

Rule: the winner is the candidate with the highest objective at the full budget; candidates
within ``tie`` of the best are resolved towards the smaller lambda (the least intervention).
Every run is a record in the given result store, so a repeated search skips finished runs.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .. import defaults as D
from .config import RunConfig
from .execute import execute
from .plan import fp32_from_rung
from .store import ResultStore

__all__ = ["GRID", "TEACHER_GRID", "candidates", "search_flags", "search_informative", "search_settings", "search_table", "uninformative_searches", "RULE"]

GRID: dict[str, list[Any]] = {
    "space": ["feature", "output"],
    "temperature": [0.05, 0.1, 0.2, 1.0],
    "cmi_weight": [0.03, 0.1, 0.3, 1.0],
    "centroid_mode": ["ema", "epoch"],
}
TEACHER_GRID: dict[str, list[Any]] = {
    "space": ["feature", "output"],
    "temperature": [0.1, 1.0],
    "cmi_weight": [0.1, 0.2, 0.3],
    "centroid_mode": ["fixed", "epoch"],
}
RULE = ("the highest mean held-out gain over the paired baseline at the full budget, over every seed; "
        "candidates within {tie} points of the best go to the smaller lambda")


def candidates(grid: dict[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """Every combination of the grid, as dicts."""
    import itertools

    keys = list(grid)
    return [dict(zip(keys, values, strict=True)) for values in itertools.product(*(grid[k] for k in keys))]


def _score(record: dict[str, Any]) -> float:
    return float(record["metrics"][record["headline_metric"]])


def _objective_value(base: RunConfig, settings: dict[str, Any], kind: str, epochs: float, seeds: Sequence[int],
                     store: ResultStore, glue_dir: str | None) -> tuple[float, list[float]]:
    gains = []
    for seed in seeds:
        common = dict(seed=seed, epochs=epochs, eval_on="heldout")
        if kind == "minimiser":
            run = execute(dataclasses.replace(base, method="cmi", **settings, **common), store, glue_dir, progress=False)
            twin = execute(dataclasses.replace(base, method="ce", **common), store, glue_dir, progress=False)
        else:
            teacher = execute(dataclasses.replace(base, method="mcmi", **settings, **common), store, glue_dir,
                              progress=False)
            if not teacher["checks"]["mechanism"]["passed"]:
                return -math.inf, []
            run = execute(dataclasses.replace(base, method="kd_mcmi", **settings, **common), store, glue_dir,
                          progress=False)
            twin = execute(dataclasses.replace(base, method="kd_ce", **common), store, glue_dir, progress=False)
        gains.append(_score(run) - _score(twin))
    return sum(gains) / len(gains), gains


def _rung_runs(base: RunConfig, settings: dict[str, Any], kind: str, epochs: float, seeds: Sequence[int],
               students: bool = True) -> list[RunConfig]:
    """The runs :func:`_objective_value` reads for one candidate at one budget (teachers and students apart)."""
    runs = []
    for seed in seeds:
        common = dict(seed=seed, epochs=epochs, eval_on="heldout")
        if kind == "minimiser":
            runs += [dataclasses.replace(base, method="cmi", **settings, **common),
                     dataclasses.replace(base, method="ce", **common)]
        elif students:
            runs += [dataclasses.replace(base, method="kd_mcmi", **settings, **common)]
        else:
            runs += [dataclasses.replace(base, method="mcmi", **settings, **common),
                     dataclasses.replace(base, method="kd_ce", **common)]
    return runs


def _batch(runs: list[RunConfig], store: ResultStore, glue_dir: str | None, engine) -> None:
    from .engine import run_batch

    done = run_batch(runs, store, glue_dir, engine, progress=True)
    if done.failed:
        raise RuntimeError(f"{len(done.failed)} search run(s) failed: "
                           + "; ".join(f"{key}: {why}" for key, why in done.failed.items()))


def _run_rung(base: RunConfig, cands: Sequence[dict[str, Any]], kind: str, epochs: float, seeds: Sequence[int],
              store: ResultStore, glue_dir: str | None, engine) -> None:
    """Train every run of ``cands`` at this budget as one batch of ``engine`` (local or Ray), so that
    :func:`_objective_value` then only reads records. A teacher search trains the teachers first and the
    students of those teachers that passed their mechanism check on every seed."""
    if kind == "minimiser":
        _batch([r for c in cands for r in _rung_runs(base, c, kind, epochs, seeds)], store, glue_dir, engine)
        return
    _batch([r for c in cands for r in _rung_runs(base, c, kind, epochs, seeds, students=False)], store, glue_dir,
           engine)
    passed = []
    for c in cands:
        teachers = [execute(r, store, glue_dir, progress=False)
                    for r in _rung_runs(base, c, kind, epochs, seeds, students=False) if r.method == "mcmi"]
        if all(t["checks"]["mechanism"]["passed"] for t in teachers):
            passed.append(c)
    _batch([r for c in passed for r in _rung_runs(base, c, kind, epochs, seeds)], store, glue_dir, engine)


def search_settings(base: RunConfig, store: ResultStore, grid: dict[str, Sequence[Any]] | None = None,
                    kind: str = "minimiser", seeds: Sequence[int] = (0, 1, 2), budgets: Sequence[float] = (1, 3),
                    glue_dir: str | None = None, tie: float = 0.001, reduction_factor: int = 3,
                    progress: bool = True, engine=None) -> dict[str, Any]:
    """Run the search; returns ``{"winner", "rule", "table"}``, the table one row per candidate.

    ``engine`` (:class:`~cmi_toolkit.runs.engine.EngineArgs`): each trial's seeds at each budget train as one
    batch (local, or fanned out over Ray); None trains them one after another here.

    Each row: the candidate's settings, the budget it reached, its objective there (mean gain,
    as a fraction) and the per-seed gains. ``pruned`` rows stopped at a smaller budget.
    """
    import optuna

    if kind not in ("minimiser", "teacher"):
        raise ValueError(f"kind must be 'minimiser' or 'teacher', got {kind!r}")
    if len(seeds) < 3:
        raise ValueError("the rule needs at least 3 seeds per candidate")
    grid = grid or (GRID if kind == "minimiser" else TEACHER_GRID)
    space = {k: list(v) for k, v in grid.items()}
    rows: dict[int, dict[str, Any]] = {}

    def objective(trial: optuna.Trial) -> float:
        settings = {k: trial.suggest_categorical(k, v) for k, v in space.items()}
        value = -math.inf
        for rung, epochs in enumerate(budgets):
            if engine is not None:
                _run_rung(base, [settings], kind, epochs, seeds, store, glue_dir, engine)
            value, gains = _objective_value(base, settings, kind, epochs, seeds, store, glue_dir)
            rows[trial.number] = {**settings, "budget": epochs, "gain": value, "gains": gains, "pruned": False}
            trial.report(value if math.isfinite(value) else -1.0, rung)
            if rung < len(budgets) - 1 and (not math.isfinite(value) or trial.should_prune()):
                rows[trial.number]["pruned"] = True
                raise optuna.TrialPruned()
        return value if math.isfinite(value) else -1.0

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        direction="maximize", sampler=optuna.samplers.GridSampler(space, seed=0),
        pruner=optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=reduction_factor))
    study.optimize(objective, n_trials=len(candidates(space)), show_progress_bar=progress)
    table = sorted(rows.values(), key=lambda r: (r["pruned"], -r["gain"] if math.isfinite(r["gain"]) else math.inf))
    full = [r for r in table if not r["pruned"] and r["budget"] == budgets[-1] and math.isfinite(r["gain"])]
    winner = None
    if full:
        best = max(r["gain"] for r in full)
        winner = min((r for r in full if r["gain"] >= best - tie), key=lambda r: (r["cmi_weight"], -r["gain"]))
    return {"winner": winner, "rule": RULE.format(tie=100 * tie), "table": table, "kind": kind,
            "seeds": list(seeds), "budgets": list(budgets)}


#: the CPU verdict suite's minimiser grid (feature space, EMA centroids): 16 candidates
CPU_GRID: dict[str, list[Any]] = {"space": ["feature"], "temperature": [0.05, 0.1, 0.2, 1.0],
                                  "cmi_weight": [0.03, 0.1, 0.3, 1.0], "centroid_mode": ["ema"]}
#: the CPU verdict suite's teacher grid: Ye et al.'s output-space teacher at three lambdas, and one in feature space
CPU_TEACHER_CANDIDATES: list[dict[str, Any]] = [
    {"space": "output", "temperature": 1.0, "cmi_weight": 0.1, "centroid_mode": "fixed"},
    {"space": "output", "temperature": 1.0, "cmi_weight": 0.2, "centroid_mode": "fixed"},
    {"space": "output", "temperature": 1.0, "cmi_weight": 0.3, "centroid_mode": "fixed"},
    {"space": "feature", "temperature": 0.1, "cmi_weight": 0.1, "centroid_mode": "ema"},
]
SH_RULE = ("successive halving: every candidate at the first budget, the best 1/{eta} (at least one) go on to the "
           "next budget with more seeds; the winner is the highest mean held-out gain over the paired baseline at "
           "the last budget; candidates within {tie} points of the best go to the smaller lambda")


def successive_halving(base: RunConfig, store: ResultStore, candidates_: Sequence[dict[str, Any]],
                       kind: str = "minimiser", rungs: Sequence[tuple[float, Sequence[int]]] = ((1, (0,)), (3, (0, 1))),
                       eta: int = 4, glue_dir: str | None = None, tie: float = 0.001,
                       progress: bool = True, engine=None, fp32_from_rung: int | None = None) -> dict[str, Any]:
    """Synchronous successive halving sized for a CPU: ``rungs`` are (epochs, seeds) from cheap to full.

    ``fp32_from_rung`` (1-based; a suite amendment's ``fp32: search:``): from that rung on, the candidates and
    their baselines train in fp32 instead of ``base``'s bf16, so each gain still compares one precision.

    ``engine`` (:class:`~cmi_toolkit.runs.engine.EngineArgs`): a rung's runs (every surviving candidate, every
    seed) train as one batch, locally or fanned out over Ray; None trains them one after another here.

    All candidates run at the first rung; after each rung the best ceil(n / eta) continue. Every run is a
    record in ``store`` (held-out split of the training data: the dev sets are never read), so a repeated
    search skips finished runs. Returns ``{"winner", "rule", "table", ...}`` like :func:`search_settings`.
    """
    from tqdm.auto import tqdm

    if kind not in ("minimiser", "teacher"):
        raise ValueError(f"kind must be 'minimiser' or 'teacher', got {kind!r}")
    if len(rungs[-1][1]) < 2:
        raise ValueError("the last rung needs at least 2 seeds per surviving candidate")
    alive = [dict(c) for c in candidates_]
    rows: dict[int, dict[str, Any]] = {}
    index = {id(c): i for i, c in enumerate(alive)}
    top = base
    for r, (epochs, seeds) in enumerate(rungs):
        scored = []
        fp32 = bool(top.bf16 and fp32_from_rung and r + 1 >= fp32_from_rung)
        base = dataclasses.replace(top, bf16=False) if fp32 else top
        if engine is not None:
            _run_rung(base, alive, kind, epochs, seeds, store, glue_dir, engine)
        for c in tqdm(alive, desc=f"rung {r + 1}/{len(rungs)} ({epochs:g} epochs, {len(seeds)} seeds)",
                      disable=not progress):
            value, gains = _objective_value(base, c, kind, epochs, seeds, store, glue_dir)
            rows[index[id(c)]] = {**c, "budget": epochs, "seeds": list(seeds), "gain": value, "gains": gains,
                                  "pruned": False, **({"precision": "fp32"} if fp32 else {})}
            scored.append((value, c))
        if r < len(rungs) - 1:
            keep = max(1, math.ceil(len(alive) / eta))
            ranked = sorted(scored, key=lambda vc: (-vc[0] if math.isfinite(vc[0]) else math.inf, vc[1]["cmi_weight"]))
            alive = [c for v, c in ranked[:keep] if math.isfinite(v)] or [ranked[0][1]]
            for _v, c in ranked[keep:]:
                rows[index[id(c)]]["pruned"] = True
    table = sorted(rows.values(), key=lambda r: (r["pruned"], -r["gain"] if math.isfinite(r["gain"]) else math.inf))
    full = [r for r in table if not r["pruned"] and r["budget"] == rungs[-1][0] and math.isfinite(r["gain"])]
    winner = None
    if full:
        best = max(r["gain"] for r in full)
        winner = min((r for r in full if r["gain"] >= best - tie), key=lambda r: (r["cmi_weight"], -r["gain"]))
    return {"winner": winner, "rule": SH_RULE.format(eta=eta, tie=100 * tie), "table": table, "kind": kind,
            "rungs": [[e, list(s)] for e, s in rungs]}


DEFAULT_RESULTS = D.REPO_ROOT / "results"


def search_file(spec: dict[str, Any], task: str, kind: str, results_root: Path | None = None) -> Path:
    """Where a suite's search result for ``task`` and ``kind`` lies: ``<results>/search/<suite>/<task>_<kind>.json``.

    ``results_root`` is the suite's result store (default: the repository's ``results/``); the search's own
    runs are records of the store ``<results>/search``.
    """
    root = Path(results_root) if results_root is not None else DEFAULT_RESULTS
    return root / "search" / str(spec.get("suite", "suite")) / f"{task}_{kind}.json"


def search_winner(spec: dict[str, Any], task: str, kind: str, results_root: Path | None = None) -> dict[str, Any] | None:
    """The CMI settings the suite's search chose for ``task`` (None until that search has finished)."""
    import json

    path = search_file(spec, task, kind, results_root)
    if not path.is_file():
        return None
    try:
        winner = json.loads(path.read_text(encoding="utf-8"))["winner"]
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{path}: not a search result ({exc}); delete it and run the search again") from None
    return None if winner is None else {k: winner[k] for k in SETTING_KEYS}


SETTING_KEYS = ("space", "temperature", "cmi_weight", "centroid_mode")


def run_suite_search(spec: dict[str, Any], kind: str, tasks: Sequence[str] | None = None, glue_dir: str | None = None,
                     results_root: Path | None = None, progress: bool = True, engine=None) -> dict[str, dict[str, Any]]:
    """Run the suite's declared ``search:`` of ``kind`` on each of its tasks; write each result; return them.

    ``search.minimiser`` / ``search.teacher``: ``grid`` (``cpu``) or ``candidates`` (``cpu``), ``rungs``
    ([[epochs, [seeds]], ...]), ``eta``, ``tasks`` and ``max_train_samples`` (the seeded subset of the training
    set the search draws its train / held-out split from; default: the task's own). Base runs are the suite's
    own settings for the task.
    """
    import json

    from ..files import atomic_write_text
    from .provenance import git_state

    conf = (spec.get("search") or {}).get(kind)
    if not conf:
        raise ValueError(f"suite {spec.get('suite')!r} declares no search.{kind}")
    store = ResultStore((Path(results_root) if results_root is not None else DEFAULT_RESULTS) / "search")
    out = {}
    for task, params in spec["tasks"].items():
        if (tasks and task not in tasks) or (conf.get("tasks") and task not in conf["tasks"]):
            continue
        params = {k: v for k, v in (params or {}).items() if k not in ("teacher", "methods")}
        if "max_train_samples" in conf:  # the search's own (smaller) seeded subset of the training set
            params["max_train_samples"] = conf["max_train_samples"]
        base = RunConfig(**{**spec["common"], **params, "task": task, "method": "ce"})
        if kind == "minimiser":
            cands = candidates(CPU_GRID if conf.get("grid", "cpu") == "cpu" else conf["grid"])
        else:
            cands = CPU_TEACHER_CANDIDATES if conf.get("candidates", "cpu") == "cpu" else conf["candidates"]
        rungs = [(float(e), tuple(s)) for e, s in conf.get("rungs", [[1, [0]], [3, [0, 1]]])]
        result = successive_halving(base, store, cands, kind=kind, rungs=rungs, eta=int(conf.get("eta", 4)),
                                    glue_dir=glue_dir, progress=progress, engine=engine,
                                    fp32_from_rung=fp32_from_rung(spec, kind, task))
        result.update(task=task, suite=spec.get("suite"), provenance=git_state())
        stop_if_uninformative(result, store)
        path = search_file(spec, task, kind, results_root)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps(result, indent=1, sort_keys=True) + "\n")
        atomic_write_text(path.with_suffix(".md"), "\n".join(search_table(result)) + "\n")
        out[task] = result
    return out


def search_flags(result: dict[str, Any], store: ResultStore) -> list[tuple[int, int]]:
    """Per row of ``result["table"]``: (runs flagged degenerate, runs found) among the runs its gain was read
    from at the budget it reached: the candidate's (a teacher's students too) and its baselines', every seed.

    A degenerate run (training loss at chance, one predicted class, near-uniform outputs) scores what a constant
    predictor scores; where both sides of every pair are such, the held-out gains cannot rank the candidates.
    """
    task = result.get("task")
    index: dict[tuple, list[bool]] = {}
    for record in store.all_records():
        p = record["params"]
        if p.get("task") != task or p.get("eval_on") != "heldout":
            continue
        settings = tuple(p.get(k) for k in SETTING_KEYS) if p["method"] in ("cmi", "mcmi", "kd_mcmi") else None
        flagged = bool((record.get("checks") or {}).get("flags"))
        index.setdefault((p["method"], float(p["epochs"]), p["seed"], settings), []).append(flagged)
    methods = (("cmi",), ("ce",)) if result["kind"] == "minimiser" else (("mcmi", "kd_mcmi"), ("kd_ce",))
    out = []
    for row in result["table"]:
        settings = tuple(row[k] for k in SETTING_KEYS)
        found: list[bool] = []
        for seed in row.get("seeds", []):
            for method in methods[0]:
                found += index.get((method, float(row["budget"]), seed, settings), [])[:1]
            for method in methods[1]:
                found += index.get((method, float(row["budget"]), seed, None), [])[:1]
        out.append((sum(found), len(found)))
    return out


def search_table(result: dict[str, Any], store: ResultStore | None = None) -> list[str]:
    """Markdown of one search: its rule, every candidate at the budget it reached, and the winner.

    With the search's result ``store``, a column counts each row's runs flagged degenerate, and a search whose
    every run at the last budget is flagged is said to be uninformative: its winner is the tie rule's pick.
    """

    flags = search_flags(result, store) if store is not None else None
    lines = [f"Held-out search, {result.get('task')}, {result['kind']}; rule: {result['rule']}.", "",
             "| space | T | λ | centroids | budget (epochs) | seeds | mean held-out gain (points) | per seed | stopped |"
             + (" runs flagged degenerate |" if flags else ""),
             "|---|---|---|---|---|---|---|---|---|" + ("---|" if flags else "")]
    for i, r in enumerate(result["table"]):
        gain = "refused (mechanism)" if r["gain"] == float("-inf") else f"{100 * r['gain']:+.2f}"
        lines.append(f"| {r['space']} | {r['temperature']:g} | {r['cmi_weight']:g} | {r['centroid_mode']} | "
                     f"{r['budget']:g} | {len(r.get('seeds', []))} | {gain} | "
                     f"{', '.join(f'{100 * g:+.2f}' for g in r['gains'])} | {'yes' if r['pruned'] else ''} |"
                     + (f" {flags[i][0]}/{flags[i][1]} |" if flags else ""))
    w = result["winner"]
    if w is None and result.get("stopped"):
        lines += ["", f"winner: none — **the search stopped**: {result['stopped']}."]
    elif w is None:
        lines += ["", "winner: none (every candidate was refused)"]
    else:
        same = result["kind"] == "minimiser" and all(w[k] == D.CMI_DEFAULTS[k] for k in SETTING_KEYS)
        lines += ["", "winner: " + ", ".join(f"{k}={w[k]}" for k in SETTING_KEYS)
                  + (" — the kit's defaults: no separate tuned arm is run" if same else "")]
    if flags and not result.get("stopped"):
        last = [f for r, f in zip(result["table"], flags, strict=True) if not r["pruned"]]
        if last and all(n and k == n for k, n in last):
            lines += ["", f"**Uninformative search**: every run at the last budget, the baselines' included, was flagged "
                          f"degenerate (on {result.get('task')}'s held-out split they score as a constant predictor "
                          "does), so the held-out gains cannot rank the candidates: the winner above is the tie "
                          "rule's pick, not a measured choice, and "
                          + ("the tuned arm it names is no test of tuned settings." if result["kind"] == "minimiser"
                             else "the MCMI teacher it names was not chosen by its student's score.")]
    return lines


def search_informative(result: dict[str, Any], store: ResultStore) -> bool:
    """False when every run at the last budget of the search (baselines included) was flagged degenerate."""
    last = [f for r, f in zip(result["table"], search_flags(result, store), strict=True) if not r["pruned"]]
    return not (last and all(n and k == n for k, n in last))


STOPPED = ("every run at the last budget, the baselines' included, was flagged degenerate, so the held-out gains "
           "cannot rank the candidates; no winner is named (the tie rule would pick {pick}): give the search rungs on "
           "which the CE baseline learns (more training rows or epochs, by a plan amendment) and run it again")


def stop_if_uninformative(result: dict[str, Any], store: ResultStore) -> dict[str, Any]:
    """A search that cannot rank names no winner: when every run at its last budget (baselines included) was flagged
    degenerate, ``winner`` becomes None, ``stopped`` says why and ``tie_pick`` keeps what the tie rule would have
    chosen (shown, never used: a suite plans no tuned arm or MCMI teacher from it)."""
    w = result.get("winner")
    if w is not None and not search_informative(result, store):
        pick = ", ".join(f"{k}={w[k]}" for k in SETTING_KEYS)
        result.update(winner=None, tie_pick=w, stopped=STOPPED.format(pick=pick))
    return result


def uninformative_searches(spec: dict[str, Any], results_root: Path | None = None) -> list[str]:
    """``task (kind)`` of each finished search of the suite whose every run at the last budget was degenerate."""
    import json

    root = Path(results_root) if results_root is not None else DEFAULT_RESULTS
    store = ResultStore(root / "search")
    out = []
    for kind, conf in (spec.get("search") or {}).items():
        if not isinstance(conf, dict):
            continue
        for task in conf.get("tasks") or list(spec["tasks"]):
            path = search_file(spec, task, kind, root)
            if path.is_file() and not search_informative(json.loads(path.read_text(encoding="utf-8")), store):
                out.append(f"{task} ({kind})")
    return out


UNINFORMATIVE = ("every held-out run at their last budget, the baselines' included, was flagged degenerate, so their "
                 "winners are the tie rule's picks; the comparisons that use them test those picks, not settings "
                 "chosen on held-out data")
