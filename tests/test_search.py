"""The held-out settings search: Optuna grid + successive halving, a stated rule, no dev data."""

import math

import pytest

from cmi_toolkit.experiments import RunConfig
from cmi_toolkit.results import ResultStore
from cmi_toolkit.search import candidates, search_settings

from .test_training import _easy_sst2


def test_candidates_cover_the_grid():
    from cmi_toolkit.search import GRID

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
    import cmi_toolkit.search as search

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
