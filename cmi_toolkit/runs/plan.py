"""A suite's pre-registered plan: what it tests, how many seeds, when it stops, what it may cost.

A suite YAML may carry ``plan:`` (validated by :class:`Plan`)::

    plan:
      hypotheses: ["CMI-minimised - CE on each task's headline metric is 0 (two-sided, Holm within the family)"]
      primary_metric: {sst2: accuracy, cola: matthews_correlation}
      seeds: {start: 5, max: 10}
      target_mde: {default: 0.01, cola: 0.03}
      stopping: "5 seeds, then 5 more where MDE80 > target"
      budget_cpu_hours: 6

:func:`plan_status` says whether the plan was committed before the runs (the earliest commit whose
suite file holds today's plan must be an ancestor of, or equal to, every run's recorded commit) and
which records deviate from it (seeds outside the plan, tasks it does not name, the CPU time spent).
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator

from .. import defaults as D

__all__ = ["Plan", "SeedPlan", "parse_plan", "plan_commit", "plan_status", "plan_lines", "stopping_lines", "fp32_run", "fp32_from_rung",
           "PAIR"]

PAIR = " (fp32 pair)"
"""Suffix of the arm of a baseline run added by an amendment's ``fp32:`` to pair an fp32 run at its own precision."""

_REPO = D.REPO_ROOT


class SeedPlan(BaseModel):
    model_config = ConfigDict(extra="forbid")
    start: int = Field(ge=2)
    max: int = Field(ge=2)


class Plan(BaseModel):
    """The ``plan:`` section of a suite (unknown keys are refused, so a typo cannot pass unseen)."""

    model_config = ConfigDict(extra="forbid")
    hypotheses: list[str] = Field(min_length=1)
    primary_metric: dict[str, str]
    seeds: SeedPlan
    stopping: str
    target_mde: dict[str, float] | None = None
    decision: str | None = None
    budget_cpu_hours: float | None = Field(default=None, gt=0)
    # a budget in hours of the whole machine (core-hours / machine_cores), as a plan run by 1-thread processes side
    # by side states it
    budget_machine_hours: float | None = Field(default=None, gt=0)
    machine_cores: int | None = Field(default=None, ge=1)
    budget_estimate: dict[str, float] | None = None
    excluded: dict[str, str] | None = None

    @field_validator("seeds")
    @classmethod
    def _order(cls, v: SeedPlan) -> SeedPlan:
        if v.max < v.start:
            raise ValueError("seeds.max must be >= seeds.start")
        return v

    def target(self, task: str) -> float | None:
        if not self.target_mde:
            return None
        return self.target_mde.get(task, self.target_mde.get("default"))


def parse_plan(spec: dict[str, Any], where: str = "suite") -> Plan | None:
    """The suite's :class:`Plan` (None when it has none); a malformed plan is one named line."""
    from pydantic import ValidationError

    raw = spec.get("plan")
    if raw is None:
        return None
    try:
        return Plan.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(x) for x in err["loc"])
        raise ValueError(f"{where}: plan.{loc}: {err['msg']}; fix the suite's plan section") from None


def _git(*args: str, repo: Path = _REPO) -> str | None:
    try:
        return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, timeout=20,
                              check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None


def plan_commit(suite_file: str | Path, repo: Path = _REPO) -> str | None:
    """The earliest commit whose version of ``suite_file`` holds the same plan as the file does now."""
    suite_file = Path(suite_file).resolve()
    try:
        rel = suite_file.relative_to(repo)
    except ValueError:
        return None
    current = (yaml.safe_load(suite_file.read_text(encoding="utf-8")) or {}).get("plan")
    log = _git("log", "--format=%H", "--", str(rel), repo=repo)
    if not log or current is None:
        return None
    earliest = None
    for commit in log.split():  # newest first
        text = _git("show", f"{commit}:{rel}", repo=repo)
        try:
            old = (yaml.safe_load(text) or {}).get("plan") if text else None
        except yaml.YAMLError:
            old = None
        if old != current:
            break
        earliest = commit
    return earliest


def _is_ancestor(a: str, b: str, repo: Path = _REPO) -> bool | None:
    try:
        r = subprocess.run(["git", "-C", str(repo), "merge-base", "--is-ancestor", a, b], capture_output=True,
                           timeout=20)
    except (OSError, subprocess.SubprocessError):
        return None
    return {0: True, 1: False}.get(r.returncode)


def fp32_run(spec: dict[str, Any], task: str, arm: str, seed: int) -> bool:
    """Whether an amendment's ``fp32: runs:`` moves run (task, arm, seed) of the suite from bf16 to fp32.

    Such a run is compared with baselines of its own precision: the suite adds, for each of its baselines
    that is not itself a planned fp32 run, the same baseline trained in fp32 with its seed (arm ``<base>`` +
    :data:`PAIR`), and the verdict pairs every seed within one precision.
    """
    for a in spec.get("amendments") or []:
        for sel in (a.get("fp32") or {}).get("runs") or []:
            if task in sel["tasks"] and arm in sel["arms"] and seed in sel["seeds"]:
                return True
    return False


def fp32_from_rung(spec: dict[str, Any], kind: str, task: str) -> int | None:
    """The first rung (1-based) of the suite's ``kind`` search on ``task`` that an amendment moves to fp32."""
    rungs = [sel["from_rung"] for a in spec.get("amendments") or []
             for sel in (a.get("fp32") or {}).get("search") or [] if sel["kind"] == kind and task in sel["tasks"]]
    return min(rungs) if rungs else None


def plan_status(spec: dict[str, Any], suite_file: str | Path | None, records: list[dict[str, Any]],
                repo: Path = _REPO) -> dict[str, Any]:
    """The plan, its commit, whether it precedes every run, the deviations and the CPU time spent."""
    plan = parse_plan(spec, str(suite_file or "suite"))
    seconds = [(r.get("timings", {}).get("train_s", 0) + r.get("timings", {}).get("eval_s", 0),
                (r.get("provenance") or {}).get("threads") or 1) for r in records]
    status: dict[str, Any] = {"plan": plan, "commit": None, "precedes": None, "deviations": [],
                              "cpu_hours": sum(s for s, _ in seconds) / 3600,
                              "core_hours": sum(s * t for s, t in seconds) / 3600,
                              "amendments": list(spec.get("amendments") or [])}
    if plan is None:
        return status
    commit = plan_commit(suite_file, repo) if suite_file else None
    status["commit"] = commit
    if commit:
        later, earlier, unknown = 0, 0, 0
        for r in records:
            # a run made again with identical metrics (to add its predictions) counts from its reproduction; one
            # that matched only up to another instruction set's rounding still counts from its first making
            again = None if r.get("predictions_rounding_gap") else r.get("reproduced")
            c = (again or r.get("provenance") or {}).get("commit")
            ok = _is_ancestor(commit, c, repo) if c else None
            if ok is True:
                later += 1
            elif ok is False:
                earlier += 1
            else:
                unknown += 1
        status["precedes"] = {"after_plan": later, "before_plan": earlier, "unknown": unknown}
    dirty = sum((r.get("provenance") or {}).get("dirty") is True for r in records)
    status["dirty"] = dirty
    if dirty:  # the code of such a run is not exactly the commit it names
        status["deviations"].append(f"{dirty} of the {len(records)} recorded runs were made from a dirty tree (files "
                                    "changed since the commit they name), so their code is that commit plus changes")
    seeds = sorted({r["params"]["seed"] for r in records})
    extra = [s for s in seeds if s >= plan.seeds.max]
    if extra:
        status["deviations"].append(f"seeds {extra} lie beyond the plan's maximum of {plan.seeds.max}")
    unnamed = sorted({r["params"]["task"] for r in records} - set(plan.primary_metric))
    if unnamed:
        status["deviations"].append(f"tasks {unnamed} have no primary metric in the plan")
    wrong = sorted({r["params"]["task"] for r in records
                    if r["params"]["task"] in plan.primary_metric
                    and r.get("headline_metric") != plan.primary_metric[r["params"]["task"]]})
    if wrong:
        status["deviations"].append(f"tasks {wrong} report another headline metric than the plan's primary one")
    budget = next((a for a in reversed(status["amendments"]) if a.get("budget_machine_hours")), None)
    if budget is None and plan.budget_machine_hours:
        budget = {"budget_machine_hours": plan.budget_machine_hours, "machine_cores": plan.machine_cores or 2}
    if budget:  # an amendment counts the budget in hours of the whole machine: core-hours / its cores
        status["machine_hours"] = status["core_hours"] / budget["machine_cores"]
        status["over_budget"] = status["machine_hours"] > budget["budget_machine_hours"]
        if status["over_budget"]:
            status["deviations"].append(f"{status['machine_hours']:.2f} machine hours spent, over the amended "
                                        f"budget of {budget['budget_machine_hours']:g}")
    elif plan.budget_cpu_hours and status["cpu_hours"] > plan.budget_cpu_hours:
        status["over_budget"] = True
        status["deviations"].append(f"{status['cpu_hours']:.2f} CPU hours spent, over the plan's "
                                    f"{plan.budget_cpu_hours:g}")
    return status


def stopping_lines(status: dict[str, Any], rows: list[dict[str, Any]]) -> list[str]:
    """What the plan's stopping rule asks of the recorded comparisons (``rows``: the family's verdict rows): those
    whose MDE80 exceeds the plan's target get seeds up to the plan's maximum, but only while the recorded time
    is under the budget."""
    plan: Plan | None = status["plan"]
    if plan is None or not plan.target_mde:
        return []
    over = [(r, r["t"]["mde80"], plan.target(r["task"])) for r in rows
            if r.get("t") and plan.target(r["task"]) is not None and r["t"]["mde80"] > plan.target(r["task"])
            and r["n"] < plan.seeds.max]
    if not over:
        return ["- stopping rule: every comparison's MDE80 is within its target (or at the maximum of seeds): "
                "no seeds to add"]
    named = "; ".join(f"{r['task']} {r['question']} (MDE80 {100 * m:.2f} > {100 * t:g} points, {r['n']} seeds)"
                      for r, m, t in over)
    then = ("the recorded time is over the budget, so the rule adds none: these stay at the seeds they have"
            if status.get("over_budget") else
            f"the rule adds seeds up to {plan.seeds.max} to these, cheapest task first, while the budget lasts")
    return [f"- stopping rule: MDE80 above its target in {named}; {then}"]


def plan_lines(status: dict[str, Any]) -> list[str]:
    """Markdown lines stating the plan beside the results."""
    plan: Plan | None = status["plan"]
    if plan is None:
        return ["No plan: this suite was not pre-registered (its hypotheses and stopping rule are not on record)."]
    lines = ["Plan (from the suite file; the plan commit line says whether it came before the runs):", ""]
    lines += [f"- hypothesis: {h}" for h in plan.hypotheses]
    lines.append("- primary metric: " + ", ".join(f"{t} {m}" for t, m in plan.primary_metric.items()))
    lines.append(f"- seeds: {plan.seeds.start}, at most {plan.seeds.max}; stopping rule: {plan.stopping}")
    if plan.target_mde:
        lines.append("- target detectable effect (MDE80): " + ", ".join(
            f"{t} {100 * v:g} points" for t, v in plan.target_mde.items()))
    if plan.decision:
        lines.append(f"- decision: {plan.decision}")
    if plan.budget_cpu_hours:
        lines.append(f"- CPU budget: {plan.budget_cpu_hours:g} h planned, {status['cpu_hours']:.2f} h of training and "
                     "evaluation recorded so far")
    if status.get("machine_hours") is not None:
        budget = next((a for a in reversed(status["amendments"]) if a.get("budget_machine_hours")), None)
        amended = budget is not None
        budget = budget or {"budget_machine_hours": plan.budget_machine_hours, "machine_cores": plan.machine_cores or 2}
        lines.append(f"- machine budget{' (amended)' if amended else ''}: {budget['budget_machine_hours']:g} h of this "
                     f"{budget['machine_cores']}-core machine planned, {status['machine_hours']:.2f} h recorded so far "
                     f"({status['core_hours']:.2f} core-hours)")
    if plan.excluded:
        lines += [f"- not counted: {t} ({why})" for t, why in plan.excluded.items()]
    for a in status.get("amendments") or []:
        lines.append(f"- amendment of {a['date']} (before {a['before']}): {' '.join(a['change'].split())} "
                     f"Why: {' '.join(a['why'].split())}")
    pre = status["precedes"]
    if status["commit"] is None:
        lines.append("- plan commit: unknown (the suite file is not in this repository's history)")
    elif pre is not None:
        if pre["before_plan"] or pre["unknown"]:
            lines.append(f"- plan commit {status['commit'][:10]}: **{pre['before_plan']} run(s) were made before it** "
                         f"({pre['after_plan']} after, {pre['unknown']} of unknown commit): for those runs the plan is "
                         "post hoc")
        else:
            lines.append(f"- plan commit {status['commit'][:10]} precedes all {pre['after_plan']} runs")
    lines += [f"- deviation: {d}" for d in status["deviations"]] or ["- deviations: none"]
    return lines
