"""The course's lab: cached runs load without training, missing ones train once, views are honest."""

from __future__ import annotations

import numpy as np
import pytest

from cmi_toolkit import defaults as D
from cmi_toolkit.course import lab

from .conftest import REPO
from .test_training import _easy_sst2

LAB_STORE = REPO / D.LAB_RESULTS_DIR


def test_a_missing_run_trains_once_then_loads_from_the_store(tmp_path, tiny_model_dir):
    glue = str(_easy_sst2(tmp_path / "glue", n=24))
    store = tmp_path / "lab"
    settings = dict(model=str(tiny_model_dir), max_train_samples=None, max_eval_samples=None, batch_size=8, epochs=1)
    rows, missing = lab.sweep([0.0, 1.0], [0], results_dir=store, glue_dir=glue, train=False, progress=False, **settings)
    assert rows == [] and len(missing) == 2  # nothing cached, nothing trained
    rows, missing = lab.sweep([0.0, 1.0], [0], results_dir=store, glue_dir=glue, progress=False, **settings)
    assert missing == [] and [r["lambda"] for r in rows] == [0.0, 1.0]
    assert rows[1]["mechanism_passed"] is not None  # the CMI run was checked against its CE twin (the lambda 0 run)
    again, missing = lab.sweep([0.0, 1.0], [0], results_dir=store, glue_dir=glue, train=False, progress=False,
                               **settings)
    assert missing == [] and again == rows  # loaded, not retrained
    view = lab.model_view(lab.lab_config(1.0, 0, **settings), store, glue, train=False)
    xy, labels, cxy = np.asarray(view["xy"]), np.asarray(view["labels"]), np.asarray(view["centroid_xy"])
    for c in range(2):  # PCA is linear: the projected centroid is the mean of the class's projected points
        assert np.allclose(xy[labels == c].mean(0), cxy[c], atol=1e-5)
    assert np.mean(view["kl"]) == pytest.approx(view["cmi"], abs=1e-5)  # the CMI is the mean per-example KL
    assert view["accuracy"] == pytest.approx(rows[1]["accuracy"])
    # notebook 03's side-by-side panels: one PCA of both models' points, so they share axes
    runs = {"CE": lab.lab_config(0.0, 0, **settings), "CMI": lab.lab_config(1.0, 0, **settings)}
    shared = lab.shared_projection(runs, store, glue, train=False)
    both = np.concatenate([np.asarray(m["xy"]) for m in shared["models"].values()])
    assert np.allclose(both.mean(0), 0, atol=1e-5)  # centred on the two models' points together ...
    own = [np.asarray(m["xy"]).mean(0) for m in shared["models"].values()]
    assert not np.allclose(own[0], own[1], atol=1e-4)  # ... not each on its own (separate PCAs would be)
    for m in shared["models"].values():
        xy, labels, cxy = np.asarray(m["xy"]), np.asarray(m["labels"]), np.asarray(m["centroid_xy"])
        for c in range(2):
            assert np.allclose(xy[labels == c].mean(0), cxy[c], atol=1e-5)
    import shutil

    shutil.rmtree(store / "models")  # cached: loads without the models
    assert lab.shared_projection(runs, store, glue, train=False) == shared
    with pytest.raises(FileNotFoundError, match="not cached and no kept model"):
        lab.shared_projection(runs, tmp_path / "elsewhere", glue, train=False)


def test_a_read_only_cache_is_read_and_new_runs_train_into_the_students_own_store(tmp_path, tiny_model_dir):
    """``cache_dir`` (the committed cache) is read, never written: a run missing there trains into ``results_dir``."""
    import hashlib

    glue = str(_easy_sst2(tmp_path / "glue", n=24))
    settings = dict(model=str(tiny_model_dir), max_train_samples=None, max_eval_samples=None, batch_size=8, epochs=1)
    cache = tmp_path / "cache"
    lab.sweep([0.0], [0], results_dir=cache, glue_dir=glue, progress=False, **settings)  # the instructor's cache
    lab.model_view(lab.lab_config(0.0, 0, **settings), cache, glue)

    def snapshot():
        return {p.relative_to(cache): hashlib.sha256(p.read_bytes()).hexdigest() for p in cache.rglob("*")
                if p.is_file() and "models" not in p.parts and "locks" not in p.parts and p.name != ".lock"}

    before, mine = snapshot(), tmp_path / "mine"
    rows, missing = lab.sweep([0.0, 1.0], [0], results_dir=mine, cache_dir=cache, glue_dir=glue, train=False,
                              progress=False, **settings)
    assert [r["lambda"] for r in rows] == [0.0] and len(missing) == 1  # the cached CE run loads from the cache
    rows, _ = lab.sweep([0.0, 1.0], [0], results_dir=mine, cache_dir=cache, glue_dir=glue, progress=False, **settings)
    assert [r["lambda"] for r in rows] == [0.0, 1.0]
    assert snapshot() == before  # nothing in the cache changed
    cached_key = rows[0]["key"]
    assert {r["key"] for r in lab.ResultStore(mine).all_records()} >= {rows[1]["key"]}
    assert lab.train_row(0.0, "feature", D.TEMPERATURE, results_dir=tmp_path / "empty", cache_dir=cache, glue_dir=glue,
                         **{k: v for k, v in settings.items()})["key"] == cached_key
    assert not (tmp_path / "empty" / "runs").exists() or not any((tmp_path / "empty" / "runs").glob("*.json"))
    view = lab.model_view(lab.lab_config(0.0, 0, **settings), tmp_path / "empty", glue, train=False, cache_dir=cache)
    assert view["key"] == cached_key and snapshot() == before


def test_an_along_training_curve_trains_once_into_the_students_store_and_then_loads(tmp_path, tiny_model_dir, capsys):
    glue = str(_easy_sst2(tmp_path / "glue", n=24))
    cfg = lab.lab_config(0.0, 0, model=str(tiny_model_dir), max_train_samples=None, max_eval_samples=None,
                         batch_size=8, epochs=1)
    with pytest.raises(FileNotFoundError, match="not cached"):
        lab.along_training(cfg, 1, tmp_path / "mine", glue_dir=glue, train=False)
    out = lab.along_training(cfg, 1, tmp_path / "mine", glue_dir=glue)
    steps = [h["step"] for h in out["history"]]
    assert steps[0] == 0 and steps == sorted(steps) and len(steps) >= 2  # step 0, then every step
    assert out["history"][-1]["accuracy"] == pytest.approx(out["final"]["accuracy"])  # the end of the curve
    assert set(out["final_per_class"]) >= {"feature", "output"}
    # the student's store is now the cache of a later call (as the committed one is): nothing trains again
    again = lab.along_training(cfg, 1, tmp_path / "other", cache_dir=tmp_path / "mine", glue_dir=glue, train=False)
    assert {**again, "cached": False} == out and not (tmp_path / "other").exists()
    assert out["cached"] is False and again["cached"] is True  # a loaded time is said to be recorded, not measured now


def test_the_committed_lab_cache_is_complete_and_beats_the_majority_class(glue_dir, tmp_path):
    """Notebook 01 loads these by default: every run of the lab sweep is there, for the data as it is now."""
    rows, missing = lab.sweep(results_dir=LAB_STORE, glue_dir=str(glue_dir), train=False, progress=False)
    assert not missing, f"{len(missing)} lab runs missing or stale: run `make lab-cache`"
    assert len(rows) == len(D.LAB_LAMBDAS) * len(D.LAB_SEEDS)
    for r in rows:  # the lab preset learns: well above the majority class, no degenerate run
        assert r["accuracy"] > r["majority"] + 0.2 and not r["flags"], r
    mean_cmi = [np.mean([r["cmi"] for r in rows if r["lambda"] == lam]) for lam in D.LAB_LAMBDAS]
    assert mean_cmi == sorted(mean_cmi, reverse=True)  # a larger CMI weight gives a lower CMI
    along = lab.along_training(lab.lab_config(0.0, D.LAB_SEEDS[0]), lab.ALONG_EVERY, LAB_STORE, glue_dir=str(glue_dir),
                               train=False)  # notebook 02's curve
    assert along["history"][0]["step"] == 0 and along["final"]["accuracy"] > along["history"][0]["accuracy"] + 0.2
    for lam in (0.0, D.CMI_WEIGHT):  # notebook 03's two views are cached too
        view = lab.model_view(lab.lab_config(lam, D.LAB_SEEDS[0]), LAB_STORE, str(glue_dir), train=False)
        # as notebook 03 reads it: the committed store as a read-only cache beside an empty student store
        assert lab.model_view(lab.lab_config(lam, D.LAB_SEEDS[0]), tmp_path / "mine", str(glue_dir), train=False,
                              cache_dir=LAB_STORE) == view
        assert view["umap_xy"] is not None and len(view["xy"]) == len(view["labels"]) == 872
