"""The runs of a result store, found by what they are, and the models kept beside them.

:func:`find_runs` filters a store's records by task, method, seed, suite and any parameter (``cmi_weight=0.1``);
:func:`resolve_kept_model` turns a run key (or a model folder) into the folder of its kept model;
:func:`write_card` writes the small ``card.json`` every kept model carries; :func:`prunable_models` lists the
kept models nothing needs any more.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from ..files import write_json
from .store import ResultStore, claimed_suites

__all__ = ["CARD", "find_runs", "run_row", "resolve_kept_model", "write_card", "read_card", "prunable_models",
           "prune_models"]

CARD = "card.json"


def _matches(value: Any, wanted: str) -> bool:
    if isinstance(value, bool) or value is None:
        return str(value).lower() == wanted.lower()
    if isinstance(value, (int, float)):
        try:
            return float(value) == float(wanted)
        except ValueError:
            return False
    return str(value).lower() == wanted.lower()


def find_runs(store: ResultStore, **filters: str | None) -> list[tuple[str, dict[str, Any]]]:
    """(file key, record) of every record matching ``filters`` (``suite`` matches any suite it counts for;
    other names are parameters, compared by value: ``seed="0"``, ``cmi_weight="0.1"``)."""
    out = []
    for path, record in store.items():
        ok = True
        for name, wanted in filters.items():
            if wanted is None:
                continue
            if name == "suite":
                ok &= wanted in claimed_suites(record)
            else:
                ok &= name in record["params"] and _matches(record["params"][name], wanted)
        if ok:
            out.append((path.stem, record))
    return sorted(out, key=lambda kr: (kr[1]["params"]["task"], kr[1]["params"]["method"], kr[1]["params"]["seed"]))


def run_row(store: ResultStore, key: str, record: dict[str, Any]) -> dict[str, Any]:
    """One line of ``cmi-toolkit runs``: key, what the run is, its headline metric, flags and kept model."""
    p, m = record["params"], record["metrics"]
    metric = record.get("headline_metric") or "accuracy"
    flags = (record.get("checks") or {}).get("flags") or []
    return {"key": key, "task": p["task"], "method": p["method"], "seed": p["seed"],
            "lambda": p.get("cmi_weight") if p["method"] in ("cmi", "mcmi") else None,
            "suites": ",".join(claimed_suites(record)) or "-", "metric": metric, "value": m.get(metric),
            "flags": ",".join(flags) or "-", "model": (store.root / "models" / key / "config.json").is_file()}


def resolve_kept_model(model: str, stores: list[ResultStore]) -> tuple[Path, dict[str, Any] | None]:
    """(folder, record or None) of ``model``: a model folder as it is, or a run key whose kept model lies in
    one of ``stores`` (``<store>/models/<key>``). A key without a kept model is one line saying how to keep it."""
    folder = Path(model).expanduser()
    if folder.is_dir():
        card = read_card(folder)
        return folder, card
    for store in stores:
        record = store.load(model)
        if record is None:
            continue
        kept = store.root / "models" / (record.get("key") or model)
        if (kept / "config.json").is_file():
            return kept, record
        raise FileNotFoundError(f"{kept}: run {model} ({record['params']['task']}/{record['params']['method']}/seed"
                                f"{record['params']['seed']}) kept no model; train it again with --keep_model")
    where = ", ".join(str(s.runs) for s in stores)
    raise FileNotFoundError(f"{model}: neither a model folder nor a run key in {where}; `cmi-toolkit runs` lists "
                            "the keys (pass --results_dir for another store)")


def write_card(folder: Path, record: dict[str, Any], kept_by: str) -> Path:
    """``card.json`` of a kept model: what run it is (task, method, lambda, T, space, seed), its metrics, its
    record key, and why it was kept (``request``: --keep_model; ``dependency``: a later run uses it)."""
    p, m = record["params"], record["metrics"]
    card = {"key": record["key"], "task": p["task"], "method": p["method"], "seed": p["seed"],
            "cmi_weight": p.get("cmi_weight"), "temperature": p.get("temperature"), "space": p.get("space"),
            "headline_metric": record.get("headline_metric"),
            "metrics": {k: m[k] for k in ("accuracy", record.get("headline_metric"), "feature_cmi", "output_cmi")
                        if k and k in m},
            "measured_with": record.get("measured_with"), "kept_by": kept_by}
    return write_json(folder / CARD, card)


def read_card(folder: Path) -> dict[str, Any] | None:
    path = Path(folder) / CARD
    if not path.is_file():
        return None
    try:
        card = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError):
        raise ValueError(f"{path}: not valid JSON; delete it (the model folder loads without it)") from None
    return card if isinstance(card, dict) else None


def prunable_models(store: ResultStore, dependencies: bool = False) -> list[tuple[Path, str]]:
    """(folder, why) of kept models nothing needs: no record names them, or they were neither kept on request
    (``--keep_model``) nor are a teacher or CE twin (``ce``, ``mcmi``) that later distillation and CMI runs load.
    With ``dependencies`` those teachers and twins go too (a later student of one then stops, naming the
    record to delete so that its teacher is trained again)."""
    models = store.root / "models"
    if not models.is_dir():
        return []
    by_key = {(r.get("key") or path.stem): r for path, r in store.items()}
    out = []
    for folder in sorted(p for p in models.iterdir() if p.is_dir()):
        record = by_key.get(folder.name)
        if record is None:
            out.append((folder, "no record"))
            continue
        if (read_card(folder) or {}).get("kept_by") == "request":
            continue
        p = record["params"]
        what = f"{p['task']}/{p['method']}/seed{p['seed']}"
        if p["method"] not in ("ce", "mcmi"):
            out.append((folder, f"{what}: not kept on request, and no run loads it"))
        elif dependencies:
            out.append((folder, f"{what}: a teacher / CE twin (--prune_dependencies)"))
    return out


def prune_models(store: ResultStore, dependencies: bool = False) -> list[tuple[Path, str, int]]:
    """Remove :func:`prunable_models`; returns (folder, why, bytes freed)."""
    out = []
    for folder, why in prunable_models(store, dependencies):
        size = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
        shutil.rmtree(folder)
        out.append((folder, why, size))
    return out
