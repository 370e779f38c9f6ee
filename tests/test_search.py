"""The held-out settings search: Optuna grid + successive halving, a stated rule, no dev data."""

import math

import pytest

from cmi_toolkit.runs.config import RunConfig
from cmi_toolkit.runs.search import candidates, search_settings
from cmi_toolkit.runs.store import ResultStore

from .test_training import _easy_sst2


def test_candidates_cover_the_grid():
    from cmi_toolkit.runs.search import GRID

    cands = candidates(GRID)
    assert len(cands) == 2 * 4 * 4 * 2 and len({tuple(sorted(c.items())) for c in cands}) == len(cands)
    assert {0.03, 0.1, 0.3, 1.0} == {c["cmi_weight"] for c in cands} and {"ema", "epoch"} == {c["centroid_mode"] for c in cands}


def test_search_picks_by_the_rule_on_heldout_data(tmp_path, tiny_model_dir):
    glue = _easy_sst2(tmp_path / "glue", n=40)
    base = RunConfig(task="sst2", model=str(tiny_model_dir), max_train_samples=None, batch_size=8, learning_rate=3e-3,
                     warmup_ratio=0.0)
    grid = {"space": ["output"], "temperature": [1.0], "cmi_weight": [0.03, 1.0], "centroid_mode": ["fixed"]}
    store = ResultStore(tmp_path / "search")
    out = search_settings(base, store, grid, seeds=(0, 1, 2), budgets=(1, 2), glue_dir=str(glue), progress=False)
    table = out["table"]
    assert len(table) == 2 and "smaller lambda" in out["rule"]
    full = [r for r in table if not r["pruned"]]
    assert all(r["budget"] == 2 and len(r["gains"]) == 3 for r in full)
    assert all(r["budget"] == 1 for r in table if r["pruned"])
    best = max(r["gain"] for r in full)
    expected = min((r for r in full if r["gain"] >= best - 0.001), key=lambda r: r["cmi_weight"])
    assert out["winner"]["cmi_weight"] == expected["cmi_weight"]
    for r in full:
        assert r["gain"] == pytest.approx(sum(r["gains"]) / 3)
    records = store.all_records()
    assert records and all(r["measured_with"]["split"] == "heldout" for r in records)  # the dev set never scored
    assert {r["params"]["seed"] for r in records} == {0, 1, 2}


def test_search_needs_three_seeds(tmp_path):
    with pytest.raises(ValueError, match="at least 3 seeds"):
        search_settings(RunConfig(), ResultStore(tmp_path), seeds=(0, 1))


def test_teacher_search_refuses_a_teacher_that_fails_its_mechanism(tmp_path, tiny_model_dir, monkeypatch):
    import cmi_toolkit.runs.search as search

    calls = []

    def fake_execute(cfg, store, glue_dir=None, progress=True):
        calls.append(cfg.method)
        return {"checks": {"mechanism": {"passed": False}}, "metrics": {"accuracy": 0.9}, "headline_metric": "accuracy"}

    monkeypatch.setattr(search, "execute", fake_execute)
    value, gains = search._objective_value(RunConfig(model=str(tiny_model_dir)), {"cmi_weight": 0.2}, "teacher", 1,
                                           (0, 1, 2), ResultStore(tmp_path), None)
    assert value == -math.inf and calls == ["mcmi"]  # no student is distilled from a failed teacher


def test_search_command_prints_and_writes_the_table(tmp_path, tiny_model_dir, capsys):
    from cmi_toolkit.cli import main

    glue = _easy_sst2(tmp_path / "glue", n=24)
    grid = tmp_path / "grid.yaml"
    grid.write_text("space: [output]\ntemperature: [1.0]\ncmi_weight: [0.3]\ncentroid_mode: [fixed]\n")
    argv = ["search", "--task", "sst2", "--model", str(tiny_model_dir), "--max_train_samples", "24", "--batch_size", "8",
            "--grid", str(grid), "--budgets", "1", "--glue_dir", str(glue), "--results_dir", str(tmp_path / "s")]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "| output | 1 | 0.3 | fixed | 1 |" in out and "winner: space=output" in out
    assert (tmp_path / "s" / "search_sst2_minimiser.md").read_text().startswith("Held-out settings search")


def test_a_teacher_search_through_the_engine_chooses_as_the_serial_search(tmp_path, tiny_model_dir):
    """Batched rungs (teachers first, then the students of teachers that passed) give the serial search's table."""
    from cmi_toolkit.runs.engine import EngineArgs
    from cmi_toolkit.runs.search import successive_halving

    glue = _easy_sst2(tmp_path / "glue", n=24)
    base = RunConfig(task="sst2", model=str(tiny_model_dir), max_train_samples=None, batch_size=8, learning_rate=3e-3,
                     warmup_ratio=0.0, student_layers="0")
    cands = [{"space": "output", "temperature": 1.0, "cmi_weight": 0.3, "centroid_mode": "fixed"}]
    out = {}
    for name, engine in (("serial", None), ("batched", EngineArgs())):
        out[name] = successive_halving(base, ResultStore(tmp_path / name), cands, kind="teacher",
                                       rungs=((1, (0, 1)),), glue_dir=str(glue), progress=False, engine=engine)
    assert out["batched"]["table"] == out["serial"]["table"] and out["batched"]["winner"] == out["serial"]["winner"]
    methods = sorted(r["params"]["method"] for r in ResultStore(tmp_path / "batched").all_records())
    passed = out["serial"]["table"][0]["gain"] != -math.inf
    assert methods == sorted(["ce", "ce", "mcmi", "mcmi", "kd_ce", "kd_ce"] + (["kd_mcmi"] * 2 if passed else []))


def _search_record(task, method, seed, epochs, flagged, **settings):
    params = {"task": task, "method": method, "seed": seed, "epochs": epochs, "eval_on": "heldout", **settings}
    return {"params": params, "metrics": {"accuracy": 0.5, "feature_cmi": 0.1, "output_cmi": 0.1},
            "checks": {"flags": ["one_class"] if flagged else []}}


def test_a_search_whose_last_rung_is_all_degenerate_is_called_uninformative(tmp_path):
    """Flags are counted per row from the search's records; a winner from all-degenerate runs is named a tie pick."""
    from cmi_toolkit.runs.search import search_informative, search_table

    a = {"space": "feature", "temperature": 0.1, "cmi_weight": 0.03, "centroid_mode": "ema"}
    b = {**a, "cmi_weight": 1.0}
    result = {"task": "cola", "kind": "minimiser", "rule": "r", "winner": a, "table": [
        {**a, "budget": 3.0, "seeds": [0, 1], "gain": 0.0, "gains": [0.0, 0.0], "pruned": False},
        {**b, "budget": 1.0, "seeds": [0], "gain": 0.0, "gains": [0.0], "pruned": True}]}
    store = ResultStore(tmp_path)
    for i, rec in enumerate([_search_record("cola", "cmi", s, 3.0, True, **a) for s in (0, 1)]
                            + [_search_record("cola", "ce", s, e, True) for s, e in ((0, 3.0), (1, 3.0), (0, 1.0))]
                            + [_search_record("cola", "cmi", 0, 1.0, False, **b),
                               _search_record("sst2", "cmi", 0, 3.0, False, **a)]):  # another task: not counted
        store.save(f"k{i}", rec)
    lines = search_table(result, store)
    assert lines[4].endswith("| 4/4 |") and lines[5].endswith("| 1/2 |")
    assert "**Uninformative search**" in "\n".join(lines) and not search_informative(result, store)
    # a search run today stops there: no winner (so no tuned arm is planned from it), the reason, the tie rule's pick
    from cmi_toolkit.runs.search import stop_if_uninformative

    stopped = stop_if_uninformative(dict(result), store)
    assert stopped["winner"] is None and stopped["tie_pick"] == a and "cannot rank" in stopped["stopped"]
    text = "\n".join(search_table(stopped, store))
    assert "the search stopped" in text and "cmi_weight=0.03" in text and "Uninformative search" not in text
    store.save("k0", _search_record("cola", "cmi", 0, 3.0, False, **a))  # one healthy run at the last budget
    assert stop_if_uninformative(dict(result), store)["winner"] == a  # a search that can rank keeps its winner
    assert "Uninformative" not in "\n".join(search_table(result, store)) and search_informative(result, store)
    assert "degenerate" not in "\n".join(search_table(result))  # without the store: no flag column


def test_an_amended_search_trains_its_later_rungs_and_their_baselines_in_fp32(tmp_path, monkeypatch):
    """``fp32_from_rung``: rung 1 keeps the suite's bf16, rung 2 (candidates and CE baselines) trains in fp32."""
    import cmi_toolkit.runs.search as search

    seen = []

    def fake_execute(cfg, store, glue_dir=None, progress=False):
        seen.append(cfg)
        score = 0.5 + 0.01 * cfg.cmi_weight if cfg.method == "cmi" else 0.5
        return {"metrics": {"accuracy": score}, "headline_metric": "accuracy", "checks": {"mechanism": {"passed": True}}}

    monkeypatch.setattr(search, "execute", fake_execute)
    cands = [{"space": "feature", "temperature": 0.1, "cmi_weight": w, "centroid_mode": "ema"} for w in (0.1, 0.3, 1.0)]
    out = search.successive_halving(RunConfig(bf16=True), ResultStore(tmp_path), cands, rungs=((1, (0,)), (3, (0, 1))),
                                    eta=3, progress=False, fp32_from_rung=2)
    assert {(c.epochs, c.method, c.bf16) for c in seen} == {(1, "cmi", True), (1, "ce", True),
                                                            (3, "cmi", False), (3, "ce", False)}
    assert out["winner"]["cmi_weight"] == 1.0
    assert [r.get("precision") for r in out["table"] if not r["pruned"]] == ["fp32"]
