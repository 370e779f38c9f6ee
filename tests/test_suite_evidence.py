"""Suites as evidence: plans, arms from a search, per-example predictions in records, the family report."""

from __future__ import annotations

import json
import subprocess

import pytest
import yaml

from cmi_toolkit.data.predictions import confusion_counts, decode_predictions, metric_from_counts
from cmi_toolkit.evidence.verdicts import family, family_verdicts
from cmi_toolkit.runs.plan import plan_commit, plan_status
from cmi_toolkit.runs.search import search_file
from cmi_toolkit.runs.store import ResultStore
from cmi_toolkit.runs.suites import arm_runs, load_suite, suite_records

PLAN = {"hypotheses": ["H1"], "primary_metric": {"sst2": "accuracy"}, "seeds": {"start": 5, "max": 10},
        "stopping": "5 seeds"}


def test_a_malformed_plan_is_one_named_line(tmp_path):
    suite = tmp_path / "s.yaml"
    suite.write_text(yaml.safe_dump({"suite": "s", "seeds": [0], "tasks": {"sst2": {}}, "common": {},
                                     "plan": {**PLAN, "seeds": {"start": 5, "max": 3}}}))
    with pytest.raises(ValueError, match=r"s\.yaml: plan\.seeds: .*max must be >= seeds\.start"):
        load_suite(suite)
    suite.write_text(yaml.safe_dump({"suite": "s", "seeds": [0], "tasks": {"sst2": {}}, "common": {},
                                     "plan": {**PLAN, "stoping": "typo"}}))
    with pytest.raises(ValueError, match=r"plan\.stoping: Extra inputs"):
        load_suite(suite)


def _git(repo, *args):
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True,
                   env={"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
                        "GIT_COMMITTER_EMAIL": "t@t", "HOME": str(repo)})
    return subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()


def test_plan_commit_and_whether_it_precedes_the_runs(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    suite = repo / "suite.yaml"
    suite.write_text(yaml.safe_dump({"suite": "s", "seeds": [0], "tasks": {"sst2": {}}, "common": {}}))
    _git(repo, "add", "-A")
    before = _git(repo, "commit", "-qm", "suite without plan")
    spec = {"suite": "s", "seeds": [0], "tasks": {"sst2": {}}, "common": {}, "plan": PLAN}
    suite.write_text(yaml.safe_dump(spec))
    _git(repo, "add", "-A")
    planned = _git(repo, "commit", "-qm", "plan")
    (repo / "other").write_text("x")
    _git(repo, "add", "-A")
    after = _git(repo, "commit", "-qm", "later work")
    assert plan_commit(suite, repo) == planned
    records = [{"params": {"task": "sst2", "seed": 0}, "headline_metric": "accuracy", "provenance": {"commit": c}}
               for c in (before, after)]
    status = plan_status(spec, suite, records, repo)
    assert status["precedes"] == {"after_plan": 1, "before_plan": 1, "unknown": 0}
    # a run made again after the plan (identical metrics, to add its predictions) counts from its reproduction
    records[0]["reproduced"] = {"commit": after}
    assert plan_status(spec, suite, records, repo)["precedes"]["before_plan"] == 0
    # ... but not when it matched only up to kernel rounding on another instruction set
    records[0]["predictions_rounding_gap"] = 2e-6
    assert plan_status(spec, suite, records, repo)["precedes"]["before_plan"] == 1
    del records[0]["predictions_rounding_gap"]
    records.append({"params": {"task": "rte", "seed": 12}, "headline_metric": "accuracy", "provenance": {"commit": after}})
    devs = plan_status(spec, suite, records, repo)["deviations"]
    assert any("beyond the plan's maximum" in d for d in devs) and any("rte" in d for d in devs)
    assert not any("dirty tree" in d for d in devs)
    records[1]["provenance"]["dirty"] = True  # a run made from uncommitted changes is a deviation, counted
    status = plan_status(spec, suite, records, repo)
    assert status["dirty"] == 1 and any("1 of the 3 recorded runs were made from a dirty tree" in d
                                        for d in status["deviations"])


def test_the_stopping_rule_names_the_comparisons_over_their_target_and_adds_seeds_only_within_budget():
    from cmi_toolkit.runs.plan import parse_plan, stopping_lines

    plan = parse_plan({"plan": {**PLAN, "target_mde": {"default": 0.01, "cola": 0.03}}})

    def row(task, mde, n=5):
        return {"task": task, "question": "q", "n": n, "t": {"mde80": mde}}

    rows = [row("sst2", 0.004), row("cola", 0.038), row("rte", 0.037), row("mrpc", 0.02, n=10)]
    (line,) = stopping_lines({"plan": plan, "over_budget": False}, rows)
    assert "cola q (MDE80 3.80 > 3 points" in line and "rte q" in line and "adds seeds up to 10" in line
    assert "sst2" not in line and "mrpc" not in line  # within target; at the maximum of seeds
    (line,) = stopping_lines({"plan": plan, "over_budget": True}, rows)
    assert "over the budget, so the rule adds none" in line
    (line,) = stopping_lines({"plan": plan}, rows[:1])
    assert "no seeds to add" in line


def test_tuned_arm_follows_the_search_and_is_skipped_when_it_equals_the_defaults(tmp_path):
    spec = load_suite("cpu_verdict")
    tasks = ["rte"]
    assert not [a for _, _, a in arm_runs(spec, tasks, results_root=tmp_path) if a == "cmi_tuned"]  # no search yet
    path = search_file(spec, "rte", "minimiser", tmp_path)
    path.parent.mkdir(parents=True)
    winner = {"space": "feature", "temperature": 0.2, "cmi_weight": 0.3, "centroid_mode": "ema"}
    path.write_text(json.dumps({"winner": winner}))
    tuned = [c for _, c, a in arm_runs(spec, tasks, results_root=tmp_path) if a == "cmi_tuned"]
    assert len(tuned) == 5 and all(c.cmi_weight == 0.3 and c.temperature == 0.2 for c in tuned)
    # an arm's name selects that arm alone (as `reproduce --methods cmi_tuned`); a misspelt one is refused
    only = arm_runs(spec, tasks, methods=["cmi_tuned"], results_root=tmp_path)
    # (with the fp32 CE runs amendment 2 pairs RTE's tuned runs with)
    assert {a for _, _, a in only} == {"cmi_tuned", "ce (fp32 pair)"} and len(only) == 10
    with pytest.raises(ValueError, match="cmi_tund: not a method or arm"):
        arm_runs(spec, tasks, methods=["cmi_tund"], results_root=tmp_path)
    path.write_text(json.dumps({"winner": {**winner, "temperature": 0.1, "cmi_weight": 0.1}}))  # the defaults
    assert not [a for _, _, a in arm_runs(spec, tasks, results_root=tmp_path) if a == "cmi_tuned"]
    # distillation waits for the teacher search; a task's methods list is respected
    arms = {a for t, _, a in arm_runs(spec, ["sst2", "cola"], results_root=tmp_path)}
    assert "kd_mcmi" not in arms and "mcmi" not in arms and "kd_ce" in arms
    assert {a for t, _, a in arm_runs(spec, ["cola"], results_root=tmp_path)} == {"ce", "cmi"}
    assert family(spec, ["sst2", "cola", "wnli"]) == [("sst2", "cmi", "ce"), ("cola", "cmi", "ce"),
                                                      ("sst2", "cmi_tuned", "ce"), ("cola", "cmi_tuned", "ce"),
                                                      ("sst2", "kd_mcmi", "kd_ce")]


@pytest.mark.slow
def test_records_keep_predictions_that_reproduce_their_metrics(tmp_path, tiny_model_dir, glue_dir):
    """A suite run on a tiny model: every record keeps per-example predictions whose confusion counts give
    the record's headline metric exactly, and the family report shows both intervals and Holm's p."""
    from cmi_toolkit.cli import main

    suite = tmp_path / "tiny.yaml"
    suite.write_text(yaml.safe_dump({
        "suite": "tiny", "seeds": [0, 1], "finetune_methods": ["ce", "cmi"], "distill_methods": [],
        "common": {"model": str(tiny_model_dir), "epochs": 1, "max_train_samples": 64, "max_eval_samples": 48},
        "tasks": {"mrpc": {}}, "plan": {**PLAN, "primary_metric": {"mrpc": "f1"}, "seeds": {"start": 2, "max": 2}}}))
    assert main(["reproduce", "--suite", str(suite), "--glue_dir", str(glue_dir), "--results_dir",
                 str(tmp_path / "res"), "--figures_dir", str(tmp_path / "figs")]) == 0
    store = ResultStore(tmp_path / "res")
    records, _ = suite_records(store, load_suite(suite))
    assert len(records) == 4
    for r in records:
        p = decode_predictions(r)
        assert len(p) == r["eval_samples"] == 48
        counts = confusion_counts(p.labels, p.pred, 2)
        assert metric_from_counts("f1", counts) == pytest.approx(r["metrics"]["f1"], abs=1e-12)
    for r in records:  # a tiny random model may be flagged degenerate; the statistics are what is tested here
        r["checks"]["flags"] = []
    (row,) = family_verdicts(records, load_suite(suite))
    assert row["boot"] is not None and row["mcnemar"] is not None and row["p_holm"] == pytest.approx(row["p"])
    assert len(row["mcnemar"]) == 2 and row["boot"]["examples"] == 48
    md = (tmp_path / "res" / "summary_tiny.md").read_text()
    assert "seeds + examples" in md and "p (Holm)" in md and "Plan (from the suite file" in md


@pytest.mark.slow
def test_a_suite_search_writes_its_winner_and_the_tuned_arm_uses_it(tmp_path, tiny_model_dir, glue_dir, monkeypatch):
    """The winner's path, end to end. The tiny random model learns nothing in these few steps, so every run is
    flagged and a real search would stop (test_search pins that); here the flags are taken as healthy."""
    from cmi_toolkit.cli import main
    from cmi_toolkit.runs import search as S

    monkeypatch.setattr(S, "search_informative", lambda result, store: True)

    suite = tmp_path / "tiny.yaml"
    suite.write_text(yaml.safe_dump({
        "suite": "tinys", "seeds": [0, 1], "finetune_methods": ["ce", "cmi"], "distill_methods": [],
        "common": {"model": str(tiny_model_dir), "epochs": 1, "max_train_samples": 60, "max_eval_samples": 16},
        "tasks": {"sst2": {}}, "arms": [{"name": "cmi_tuned", "method": "cmi", "settings": "search"}],
        "search": {"minimiser": {"grid": {"space": ["feature"], "temperature": [0.2, 1.0], "cmi_weight": [0.3],
                                          "centroid_mode": ["ema"]},
                                 "rungs": [[1, [0]], [2, [0, 1]]], "eta": 2}}}))
    assert main(["search", "--suite", str(suite), "--kind", "minimiser", "--glue_dir", str(glue_dir),
                 "--results_dir", str(tmp_path / "res")]) == 0
    result = json.loads((tmp_path / "res" / "search" / "tinys" / "sst2_minimiser.json").read_text())
    assert [r["pruned"] for r in result["table"]].count(True) == 1  # 2 candidates, eta 2: one goes on
    survivor = next(r for r in result["table"] if not r["pruned"])
    assert survivor["budget"] == 2 and len(survivor["gains"]) == 2
    assert all(r["measured_with"]["split"] == "heldout" for r in ResultStore(tmp_path / "res" / "search").all_records())
    tuned = [c for _, c, a in arm_runs(load_suite(suite), results_root=tmp_path / "res") if a == "cmi_tuned"]
    assert {c.temperature for c in tuned} == {result["winner"]["temperature"]} and len(tuned) == 2


@pytest.mark.slow
def test_predictions_are_added_from_a_kept_model_without_retraining(tmp_path, tiny_model_dir):
    """An older record without predictions gets them from its kept model, exactly those the run would have
    recorded; a record whose metrics the model no longer reproduces is left alone, saying why."""
    from cmi_toolkit.runs.execute import add_predictions, execute

    from .test_training import _cfg, _easy_sst2

    glue = str(_easy_sst2(tmp_path / "glue"))
    store = ResultStore(tmp_path / "res")
    rec = execute(_cfg(tiny_model_dir, method="ce"), store, glue_dir=glue, progress=False)  # CE keeps its model
    original = rec.pop("predictions")
    store.save(rec["key"], rec)
    assert add_predictions(store.load(rec["key"]), store, glue) == "added from the kept model"
    again = store.load(rec["key"])
    assert again["predictions"] == original and again["predictions_source"] == "kept model"
    damaged = {**again, "metrics": {**again["metrics"], "accuracy": 0.123}}
    damaged.pop("predictions")
    assert add_predictions(damaged, store, glue).startswith("metrics ['accuracy'] differ")


@pytest.mark.slow
def test_predictions_of_a_run_trained_again_are_added_only_when_they_are_the_records(tmp_path, tiny_model_dir):
    """--retrain on another instruction set: an fp32 run trained again whose accuracy is identical and whose CMIs
    moved only by kernel rounding (1e-7 relative) gives the record its predictions, naming the gap; CMIs 1 %
    off, or predictions that do not give the record's headline metric, add nothing."""
    import shutil

    from cmi_toolkit.runs.execute import _scored_from_block, add_predictions, execute

    from .test_training import _cfg, _easy_sst2

    glue = str(_easy_sst2(tmp_path / "glue"))
    store = ResultStore(tmp_path / "res")
    rec = execute(_cfg(tiny_model_dir, method="ce"), store, glue_dir=glue, progress=False)
    shutil.rmtree(store.root / "models" / rec["key"])  # no kept model: only training it again can help
    original = rec.pop("predictions")
    metrics = rec["metrics"]
    scratch = ResultStore(tmp_path / "scratch")
    off = {**rec, "metrics": {**metrics, "feature_cmi": metrics["feature_cmi"] * 1.01}}
    assert add_predictions(off, store, glue, scratch).startswith("metrics ['feature_cmi'] differ")
    assert "predictions" not in off
    rounded = {**rec, "metrics": {**metrics, "feature_cmi": metrics["feature_cmi"] * (1 + 1e-7)}}
    said = add_predictions(rounded, store, glue, scratch)
    assert said.startswith("added from the retrained on") and "feature_cmi within 1.0e-07" in said, said
    kept = store.load(rec["key"])
    assert kept["predictions"] == original and kept["predictions_rounding_gap"] == pytest.approx(1e-7, rel=1e-3)
    assert not (store.root / "models" / rec["key"]).exists()  # not the record's model to the digit: not kept
    assert _scored_from_block(original, "accuracy", rec) is None
    flipped = {**original, "pred": ("1" if original["pred"][0] == "0" else "0") + original["pred"][1:]}
    assert _scored_from_block(flipped, "accuracy", rec) is not None


def _fp32_spec(**fp32):
    """A suite in bf16 whose amendment moves some runs (``fp32``) to fp32."""
    from cmi_toolkit.runs.suite_schema import validate_suite

    spec = {"suite": "amended", "seeds": [0, 1, 2], "finetune_methods": ["ce", "cmi", "mcmi"],
            "distill_methods": ["student", "kd_ce", "kd_mcmi"], "common": {"bf16": True, "epochs": 1},
            "teacher": {"space": "output", "temperature": 1.0, "cmi_weight": 0.1, "centroid_mode": "fixed"},
            "tasks": {"mrpc": {}, "rte": {}},
            "family": [{"method": "cmi", "baseline": "ce", "tasks": ["mrpc", "rte"]},
                       {"method": "kd_mcmi", "baseline": "kd_ce", "tasks": ["mrpc"]}],
            "amendments": [{"date": "d", "before": "b", "why": "w", "change": "c", "fp32": fp32}]}
    validate_suite(spec)
    return spec


def test_an_amendment_moves_only_its_listed_runs_to_fp32_and_pairs_them_at_their_precision():
    from cmi_toolkit.runs.config import dependencies
    from cmi_toolkit.runs.suites import suite_runs

    plain = _fp32_spec()
    spec = _fp32_spec(runs=[{"tasks": ["mrpc"], "arms": ["cmi", "mcmi", "kd_mcmi"], "seeds": [1, 2]}])
    before = {(t, a, c.seed): c for t, c, a in arm_runs(plain)}
    after = {(t, a, c.seed): c for t, c, a in arm_runs(spec)}
    moved = {k for k, c in after.items() if not c.bf16}
    assert {k for k in moved if "pair" not in k[1]} == {("mrpc", m, s) for m in ("cmi", "mcmi", "kd_mcmi")
                                                                for s in (1, 2)}
    for k, c in before.items():  # every other run keeps its key (its record stays the suite's)
        assert (after[k].key == c.key) is (k not in moved)
    pairs = sorted(k for k in after if k not in before)
    assert pairs == sorted(("mrpc", f"{b} (fp32 pair)", s) for b in ("ce", "kd_ce") for s in (1, 2))
    assert all(not after[k].bf16 and after[k].method == k[1].split()[0] for k in pairs)
    # the fp32 CE pair is the fp32 runs' mechanism twin and the kd_ce pair's teacher: nothing else is trained
    keys = {c.key for c in after.values()}
    assert all(d.key in keys for c in after.values() for d in dependencies(c) if not c.bf16)
    assert len(suite_runs(spec, with_dependencies=True)) == len(suite_runs(spec)) + len(
        {d.key for c in after.values() if c.bf16 for d in dependencies(c)} - keys)
    with pytest.raises(ValueError, match="seeds"):
        _fp32_spec(runs=[{"tasks": ["mrpc"], "arms": ["cmi"]}])


def _rec(task, method, seed, acc, bf16, arm=None):
    r = {"key": f"{task}-{arm or method}-{seed}-{bf16}", "headline_metric": "accuracy", "metrics": {"accuracy": acc, "feature_cmi": 0.1, "feature_ncmi": 0.1},
         "checks": {"flags": []}, "params": {"task": task, "method": method, "seed": seed, **({"bf16": True} if bf16 else {})}}
    return {**r, "arm": arm} if arm else r


def test_a_comparison_pairs_each_seed_with_the_baseline_of_its_precision():
    spec = _fp32_spec(runs=[{"tasks": ["rte"], "arms": ["cmi"], "seeds": [2]}])
    records = [_rec("rte", "ce", s, 0.60, True) for s in (0, 1, 2)]
    records += [_rec("rte", "cmi", 0, 0.62, True), _rec("rte", "cmi", 1, 0.61, True), _rec("rte", "cmi", 2, 0.55, False)]
    (row,) = family_verdicts(records, spec)
    assert row["seeds"] == [0, 1] and row["left_out"] == 1  # no fp32 CE: seed 2 is not paired across precisions
    records.append(_rec("rte", "ce", 2, 0.52, False, arm="ce (fp32 pair)"))
    (row,) = family_verdicts(records, spec)
    assert row["seeds"] == [0, 1, 2] and row["mean"] == pytest.approx((0.02 + 0.01 + 0.03) / 3)
    from cmi_toolkit.evidence.report import summarise, summary_table

    rows = summarise(records)
    cmi = next(r for r in rows if r["method"] == "cmi")
    assert cmi["seed_wins"] == "3/3" and cmi["diff_mean"] == pytest.approx(0.02)
    assert any("CE fine-tuning (fp32, paired baseline)" in line for line in summary_table(rows))


def test_one_comparison_stands_alone_uncorrected_and_says_so():
    from cmi_toolkit.evidence.verdicts import one_comparison, verdict_lines

    records = [_rec("sst2", "kd_ce", s, 0.70, False) for s in range(4)]
    records += [_rec("sst2", "kd_mcmi", s, 0.70 + d, False) for s, d in enumerate((0.02, 0.03, 0.025, 0.035))]
    row = one_comparison(records, "sst2", "kd_mcmi", "kd_ce", resamples=200)
    assert row["n"] == 4 and row["mean"] == pytest.approx(0.0275) and row["low"] > 0
    assert row["verdict"] == "better" and row["p_holm"] is None  # no family, no multiplicity correction
    (line,) = verdict_lines([row])
    assert "uncorrected" in line and "Holm" not in line and "**better**" in line
    flat = [_rec("sst2", "kd_mcmi", s, 0.70 + d, False) for s, d in enumerate((0.02, -0.03, 0.01, -0.01))]
    assert one_comparison(records[:4] + flat, "sst2", "kd_mcmi", "kd_ce")["verdict"] == "no difference detected"
    assert one_comparison(records[:4], "sst2", "kd_mcmi", "kd_ce") is None  # one side has no runs
