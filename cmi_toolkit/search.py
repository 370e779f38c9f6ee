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
from typing import Any

from .experiments import RunConfig, execute
from .results import ResultStore

__all__ = ["GRID", "TEACHER_GRID", "candidates", "search_settings", "RULE"]

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


def search_settings(base: RunConfig, store: ResultStore, grid: dict[str, Sequence[Any]] | None = None,
                    kind: str = "minimiser", seeds: Sequence[int] = (0, 1, 2), budgets: Sequence[float] = (1, 3),
                    glue_dir: str | None = None, tie: float = 0.001, reduction_factor: int = 3,
                    progress: bool = True) -> dict[str, Any]:
    """Run the search; returns ``{"winner", "rule", "table"}``, the table one row per candidate.

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
