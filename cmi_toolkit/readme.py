"""README tables generated from run records, never typed.

The README marks each generated table with an HTML comment naming its source,

    <!-- table: glue cpu -->              the summary table of GLUE suite ``cpu`` (results/)
    <!-- table: cot cqa gpu -->           the CoT table of preset ``gpu`` on CQA (results/cot/)
    <!-- table: cot cqa gpu mask_padding=false -->   ... with an override
    <!-- table: presets cola -->          CE presets of a task scored on held-out training data (results/presets/)
    <!-- table: lab -->                   the course's cached lab sweep (results/lab/, notebook 01)
    <!-- table: bench -->                 one row per benchmark record (results/bench/, written by benchmarks/)
    <!-- table: bench fanout -->          the row of one benchmark's record
    <!-- table: exercises -->             the course's exercises, what each asks and the mistakes its hints recognise
    <!-- table: verdict cpu5 -->          one line per task and question of GLUE suite ``cpu5``: the paired answer
    <!-- table: answer cot_verdict -->    one sentence per question of a suite (GLUE, or chain-of-thought when its
                                          file says ``kind: cot``) from its Holm-adjusted verdicts

followed by the table and closed by ``<!-- /table -->``. :func:`update` rewrites every block from
the records; ``check=True`` only compares and lists the blocks that differ (the test suite does this).

Layer: above the course (it reads every layer's results: GLUE suites, CoT, the lab), below the CLI; only
:mod:`cmi_toolkit.cli` imports it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from . import defaults as D

__all__ = ["render", "update", "BLOCK"]

BLOCK = re.compile(r"(<!-- table: (?P<spec>[^>]*?) -->\n)(?P<body>.*?)(<!-- /table -->)", re.DOTALL)
REPO = D.REPO_ROOT


def _value(text: str) -> Any:
    import yaml

    return yaml.safe_load(text)


def _cot_suite(name: str) -> bool:
    """Whether suite ``name``'s file declares ``kind: cot`` (a chain-of-thought suite)."""
    import yaml

    from .runs.suites import SUITE_DIR

    path = SUITE_DIR / name / "suite.yaml"
    return path.is_file() and (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("kind") == "cot"


def render(spec: str, root: str | Path = REPO) -> str:
    """The table text of one block (``spec`` as written after ``table:``)."""
    from .runs.store import ResultStore

    words = spec.split()
    root = Path(root)
    if words[0] == "glue" and len(words) == 2:
        from .evidence.report import _pct, caveats, summarise, summary_table
        from .runs.suites import load_suite, suite_records

        records, _ = suite_records(ResultStore(root / "results"), load_suite(words[1]))
        rows = summarise(records)
        lines = summary_table(rows)
        majority = {r["task"]: r["majority"] for r in rows if r["majority"] is not None}
        if majority:
            lines += ["", "Majority-class score (always the training set's majority class): "
                      + ", ".join(f"{t} {_pct(v)}" for t, v in sorted(majority.items())) + "."]
        return "\n".join(lines + caveats(rows))
    if words[0] == "cot" and len(words) >= 3:
        from .cot import cot_table
        from .cot.runs import preset_records

        overrides = dict(w.split("=", 1) for w in words[3:])
        overrides = {k: _value(v) for k, v in overrides.items()}
        records = preset_records(ResultStore(root / "results" / "cot").all_records(), words[1], words[2], overrides)
        if not records:
            raise ValueError(f"README block 'table: {spec}': no records in {root / 'results' / 'cot'}")
        return cot_table(records)
    if words[0] == "presets" and len(words) == 2:
        return _presets(ResultStore(root / "results" / "presets").all_records(), words[1])
    if words == ["lab"]:
        return _lab(root / "results" / "lab")
    if words[0] == "verdict" and len(words) == 2:
        from .runs.suites import load_suite, suite_records

        spec = load_suite(words[1])
        records, _ = suite_records(ResultStore(root / "results"), spec)
        return _verdicts(records, spec)
    if words[0] == "answer" and len(words) == 2 and _cot_suite(words[1]):
        from .cot.suite import cot_verdict, load_cot_suite

        spec = load_cot_suite(words[1])
        found = cot_verdict(spec, results_dir=root / spec["results_dir"])
        records, missing, lines = found["records"], found["missing"], found["answers"]
        if not records:
            return f"- No run of suite {words[1]} is recorded yet: `cmi-toolkit cot --suite {words[1]}` runs its plan."
        if missing:
            lines.append(f"- {len(records)} of {len(records) + len(missing)} planned runs recorded; "
                         f"`cmi-toolkit cot --suite {words[1]}` resumes the plan.")
        return "\n".join(lines)
    if words[0] == "answer" and len(words) == 2:
        from .evidence.verdicts import answers, family_verdicts, not_counted, pooled
        from .runs.suites import load_suite, suite_records

        spec = load_suite(words[1])
        records, _ = suite_records(ResultStore(root / "results"), spec)
        rows = family_verdicts(records, spec)
        _, complete = _progress(records, spec, root)
        return "\n".join(answers(rows, pooled(rows, exclude=not_counted(spec)), partial=not complete))
    if words[0] == "equivalence" and len(words) == 2:
        from .evidence.verdicts import equivalence, equivalence_lines
        from .runs.suites import load_suite, suite_records

        spec = load_suite(words[1])
        store = ResultStore(root / "results")
        records, _ = suite_records(store, spec)
        return "\n".join(equivalence_lines(equivalence(spec, store, records)))
    if words == ["exercises"]:
        return _exercises()
    if words[0] == "bench" and len(words) <= 2:
        return _bench(root / "results" / "bench", words[1] if len(words) == 2 else None)
    if words[0] == "search" and len(words) == 3:
        import json

        from .runs.search import search_file, search_table
        from .runs.suites import load_suite

        spec = load_suite(words[1])
        found = [search_file(spec, t, words[2], root / "results") for t in spec["tasks"]]
        store = ResultStore(root / "results" / "search")
        parts = ["\n".join(search_table(json.loads(p.read_text(encoding="utf-8")), store)) for p in found if p.is_file()]
        return "\n\n".join(parts) if parts else f"- no {words[2]} search of suite {words[1]} has finished yet."
    raise ValueError(f"README block 'table: {spec}': expected 'glue SUITE', 'verdict SUITE', 'answer SUITE', "
                     "'equivalence SUITE', "
                     "'search SUITE KIND', 'presets TASK', 'lab', 'bench [NAME]', 'exercises' or "
                     "'cot DATASET PRESET [key=value ...]'")


def _verdicts(records: list[dict[str, Any]], spec: dict[str, Any]) -> str:
    """One line per comparison of the suite's family (:mod:`cmi_toolkit.evidence.verdicts`), then the pooled estimates."""
    from .evidence.verdicts import _p, _pts, family_verdicts, not_counted, pool_scope, pooled, verdict_lines

    rows = family_verdicts(records, spec)
    lines = _progress(records, spec)[0] + verdict_lines(rows)
    pools = pooled(rows, exclude=not_counted(spec))
    for question, pool in pools.items():
        lines.append(f"- pooled over {pool_scope(pool)}; {question} (random effects): {_pts(pool['mean'])} "
                     f"points [{_pts(pool['low'])}, {_pts(pool['high'])}], p {_p(pool['p'])}, I² "
                     f"{100 * pool['i2']:.0f} %, **{pool['verdict']}**.")
    return "\n".join(lines) if lines else "- no comparison in these records yet."


def _progress(records: list[dict[str, Any]], spec: dict[str, Any], root: Path = REPO) -> tuple[list[str], bool]:
    """For a planned suite: how much of its program is recorded (a partial table says it is partial), and
    whether all of it is."""
    if not spec.get("plan"):
        return [], True
    from .runs.search import search_file
    from .runs.suites import suite_runs

    planned = suite_runs(spec, with_dependencies=True, results_root=root / "results")
    from .runs.store import record_store_key

    have = {record_store_key(r) for r in records}
    done = sum(cfg.store_key() in have for cfg in planned) if planned else 0
    searches, all_searched = [], True
    for kind, conf in (spec.get("search") or {}).items():
        if isinstance(conf, dict):
            tasks = conf.get("tasks") or list(spec["tasks"])
            finished = [t for t in tasks if search_file(spec, t, kind, root / "results").is_file()]
            searches.append(f"{kind} search {len(finished)}/{len(tasks)} tasks")
            all_searched &= len(finished) == len(tasks)
    from .runs.search import UNINFORMATIVE, uninformative_searches

    blind = uninformative_searches(spec, root / "results")
    from .runs.plan import plan_status

    status = plan_status(spec, spec.get("_file"), records)
    pre = status["precedes"]
    before = f"; {pre['before_plan']} of the recorded runs were made before the plan's commit" \
        if pre and pre["before_plan"] else ""
    if status.get("dirty"):
        before += f"; {status['dirty']} were made from a dirty tree (a deviation)"
    complete = done == len(planned) and all_searched
    return ([f"- status: {done} of the {len(planned)} runs planned so far are recorded"
            + (f"; {', '.join(searches)}" if searches else "") + before
            + ("" if complete else " — **partial**: the lines below use what is recorded, and runs that wait for a "
               "search are not yet planned") + "."] + ([
        f"- uninformative searches: {', '.join(blind)}: {UNINFORMATIVE}."] if blind else [])), complete


def _lab(results_dir: Path) -> str:
    """The lab sweep of notebook 01: per lambda, accuracy and CMI over seeds, the paired accuracy change
    against CE, mechanism checks and flags; the majority class and the measured training time below."""
    import statistics

    from .course.lab import sweep, timing
    from .evidence.statistics import paired_comparison

    rows, missing = sweep(results_dir=results_dir, train=False, progress=False)
    if missing or not rows:
        raise ValueError(f"README block 'table: lab': {len(missing)} lab runs missing in {results_dir}; "
                         "run `make lab-cache` (or point CMI_TOOLKIT_GLUE_DIR at the GLUE folder they were run on)")
    by_lam: dict[float, dict[int, dict[str, Any]]] = {}
    for r in rows:
        by_lam.setdefault(r["lambda"], {})[r["seed"]] = r
    ce = by_lam[0.0]
    lines = ["| λ | seeds | dev accuracy (mean ± sd) | Δ accuracy vs CE [95 % CI] | verdict | feature CMI (mean ± sd) "
             "| CMI below its CE twin | flagged |", "|---|---|---|---|---|---|---|---|"]
    for lam, runs in sorted(by_lam.items()):
        seeds = sorted(runs)
        acc = [100 * runs[s]["accuracy"] for s in seeds]
        cmi = [runs[s]["cmi"] for s in seeds]
        if lam > 0:
            c = paired_comparison(acc, [100 * ce[s]["accuracy"] for s in seeds])
            delta, word = f"{c['mean']:+.2f} [{c['low']:+.2f}, {c['high']:+.2f}]", c["verdict"]
            mech = f"{sum(runs[s]['mechanism_passed'] is True for s in seeds)}/{len(seeds)}"
        else:
            delta, word, mech = "(baseline)", "", ""
        lines.append(f"| {lam:g} | {len(seeds)} | {statistics.mean(acc):.2f} ± {statistics.stdev(acc):.2f} | {delta} "
                     f"| {word} | {statistics.mean(cmi):.3f} ± {statistics.stdev(cmi):.3f} | {mech} "
                     f"| {sum(bool(runs[s]['flags']) for s in seeds)} |")
    t = timing(rows)
    lines += ["", f"Lab preset: {D.LAB_PRESET['task']}, {D.LAB_PRESET['max_train_samples']:,} training examples, "
              f"{D.LAB_PRESET['epochs']} epochs, full dev set. Majority class: {100 * rows[0]['majority']:.2f} %. "
              f"Median training time per model: {t['median_train_s']:.0f} s ({'; '.join(t['machines'])})."]
    return "\n".join(lines)


def _exercises() -> str:
    """The instructor's table of every exercise: its module, what the student writes, and each mistake its check
    recognises with the hint it shows (from the exercises' catalogue, so the guide cannot drift from the checks)."""
    from .course.exercises import EXERCISES

    def cell(text: str) -> str:
        return text.replace("|", "\\|").replace("\n", " ")

    lines = ["| module | exercise | the student writes | mistakes the check recognises, with the hint it shows |",
             "|---|---|---|---|"]
    for name, ex in sorted(EXERCISES.items(), key=lambda kv: (kv[1].notebook, kv[0])):
        mistakes = "<br>".join(f"*{m.replace('_', ' ')}*: {cell(x.hint)}" for m, x in ex.mistakes.items())
        lines.append(f"| {ex.notebook} | `{name}` | {cell(ex.task)} | {mistakes or '–'} |")
    return "\n".join(lines)


def _bench(folder: Path, only: str | None = None) -> str:
    """One row per benchmark record (``only``: that benchmark's): what it measured, its numbers, its target and
    whether it was met, and the machine, load, date and commit it ran on (a dirty tree is said)."""
    import json

    paths = sorted(folder.glob("*.json")) if only is None else [p for p in [folder / f"{only}.json"] if p.is_file()]
    if not paths:
        return ("- no benchmark has written a record yet: `make bench` runs them." if only is None else
                f"- `{only}` has written no record yet: `python benchmarks/bench_{only}.py` runs it.")
    lines = ["| benchmark | what it measures | results | target | met | machine (load at start), date, commit |",
             "|---|---|---|---|---|---|"]
    for path in paths:
        r = json.loads(path.read_text(encoding="utf-8"))
        res, t, m = r["results"], r["target"], r["machine"]
        value = res[t["result"]]
        met = value <= t["bound"] if t["op"] == "<=" else value >= t["bound"]
        shown = ", ".join(f"{k.replace('_', ' ')} **{v:.3g}**" if k == t["result"] else f"{k.replace('_', ' ')} {v:.3g}"
                          for k, v in res.items())
        commit = (r.get("commit") or "?")[:7] + (" (dirty tree)" if r.get("dirty") else "")
        machine = (f"{m['cpu']} {m.get('cpu_capability', '?')}, {m['cores']} cores, {m['threads']} threads "
                   f"(load {m['load_at_start']:g})")
        lines.append(f"| `{r['benchmark']}` | {r['what']} | {shown} | {t['result'].replace('_', ' ')} {t['op']} "
                     f"{t['bound']:g} | {'yes' if met else '**no**'} | {machine}, {r['date']}, {commit} |")
    return "\n".join(lines)


def _presets(records: list[dict[str, Any]], task: str) -> str:
    """One row per CE preset tried on held-out training data: its score, prediction share and flags."""
    from .data.tasks import get_task

    task = get_task(task).hub_config
    rows = sorted((r for r in records if r["params"]["task"] == task and r["measured_with"]["split"] == "heldout"),
                  key=lambda r: (str(r["params"]["max_train_samples"]), r["params"]["epochs"], r["params"]["learning_rate"]))
    if not rows:
        raise ValueError(f"README block 'table: presets {task}': no held-out records of {task} in results/presets")
    lines = ["| training examples | epochs | lr | seed | held-out " + rows[0]["headline_metric"] + " | majority-class share "
             "of predictions | flags |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        p, m = r["params"], r["metrics"]
        n = "all" if p["max_train_samples"] is None else f"{p['max_train_samples']:,}"
        lines.append(f"| {n} | {p['epochs']:g} | {p['learning_rate']:g} | {p['seed']} | {m[r['headline_metric']]:.3f} | "
                     f"{100 * m['majority_prediction_share']:.1f} % | {', '.join(r['checks']['flags']) or 'none'} |")
    return "\n".join(lines)


OPENER = re.compile(r"<!-- table: [^>]*? -->")
CLOSER = "<!-- /table -->"


def check_blocks(text: str, path: str | Path) -> None:
    """ValueError naming the line of a block opened and never closed (or closed twice): such a block would
    otherwise be skipped by the regeneration and pass ``--check`` unseen."""
    open_line = None
    for number, line in enumerate(text.splitlines(), start=1):
        if OPENER.search(line):
            if open_line is not None:
                raise ValueError(f"{path}, line {open_line}: generated block is not closed before the next one opens "
                                 f"(line {number}); add {CLOSER} after its table")
            open_line = number
        elif line.strip() == CLOSER:
            if open_line is None:
                raise ValueError(f"{path}, line {number}: {CLOSER} closes no block; remove it")
            open_line = None
    if open_line is not None:
        raise ValueError(f"{path}, line {open_line}: generated block is never closed; add {CLOSER} after its table")


def update(path: str | Path, check: bool = False, root: str | Path = REPO) -> list[str]:
    """Regenerate every table block of ``path``; returns the specs whose text changed (or would change)."""
    from .files import atomic_write_text

    path = Path(path)
    text = path.read_text(encoding="utf-8")
    changed: list[str] = []
    check_blocks(text, path)

    def replace(m: re.Match) -> str:
        body = render(m.group("spec"), root) + "\n"
        if body != m.group("body"):
            changed.append(m.group("spec"))
        return m.group(1) + body + m.group(4)

    new = BLOCK.sub(replace, text)
    if not check and new != text:
        atomic_write_text(path, new)
    return changed
