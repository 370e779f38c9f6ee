"""A suite's family of comparisons, answered as DESIGN.md's "Evidence" section says.

For every comparison (task, method, baseline) of a suite's family:

* the paired-t interval over seeds (training randomness, the dev set held fixed);
* the two-level paired bootstrap over seeds *and* dev examples (also the finite dev set), from the
  records' per-example predictions, and McNemar's test per seed;
* the interval used for the verdict is the wider of the two, and its p-value (the larger) is
  Holm-adjusted within the family; "better" / "worse" only when the adjusted p < 0.05 and the
  used interval excludes 0;
* mechanism checks and flagged seeds;
* per question, a random-effects pooled estimate across the tasks that share one headline metric (the largest
  such group): a point of accuracy, of F1 and of Matthews' correlation are different units, so tasks scored in
  another metric are named and left out of the pool rather than averaged in.

A suite declares its family under ``family:`` (a list of ``{method, baseline}``, optionally with
``tasks``); without one, the family is every question of :data:`QUESTIONS` whose two methods the suite runs.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["QUESTIONS", "runs_by_task_method", "precision", "baseline_runs", "mechanism_results", "family", "compare", "one_comparison", "family_verdicts", "pooled", "pool_scope", "verdict_lines", "family_table", "answers"]

# (method, baseline, the question's words, the run whose mechanism check answers for the method)
QUESTIONS = (("cmi", "ce", "CMI-minimised − CE", "cmi"),
             ("cmi_tuned", "ce", "CMI-minimised (tuned) − CE", "cmi_tuned"),
             ("kd_mcmi", "kd_ce", "student ← MCMI teacher − student ← CE teacher", "mcmi"),
             # chain-of-thought distillation (cmi_toolkit.cot.suite): each variant's own run carries its check
             ("dss", "label_only", "DSS − label-only", "dss"),
             ("dss_mi", "dss", "DSS + MI (released) − DSS", "dss_mi"),
             ("dss_mi_var", "dss", "DSS + MI (variational) − DSS", "dss_mi_var"))
WORDS = {m: (q, chk) for m, _, q, chk in QUESTIONS}


def family(spec: dict[str, Any], tasks: list[str]) -> list[tuple[str, str, str]]:
    """(task, method, baseline) of every comparison in the suite's family."""
    methods = set(spec.get("finetune_methods", [])) | set(spec.get("distill_methods", []))
    methods |= {a.get("name") for a in spec.get("arms", []) or []}
    declared = spec.get("family")
    if declared:
        items = [(c["method"], c["baseline"], c.get("tasks")) for c in declared]
    else:
        items = [(m, b, None) for m, b, _, _ in QUESTIONS if m in methods and b in methods]
    return [(t, m, b) for m, b, only in items for t in tasks if not only or t in only]


def runs_by_task_method(records: list[dict[str, Any]]) -> dict[tuple[str, str], dict[int, dict[str, Any]]]:
    """Records grouped as ``{(task, arm): {seed: record}}``; a record's arm is its ``arm`` or its method."""
    from collections import defaultdict

    by: dict[tuple[str, str], dict[int, dict[str, Any]]] = defaultdict(dict)
    for r in records:
        p = r["params"]
        by[(p["task"], r.get("arm") or p["method"])][p["seed"]] = r
    return by


def precision(record: dict[str, Any]) -> str:
    """``bf16`` or ``fp32``: the precision a run trained in."""
    return "bf16" if record["params"].get("bf16") else "fp32"


def baseline_runs(by: dict[tuple[str, str], dict[int, dict[str, Any]]], task: str, base: str,
                  runs: dict[int, dict[str, Any]]) -> dict[int, dict[str, Any]]:
    """The baseline ``{seed: record}`` that ``runs`` of ``task`` are paired with: per seed, the ``base`` run of the
    same precision, from the arm itself or from its fp32 pairs (``<base>`` + :data:`~cmi_toolkit.runs.plan.PAIR`,
    added by an amendment that moved runs to fp32); a seed with no baseline of its precision has none, so it
    is left out of the comparison rather than paired across precisions."""
    from ..runs.plan import PAIR

    own, pairs = dict(by.get((task, base)) or {}), by.get((task, base + PAIR)) or {}
    for seed, run in runs.items():
        match = [r for r in (own.get(seed), pairs.get(seed)) if r is not None and precision(r) == precision(run)]
        if match:
            own[seed] = match[0]
        else:
            own.pop(seed, None)
    return own


def mechanism_results(records) -> list[bool]:
    """Passed / failed of each record's mechanism check, leaving out records with none (or an unchecked one)."""
    return [r["checks"]["mechanism"]["passed"] for r in records
            if r.get("checks", {}).get("mechanism", {}).get("passed") is not None]


def _usable(record: dict[str, Any]) -> bool:
    return not record.get("checks", {}).get("flags")


def compare(a: dict[int, dict[str, Any]], b: dict[int, dict[str, Any]], mechanism_runs: list[dict[str, Any]],
            resamples: int = 2000) -> dict[str, Any]:
    """One comparison: method runs ``a`` and baseline runs ``b`` (``{seed: record}``) of one task."""
    from ..data.predictions import decode_predictions, has_predictions
    from .statistics import mcnemar_per_seed, paired_bootstrap, paired_comparison
    shared = sorted(s for s in set(a) & set(b) if _usable(a[s]) and _usable(b[s]))
    metric = a[next(iter(a))]["headline_metric"]
    mech = mechanism_results(mechanism_runs)
    out: dict[str, Any] = {"metric": metric, "seeds": shared, "n": len(shared),
                           "left_out": len(set(a) | set(b)) - len(shared),
                           "mechanism": (sum(mech), len(mech)),
                           "legacy": any("checks" not in r for r in [*a.values(), *b.values()]),
                           "t": None, "boot": None, "mcnemar": None, "predictions": 0}
    if len(shared) < 2:
        out["verdict"] = "too few seeds"
        return out
    out["t"] = paired_comparison([a[s]["metrics"][metric] for s in shared], [b[s]["metrics"][metric] for s in shared])
    with_preds = [s for s in shared if has_predictions(a[s]) and has_predictions(b[s])]
    out["predictions"] = len(with_preds)
    if len(with_preds) == len(shared):
        pa = [decode_predictions(a[s], f"record {a[s]['key']}") for s in shared]
        pb = [decode_predictions(b[s], f"record {b[s]['key']}") for s in shared]
        k = int(max(p.labels.max() for p in pa) + 1)
        k = max(k, len(a[shared[0]]["metrics"].get("feature_per_class_cmi", [])) or 2)
        out["boot"] = paired_bootstrap(pa, pb, metric, k, resamples=resamples)
        out["mcnemar"] = mcnemar_per_seed(pa, pb)
    t, boot = out["t"], out["boot"]
    used = t if boot is None or (t["high"] - t["low"]) >= (boot["high"] - boot["low"]) else boot
    out["used"] = "seeds" if used is t else "seeds + examples"
    out["low"], out["high"], out["mean"] = used["low"], used["high"], t["mean"]
    out["p"] = max(t["p"], boot["p"]) if boot is not None else t["p"]
    out["se"] = max(t["sd"] / np.sqrt(t["n"]), boot["se"] if boot is not None else 0.0)
    return out


def _comparison(by: dict[tuple[str, str], dict[int, dict[str, Any]]], task: str, method: str, base: str,
                resamples: int) -> dict[str, Any] | None:
    """The row of one comparison (:func:`compare` with its names), None when either side has no runs."""
    a = by.get((task, method))
    b = baseline_runs(by, task, base, a) if a else None
    if not a or not b:
        return None
    question, checked = WORDS.get(method, (f"{method} − {base}", method))
    c = compare(a, b, list(by.get((task, checked), {}).values()), resamples=resamples)
    return {"task": task, "method": method, "baseline": base, "question": question, "mechanism_of": checked, **c}


def one_comparison(records: list[dict[str, Any]], task: str, method: str, base: str,
                   resamples: int = 2000) -> dict[str, Any] | None:
    """One comparison on its own (a notebook's question), as :func:`family_verdicts` states it but with no
    multiplicity correction: ``p_holm`` is None and the verdict is the interval's ('better' / 'worse' when it
    excludes 0). None when either side has no runs."""
    row = _comparison(runs_by_task_method(records), task, method, base, resamples)
    if row is not None:
        row["p_holm"] = None
        if row["n"] >= 2:
            row["verdict"] = row["raw_verdict"] = ("better" if row["low"] > 0 else "worse" if row["high"] < 0
                                                   else "no difference detected")
    return row


def family_verdicts(records: list[dict[str, Any]], spec: dict[str, Any], alpha: float = 0.05,
                    resamples: int = 2000) -> list[dict[str, Any]]:
    """Every comparison of the family with its Holm-adjusted p and verdict (see the module docstring)."""
    from .statistics import holm

    by = runs_by_task_method(records)
    tasks = sorted({t for t, _ in by})
    rows = [row for task, method, base in family(spec, tasks)
            if (row := _comparison(by, task, method, base, resamples)) is not None]
    adjusted = holm([r.get("p", float("nan")) for r in rows], alpha)
    for r, p_adj in zip(rows, adjusted, strict=True):
        r["p_holm"] = p_adj
        if r["n"] < 2:
            continue
        excludes = r["low"] > 0 or r["high"] < 0
        if excludes and p_adj < alpha:
            r["verdict"] = "better" if r["mean"] > 0 else "worse"
        else:
            r["verdict"] = "no difference detected"
        r["raw_verdict"] = ("better" if r["low"] > 0 else "worse" if r["high"] < 0 else "no difference detected")
    return rows


#: tasks no pooled estimate counts unless a suite's plan says otherwise: WNLI's dev set is adversarial to its
#: training set (every model at or below the majority class), so pooling it measures that, not the method
NOT_COUNTED = {"wnli": "dev set adversarial to its training set: every model at or below the majority class"}


def not_counted(spec: dict[str, Any]) -> tuple[str, ...]:
    """The tasks a suite's pooled estimates leave out: its plan's ``excluded``, else the kit's :data:`NOT_COUNTED`."""
    excluded = (spec.get("plan") or {}).get("excluded")
    return tuple(NOT_COUNTED if excluded is None else excluded)


def pooled(rows: list[dict[str, Any]], exclude: tuple[str, ...] = ()) -> dict[str, dict[str, Any]]:
    """Per question: the random-effects pooled Δ across the tasks that share a headline metric (two or more tasks
    with a comparison; of several such groups, the largest, ties to the metric named first alphabetically).

    Each pool says its ``metric`` and the tasks it ``left_out`` for being scored in another metric: differences in
    points of accuracy, F1 and Matthews' correlation are not one unit, so they are never averaged together.
    """
    from .statistics import random_effects

    out = {}
    for question in dict.fromkeys(r["question"] for r in rows):
        asked = [r for r in rows if r["question"] == question and r["n"] >= 2 and r["task"] not in exclude]
        # a comparison with no spread at all (the same score on every seed) has no finite weight: named, not pooled
        flat = [f"{r['task']} (the same score on every seed)" for r in asked if not r["se"] > 0]
        items = [r for r in asked if r["se"] > 0]
        groups: dict[str, list[dict[str, Any]]] = {}
        for r in items:
            groups.setdefault(r.get("metric") or "", []).append(r)
        if not groups:
            continue
        metric = min(groups, key=lambda m: (-len(groups[m]), m))
        chosen = groups[metric]
        if len(chosen) >= 2:
            out[question] = {**random_effects([r["mean"] for r in chosen], [r["se"] for r in chosen]),
                             "tasks": [r["task"] for r in chosen], "metric": metric,
                             "left_out": [f"{r['task']} in {r.get('metric')}" for r in items if r not in chosen] + flat}
    return out


def pool_scope(pool: dict[str, Any]) -> str:
    """Which tasks a pooled estimate covers, in its metric, and which it leaves out for another metric."""
    out = (f"the {pool['metric']} tasks " if pool.get("metric") else "") + ", ".join(pool["tasks"])
    if pool.get("left_out"):
        out += f" ({', '.join(pool['left_out'])}: not pooled)"
    return out


def _pts(v: float | None, signed: bool = True) -> str:
    if v is None or not np.isfinite(v):
        return "–"
    return f"{100 * v:+.2f}" if signed else f"{100 * v:.2f}"


def _p(v: float | None) -> str:
    return "–" if v is None or not np.isfinite(v) else (f"{v:.3f}" if v >= 0.001 else "<0.001")


def _mcnemar_text(mc: list[dict[str, Any]] | None) -> str:
    if not mc:
        return ""
    sig = [m for m in mc if m["p"] < 0.05]
    up = sum(m["method_only"] > m["baseline_only"] for m in sig)
    return f"{len(sig)}/{len(mc)} seeds p<0.05 ({up} for the method, {len(sig) - up} against)"


#: the question a baseline's comparisons answer together, and how each method's arm is named in the answer
ANSWERS = {"ce": "Does minimising CMI give a better fine-tuned model than cross-entropy alone?",
           "kd_ce": "Does a CMI-maximised (MCMI) teacher give a better distilled student than a CE teacher?",
           "label_only": "Does the rationale task help (Distilling Step-by-Step − label-only)?",
           "dss": "Does the mutual-information term help (DSS + MI − DSS)?"}
ARM_WORDS = {"cmi": "with the kit's default settings", "cmi_tuned": "with settings chosen per task on held-out "
             "training data", "kd_mcmi": "from the MCMI teacher chosen by its student's held-out score",
             "dss_mi": "the released L_MI", "dss_mi_var": "the variational InfoNCE bound"}
#: what a passed mechanism check means, by the run it checks (a CMI-minimised model otherwise)
MECHANISM_WORDS = {"mcmi": "the teacher's CMI ended above its CE twin's",
                   "dss": "the rationale CE fell during training",
                   "dss_mi": "the rationale CE and the released L_MI fell during training",
                   "dss_mi_var": "the rationale CE fell and the InfoNCE bound ended above 0 and its start"}


def _arm_answer(rows: list[dict[str, Any]], pool: dict[str, Any] | None) -> str:
    """One arm's part of an answer: which tasks came out better or worse (Δ and interval), the rest, the
    smallest and largest MDE80, the pooled estimate and the mechanism checks."""
    done = [r for r in rows if r["n"] >= 2]
    # every seed's difference exactly 0: the arm changed nothing measurable, so no MDE speaks for these seeds
    same = [r for r in done if r.get("t") and r["t"].get("sd") == 0 and r["mean"] == 0]
    named = [f"{r['verdict']} on {r['task']} ({_pts(r['mean'])} points [{_pts(r['low'])}, {_pts(r['high'])}])"
             for r in done if r["verdict"] in ("better", "worse")]
    rest = [r["task"] for r in done if r["verdict"] not in ("better", "worse") and r not in same]
    if rest:
        named.append(f"no difference detected on {'any of ' if len(rest) == len(done) > 1 else ''}{', '.join(rest)}")
    if same:
        named.append(f"the same score as its baseline on every seed on {', '.join(r['task'] for r in same)}"
                     ", so no evidence either way")
    text = "; ".join(named) or "no comparison yet"
    notes = []
    mdes = [r["t"]["mde80"] for r in done if r.get("t") and r not in same]
    if mdes:
        low, high = min(mdes), max(mdes)
        notes.append(f"these seeds could detect about ±{_pts(low, False)}"
                     + (f" to ±{_pts(high, False)}" if high > low else "") + " points")
    if pool is not None:
        notes.append(f"pooled over {pool_scope(pool)}: {_pts(pool['mean'])} points [{_pts(pool['low'])}, "
                     f"{_pts(pool['high'])}], {pool['verdict']}")
    passed, checked = sum(r["mechanism"][0] for r in done), sum(r["mechanism"][1] for r in done)
    if checked:
        what = MECHANISM_WORDS.get(done[0]["mechanism_of"], "the model's CMI ended below its CE twin's")
        notes.append(f"{what} in {passed} of {checked} runs")
    return text + (f" ({'; '.join(notes)})" if notes else "")


def answers(rows: list[dict[str, Any]], pools: dict[str, dict[str, Any]], partial: bool = False) -> list[str]:
    """The suite's answer to each question of its family, one sentence each, from its verdict rows (Holm-adjusted
    verdicts) and pooled estimates; ``partial`` says so where the program is not complete."""
    lines = []
    for base in dict.fromkeys(r["baseline"] for r in rows):
        arms: dict[str, list[dict[str, Any]]] = {}
        for r in rows:
            if r["baseline"] == base:
                arms.setdefault(r["method"], []).append(r)
        said = [(f"{ARM_WORDS.get(m, m)}, " if len(arms) > 1 or m in ARM_WORDS else "")
                + _arm_answer(mine, pools.get(mine[0]["question"])) for m, mine in arms.items()]
        question = ANSWERS.get(base, f"{', '.join(arms)} against {base}?")
        lines.append(f"- **{question}** {'So far (partial): ' if partial else ''}"
                     f"{_capital('; '.join(said))}.")
    return lines


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def verdict_lines(rows: list[dict[str, Any]]) -> list[str]:
    """One README line per comparison: Δ, both intervals, raw and Holm p, verdict, MDE80, mechanism."""
    lines = []
    for r in rows:
        head = f"- {r['task']} ({r['metric']}), {r['question']}"
        if r["n"] < 2:
            lines.append(f"{head}: {r['n']} usable seed(s), no comparison"
                         + (f"; {r['left_out']} seed(s) flagged or missing" if r["left_out"] else "") + ".")
            continue
        t, boot = r["t"], r["boot"]
        ivals = f"seeds [{_pts(t['low'])}, {_pts(t['high'])}]"
        ivals += (f", seeds + examples [{_pts(boot['low'])}, {_pts(boot['high'])}]" if boot
                  else f", seeds + examples – ({r['predictions']}/{r['n']} seed pairs keep predictions)")
        test = "larger of paired t and bootstrap" if boot else "paired t"
        notes = [f"p {_p(r['p'])} ({test})" + (f", Holm {_p(r['p_holm'])}" if r.get("p_holm") is not None
                                      else ", uncorrected"), f"these seeds could detect about ±{_pts(t['mde80'], False)}"]
        passed, checked = r["mechanism"]
        whose = "teacher's " if r["mechanism_of"] != r["method"] else ""
        notes.append(f"{whose}mechanism {passed}/{checked}" if checked else f"{whose}mechanism unchecked")
        if r["mcnemar"]:
            notes.append("McNemar " + _mcnemar_text(r["mcnemar"]))
        if r["left_out"]:
            notes.append(f"{r['left_out']} seed(s) flagged or missing, left out")
        if r["legacy"]:
            notes.append("† records predate the checks")
        lines.append(f"{head}: {_pts(r['mean'])} points over {r['n']} seeds, {ivals}, **{r['verdict']}** "
                     f"({'; '.join(notes)}).")
    return lines


def family_table(rows: list[dict[str, Any]], pools: dict[str, dict[str, Any]]) -> list[str]:
    """The report's markdown table of the family, then the pooled estimates."""
    lines = ["| task (metric) | comparison | seeds | Δ | 95 % CI, seeds (paired t) | 95 % CI, seeds + examples "
             "(bootstrap) | used | p (larger of paired t and bootstrap) | p (Holm) | verdict | MDE80 | McNemar per seed "
             "| mechanism |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if r["n"] < 2:
            lines.append(f"| {r['task']} ({r['metric']}) | {r['question']} | {r['n']} | – | – | – | – | – | – | "
                         f"{r['verdict']} | – | – | – |")
            continue
        t, boot = r["t"], r["boot"]
        b = f"[{_pts(boot['low'])}, {_pts(boot['high'])}]" if boot else f"– ({r['predictions']}/{r['n']} with predictions)"
        passed, checked = r["mechanism"]
        lines.append(f"| {r['task']} ({r['metric']}) | {r['question']} | {r['n']} | {_pts(r['mean'])} | "
                     f"[{_pts(t['low'])}, {_pts(t['high'])}] | {b} | {r['used']} | {_p(r['p'])} | {_p(r['p_holm'])} | "
                     f"{r['verdict']}{' †' if r['legacy'] else ''} | {_pts(t['mde80'], False)} | "
                     f"{_mcnemar_text(r['mcnemar'])} | {f'{passed}/{checked}' if checked else 'unchecked'} |")
    for question, pool in pools.items():
        lines += ["", f"Pooled across {pool_scope(pool)} ({question}, random effects, DerSimonian–Laird): "
                  f"{_pts(pool['mean'])} points [{_pts(pool['low'])}, {_pts(pool['high'])}], p {_p(pool['p'])}, "
                  f"τ² {1e4 * pool['tau2']:.2f} points², I² {100 * pool['i2']:.0f} %, Cochran's Q p {_p(pool['q_p'])}: "
                  f"**{pool['verdict']}**."]
    return lines


def equivalence(spec: dict[str, Any], store, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A variant suite against its reference suite (``equivalence:`` section), per task and method.

    Pairs each record of the variant (``records``) with the reference suite's record of the same task,
    method and seed, and runs :func:`~cmi_toolkit.evidence.statistics.tost_paired` on the metric's differences with
    the declared margin; also the variant's mechanism checks and the median training time of both.
    """
    import statistics

    from ..runs.suites import load_suite, suite_records
    from .statistics import tost_paired

    conf = spec.get("equivalence")
    if not conf:
        return []
    ref_spec = load_suite(conf["reference_suite"])
    ref_records, _ = suite_records(store, ref_spec)
    ref = runs_by_task_method(ref_records)
    metric, margin = conf.get("metric", "accuracy"), float(conf["margin"])
    out = []
    for (task, method), runs in sorted(runs_by_task_method(records).items()):
        other = ref.get((task, method), {})
        seeds = sorted(set(runs) & set(other))
        if not seeds:
            continue
        d = [runs[s]["metrics"][metric] - other[s]["metrics"][metric] for s in seeds]
        mech = mechanism_results(runs[s] for s in seeds)
        t_var = statistics.median(runs[s]["timings"]["train_s"] for s in seeds)
        t_ref = statistics.median(other[s]["timings"]["train_s"] for s in seeds)
        out.append({"task": task, "method": method, "metric": metric, "seeds": seeds,
                    "tost": tost_paired(d, margin), "mechanism": (sum(mech), len(mech)),
                    "train_s": (t_var, t_ref), "reference_suite": conf["reference_suite"]})
    return out


def equivalence_lines(rows: list[dict[str, Any]]) -> list[str]:
    """Markdown table of :func:`equivalence`."""
    lines = ["| task | method | seeds | mean Δ (points) | 90 % CI | margin | TOST p | equivalent | mechanism | "
             "median training time, variant / reference |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        t = r["tost"]
        passed, checked = r["mechanism"]
        lines.append(f"| {r['task']} | {r['method']} | {len(r['seeds'])} | {_pts(t['mean'])} | "
                     f"[{_pts(t['low90'])}, {_pts(t['high90'])}] | ±{_pts(t['margin'], False)} | {_p(t['p'])} | "
                     f"{'yes' if t['equivalent'] else 'no'} | {f'{passed}/{checked}' if checked else '–'} | "
                     f"{r['train_s'][0]:.0f} s / {r['train_s'][1]:.0f} s |")
    return lines
