"""The course's lab: runs of the ``lab`` preset, cached in a committed result store, trained on demand.

Notebook 01 sweeps lambda over :data:`~cmi_toolkit.defaults.LAB_LAMBDAS` x
:data:`~cmi_toolkit.defaults.LAB_SEEDS` with the :data:`~cmi_toolkit.defaults.LAB_PRESET` settings
(SST-2, 2,000 training examples, 3 epochs: a model that learns in about a minute on a laptop CPU).
Every run goes through :func:`cmi_toolkit.runs.execute.execute`, so a run whose record is in the store
(``results/lab`` in the repository, committed) loads at once and a missing one trains and joins it.
Notebook 03 reuses the same runs through :func:`model_view`: a small per-model summary of the dev set
in feature space (PCA of f_x, the FPDCs, each example's KL to its class centroid), cached beside the
records; building one needs the kept model, which exists where the run was trained.

``cmi-toolkit lab-cache`` (``make lab-cache``) trains whatever of the cache is missing, locally or over Ray.
"""

from __future__ import annotations

import json
import math
import os
import statistics
from pathlib import Path
from typing import Any

from .. import defaults as D
from ..files import write_json
from ..runs.config import RunConfig
from ..runs.execute import execute
from ..runs.store import ResultStore, cached_file, load_cached

__all__ = ["SMOKE_PRESET", "along_training", "per_class_summary", "build_cache", "lab_config", "record_row", "sweep", "train_row", "timing",
           "model_view", "shared_projection", "ALONG_EVERY"]

#: notebook 02 measures its lab run every this many optimiser steps (the committed cache holds this curve)
ALONG_EVERY = 25

#: a pipeline check of the lab in well under a minute: numbers are not meaningful
SMOKE_PRESET: dict[str, Any] = {"max_train_samples": 256, "max_eval_samples": 200, "epochs": 1}


def lab_config(lam: float, seed: int = 0, smoke: bool = False, **overrides: Any) -> RunConfig:
    """The lab run at CMI weight ``lam`` (0 = plain CE) and ``seed``; ``overrides`` change any other field."""
    params: dict[str, Any] = {**D.LAB_PRESET, **(SMOKE_PRESET if smoke else {}), **overrides}
    if isinstance(lam, bool) or not isinstance(lam, (int, float)) or not math.isfinite(lam) or lam < 0:
        raise ValueError(f"lambda {lam!r}: the CMI weight must be a finite number >= 0 (0 is plain CE)")
    method = "cmi" if lam > 0 else "ce"
    return RunConfig(method=method, seed=seed, cmi_weight=lam if lam > 0 else D.CMI_WEIGHT, **params)


def record_row(record: dict[str, Any]) -> dict[str, Any]:
    """One sweep row from a run record: the setting and what the model measured (in the space it trained)."""
    p, m = record["params"], record["metrics"]
    space = p.get("space", D.SPACE)
    lam = p.get("cmi_weight", 0.0) if p["method"] in ("cmi", "mcmi") else 0.0
    mech = record.get("checks", {}).get("mechanism") or {}
    prov = record.get("provenance", {})
    return {"lambda": lam, "seed": p["seed"], "space": space, "temperature": p.get("temperature", D.TEMPERATURE),
            "accuracy": m["accuracy"], "cmi": m[f"{space}_cmi"], "ncmi": m[f"{space}_ncmi"],
            "separation": m[f"{space}_separation"], "majority": record.get("majority_score"),
            "flags": record.get("checks", {}).get("flags", []), "mechanism_passed": mech.get("passed"),
            "train_s": record.get("timings", {}).get("train_s"), "key": record["key"],
            "machine": f"{prov.get('device_name') or prov.get('cpu') or '?'}, {prov.get('threads', '?')} threads"}


def _cached(cfg: RunConfig, store: ResultStore, cache_dir: str | os.PathLike | None,
            glue_dir: str | None) -> dict[str, Any] | None:
    """The record of lab run ``cfg``: from the read-only ``cache_dir`` (the committed cache), else from ``store``."""
    return load_cached(cfg.store_key(glue_dir), store, cache_dir)


def sweep(lambdas: list[float] | tuple[float, ...] = D.LAB_LAMBDAS, seeds: list[int] | tuple[int, ...] = D.LAB_SEEDS,
          results_dir: str | os.PathLike = D.LAB_RESULTS_DIR, glue_dir: str | None = None, train: bool = True,
          smoke: bool = False, progress: bool = True, engine=None, cache_dir: str | os.PathLike | None = None,
          **overrides: Any) -> tuple[list[dict[str, Any]], list[RunConfig]]:
    """Rows of the lambda sweep (one per lambda and seed) and the runs that are neither cached nor trained.

    A run whose record is in ``cache_dir`` (read only: the course's committed cache) or in ``results_dir`` is
    loaded; a missing one is trained into ``results_dir`` when ``train`` is true (its CE twin first, for the
    mechanism check) and otherwise returned in the second list. ``engine``
    (:class:`~cmi_toolkit.runs.engine.EngineArgs`) trains the missing ones as one batch, locally or over Ray.
    """
    from tqdm.auto import tqdm

    store = ResultStore(results_dir)
    rows, missing = [], []
    runs = [lab_config(lam, seed, smoke, **overrides) for lam in lambdas for seed in seeds]
    if train and engine is not None:
        from ..runs.engine import run_batch

        todo = [cfg for cfg in runs if _cached(cfg, store, cache_dir, glue_dir) is None]
        done = run_batch(todo, store, glue_dir, engine, keep_model=True, progress=progress) if todo else None
        if done is not None and done.failed:
            raise RuntimeError(f"{len(done.failed)} lab run(s) failed: "
                               + "; ".join(f"{key}: {why}" for key, why in done.failed.items()))
    for cfg in tqdm(runs, desc="lab runs (cached ones load at once)", disable=not progress):
        record = _cached(cfg, store, cache_dir, glue_dir)
        if record is None and not train:
            missing.append(cfg)
            continue
        if record is None:
            record = execute(cfg, store, glue_dir=glue_dir, progress=False, keep_model=True)
        rows.append(record_row(record))
    return rows, missing


def train_row(lam: float, space: str, temperature: float, seed: int = 0, results_dir: str | os.PathLike = D.LAB_RESULTS_DIR,
              glue_dir: str | None = None, smoke: bool = False, callbacks: list | None = None,
              cache_dir: str | os.PathLike | None = None, **overrides: Any) -> dict[str, Any]:
    """The row of one lab run at (lambda, space, T, seed): loaded when cached (``cache_dir``, then
    ``results_dir``), else trained into ``results_dir`` (for the widget)."""
    cfg = lab_config(lam, seed, smoke, space=space, temperature=temperature, **overrides)
    store = ResultStore(results_dir)
    record = _cached(cfg, store, cache_dir, glue_dir)
    if record is None:
        record = execute(cfg, store, glue_dir=glue_dir, progress=False, keep_model=True, callbacks=callbacks)
    return record_row(record)


def timing(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Median training time of the rows' runs and the machines they ran on (from the records' provenance)."""
    times = [r["train_s"] for r in rows if r.get("train_s") is not None]
    return {"median_train_s": statistics.median(times) if times else None, "runs": len(times),
            "machines": sorted({r["machine"] for r in rows})}


def per_class_summary(report) -> dict[str, Any]:
    """A :class:`~cmi_toolkit.method.measure.MeasureReport`'s per-class CMI and separation in both spaces, plus the
    overall CMI, separation and NCMI, as plain numbers (what notebook 02's tables show; cacheable as JSON)."""
    out: dict[str, Any] = {"accuracy": report.accuracy}
    for space in ("feature", "output"):
        rep = getattr(report, space)
        out[space] = {"cmi": [float(x) for x in rep.per_class_cmi],
                      "separation": [float(x) for x in rep.per_class_separation],
                      "all": {"cmi": float(rep.cmi), "separation": float(rep.separation), "ncmi": float(rep.ncmi)}}
    return out


def along_training(cfg: RunConfig, every: int, results_dir: str | os.PathLike = D.LAB_RESULTS_DIR,
                   cache_dir: str | os.PathLike | None = None, glue_dir: str | None = None, train: bool = True,
                   callbacks: list | None = None) -> dict[str, Any]:
    """Notebook 02's measurements along one fine-tuning: ``{"history", "final", "train_s", "machine", "cached"}``
    (``cached``: loaded from a store rather than trained by this call, so ``train_s`` is a recorded time).

    ``history`` holds a :class:`~cmi_toolkit.method.trainers.MeasureCallback` measurement (accuracy, CMI, separation, NCMI
    in both spaces, on the run's evaluation set) every ``every`` optimiser steps from step 0, ``final`` the
    trained model's measurement and ``final_per_class`` its :func:`per_class_summary`. Cached as ``along/<key>-every<every>.json``: read from ``cache_dir`` (the
    committed cache, never written) or ``results_dir``; a miss trains the run here when ``train`` (``callbacks``,
    e.g. a progress bar, join it) and is stored in ``results_dir``; FileNotFoundError otherwise.
    """
    import time

    from ..data.models import load_tokenizer
    from ..method.trainers import MeasureCallback
    from ..runs.execute import train_and_measure
    from ..runs.provenance import provenance

    name = f"{cfg.store_key(glue_dir)}-every{every}.json"
    found = cached_file(Path("along") / name, cache_dir, results_dir)
    if found is not None:
        return {**json.loads(found.read_text(encoding="utf-8")), "cached": True}
    if not train:
        raise FileNotFoundError(f"{Path(results_dir) / 'along' / name}: this along-training run is not cached; "
                                "run with train=True")
    from ..runs.execute import prepare_data

    if cache_dir is not None and Path(cache_dir).is_dir():  # what to expect, from the cached runs of the lab preset
        t = timing([record_row(r) for r in ResultStore(cache_dir).all_records()])
        if t["median_train_s"]:
            print(f"not cached: training it here first (the lab preset's cached runs took {t['median_train_s']:.0f} s "
                  f"each to train on {'; '.join(t['machines'])}; measuring along the way adds to that)", flush=True)
    from ..progress import library_bars_off

    with library_bars_off():  # one bar: the caller's (``callbacks``), not the libraries' tokenise / load bars
        tokenizer = load_tokenizer(cfg.model)
        _, _, evaluation = prepare_data(cfg, tokenizer, glue_dir)
        along = MeasureCallback(evaluation, tokenizer, every=every, temperature=cfg.temperature, pooling=cfg.pooling)
        started = time.perf_counter()
        run = train_and_measure(cfg, glue_dir=glue_dir, callbacks=[along, *(callbacks or [])], progress=False,
                                save_checkpoints=False, tokenizer=tokenizer)
    out = {"key": cfg.store_key(glue_dir), "every": every, "history": along.history, "final": run.report.summary(),
           "final_per_class": per_class_summary(run.report),
           "train_s": round(time.perf_counter() - started, 1),
           "machine": provenance(next(run.model.parameters()).device)}
    write_json(Path(results_dir) / "along" / name, out)
    return {**out, "cached": False}


def _view_path(store: ResultStore, key: str) -> Path:
    return store.root / "views" / f"{key}.json"


def _kept_lab_model(cfg: RunConfig, store: ResultStore, glue_dir: str | None, train: bool, missing: Path) -> Path:
    """The kept model of lab run ``cfg`` in ``store``: there already, or trained (a record without its model is
    trained again and checked against its record) when ``train``; FileNotFoundError naming ``missing`` otherwise."""
    from ..runs.execute import _kept_model

    model_dir = store.root / "models" / store.file_key(cfg.store_key(glue_dir))
    if (model_dir / "config.json").is_file():
        return model_dir
    if not train:
        raise FileNotFoundError(f"{missing}: not cached and no kept model of lab run {cfg.key}; "
                                "run with train=True (about a minute on a laptop CPU)")
    from ..progress import library_bars_off

    with library_bars_off():
        return _kept_model(cfg, store, glue_dir, progress=False, suite=None)


def _feature_distributions(cfg: RunConfig, model_dir: Path, glue_dir: str | None):
    """(measure report, f_x = softmax(h_x / T) as float64 N x K, labels, FPDCs g_y C x K, task) of the model in
    ``model_dir`` on the run's dev set."""
    import torch

    from ..data.models import load_tokenizer
    from ..method.measure import measure
    from ..progress import library_bars_off
    from ..runs.execute import _load_saved, prepare_data

    with library_bars_off():  # no tokenise / load-weights bars in the notebook
        tokenizer = load_tokenizer(str(model_dir))
        task, _, evaluation = prepare_data(cfg, tokenizer, glue_dir)
        rep = measure(_load_saved(model_dir), evaluation, tokenizer, task=task, pooling=cfg.pooling,
                      temperature=cfg.temperature, keep_outputs=True, progress=False)
    f = torch.softmax(rep.features.double() / cfg.temperature, -1)
    return rep, f, rep.labels.long(), rep.feature.centroids.double(), task


def _pca(x, components: int = 2):
    """(mean, projection K x components, explained variance shares) of the rows of ``x``."""
    import numpy as np

    mean = x.mean(0, keepdims=True)
    _, s, vt = np.linalg.svd(x - mean, full_matrices=False)
    return mean, vt[:components].T, s[:components] ** 2 / (s**2).sum()


def model_view(cfg: RunConfig, results_dir: str | os.PathLike = D.LAB_RESULTS_DIR, glue_dir: str | None = None,
               train: bool = True, cache_dir: str | os.PathLike | None = None) -> dict[str, Any]:
    """What notebook 03 shows of one run, in feature space at the run's T, on its dev set.

    ``xy``: the first two principal components of f_x = softmax(h_x / T) (PCA is linear, so a class's
    centroid ``centroid_xy`` is exactly the mean of its points); ``fpdc``: the centroids g_y;
    ``kl``: each example's KL(f_x || g_y) to its own class centroid, whose mean is the CMI.
    Cached as ``views/<key>.json`` in the store (read from ``cache_dir`` first, the committed cache, which is
    never written); built from the kept model (trained first when ``train`` and the model is missing);
    FileNotFoundError when neither exists.
    """
    import numpy as np

    from ..method.information import kl_to_centroids

    store = ResultStore(results_dir)
    canonical = cfg.store_key(glue_dir)
    key = store.file_key(canonical)
    path = _view_path(store, key)
    cached = ResultStore(cache_dir) if cache_dir is not None and Path(cache_dir).is_dir() else None
    for known in ([_view_path(cached, cached.file_key(canonical))] if cached else []) + [path]:
        if known.is_file():
            return json.loads(known.read_text(encoding="utf-8"))
    model_dir = _kept_lab_model(cfg, store, glue_dir, train, path)
    rep, f, labels, g, task = _feature_distributions(cfg, model_dir, glue_dir)
    kl = kl_to_centroids(f, labels, g)
    x = f.numpy()
    mean, proj, explained = _pca(x)
    view = {"key": key, "method": cfg.method, "lambda": cfg.cmi_weight if cfg.method == "cmi" else 0.0,
            "seed": cfg.seed, "temperature": cfg.temperature, "accuracy": rep.accuracy, "cmi": rep.feature.cmi,
            "separation": rep.feature.separation, "label_names": list(task.label_names),
            "labels": labels.tolist(), "xy": np.round((x - mean) @ proj, 6).tolist(),
            "centroid_xy": np.round((g.numpy() - mean) @ proj, 6).tolist(),
            "explained": np.round(explained, 4).tolist(),
            "fpdc": np.round(g.numpy(), 7).tolist(), "kl": np.round(kl.numpy(), 6).tolist(),
            "umap_xy": _umap(x, cfg.seed)}
    write_json(path, view)
    return view


def shared_projection(runs: dict[str, RunConfig], results_dir: str | os.PathLike = D.LAB_RESULTS_DIR,
                      glue_dir: str | None = None, train: bool = True,
                      cache_dir: str | os.PathLike | None = None) -> dict[str, Any]:
    """Several lab runs' f_x in **one** PCA, fitted on all their dev-set points together, so side-by-side panels
    share their axes and a tighter cloud is visibly tighter: ``{"explained", "keys", "models": {name: {"xy",
    "centroid_xy", "labels", "label_names"}}}``. The projection is linear, so each model's projected centroid is
    still the mean of its projected points. Cached as ``views/shared-<hash of the runs' keys>.json`` (``cache_dir``
    first, never written); built from the kept models like :func:`model_view`."""
    import numpy as np

    from ..runs.store import run_key

    store = ResultStore(results_dir)
    keys = {name: cfg.store_key(glue_dir) for name, cfg in runs.items()}
    name = Path("views") / f"shared-{run_key({'shared_projection': sorted(keys.values())})}.json"
    found = cached_file(name, cache_dir if cache_dir is not None and Path(cache_dir).is_dir() else None, store.root)
    if found is not None:
        return json.loads(found.read_text(encoding="utf-8"))
    parts = {}
    for label, cfg in runs.items():
        _, f, labels, g, task = _feature_distributions(cfg, _kept_lab_model(cfg, store, glue_dir, train,
                                                                             store.root / name), glue_dir)
        parts[label] = (f.numpy(), labels.numpy(), g.numpy(), list(task.label_names))
    mean, proj, explained = _pca(np.concatenate([x for x, *_ in parts.values()]))
    out = {"keys": keys, "explained": np.round(explained, 4).tolist(),
           "models": {label: {"xy": np.round((x - mean) @ proj, 6).tolist(), "labels": y.tolist(),
                              "centroid_xy": np.round((g - mean) @ proj, 6).tolist(), "label_names": names}
                      for label, (x, y, g, names) in parts.items()}}
    write_json(store.root / name, out)
    return out


def _umap(points, seed: int) -> list[list[float]] | None:
    """2-D UMAP of ``points`` (umap-learn), None where it is not installed."""
    try:
        import umap
    except ImportError:
        return None
    import warnings

    import numpy as np

    with warnings.catch_warnings():  # a seeded UMAP runs single-threaded and says so
        warnings.filterwarnings("ignore", message="n_jobs value")
        reducer = umap.UMAP(n_components=2, random_state=seed, n_neighbors=min(15, len(points) - 1))
        xy = reducer.fit_transform(points)
    return np.round(xy, 5).tolist()


def build_cache(results_dir: str | os.PathLike = D.LAB_RESULTS_DIR, glue_dir: str | None = None,
                engine=None) -> str:
    """Train what the lab cache lacks (the sweep, then the views notebook 03 shows); returns a summary line."""
    rows, _ = sweep(results_dir=results_dir, glue_dir=glue_dir, engine=engine)
    for lam in (0.0, D.CMI_WEIGHT):
        model_view(lab_config(lam, D.LAB_SEEDS[0]), results_dir, glue_dir)
    shared_projection({"CE": lab_config(0.0, D.LAB_SEEDS[0]), "CMI": lab_config(D.CMI_WEIGHT, D.LAB_SEEDS[0])},
                      results_dir, glue_dir)  # notebook 03's side-by-side panels
    along_training(lab_config(0.0, D.LAB_SEEDS[0]), ALONG_EVERY, results_dir, glue_dir=glue_dir)  # notebook 02
    t = timing(rows)
    return (f"{len(rows)} lab runs in {results_dir}; median training time {t['median_train_s']:.0f} s "
            f"({'; '.join(t['machines'])})")

