"""Shared set-up of the benchmarks: real SST-2 training batches and the offline model."""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch


def sst2(split: str = "train", n: int = 640, seed: int = 0):
    from cmi_toolkit.data.loading import load_glue

    glue = os.environ.get("CMI_TOOLKIT_GLUE_DIR")
    if not glue:
        raise SystemExit("set CMI_TOOLKIT_GLUE_DIR to a GLUE folder (e.g. ../shared/data/glue)")
    ds = load_glue("sst2", source=glue, max_train_samples=n, max_eval_samples=None, seed=seed)
    return ds[split]


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def median(xs: list[float]) -> float:
    return statistics.median(xs)


def threads() -> int:
    return torch.get_num_threads()


def record_key(name: str) -> str:
    """A variant's or layout's name as a key of a record's results: ``ray, 1 node x 1 CPU`` -> ``ray_1_node_x_1_cpu``."""
    import re

    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def save_record(name: str, what: str, results: dict[str, float], target: tuple[str, str, float]) -> Path:
    """Write ``results/bench/<name>.json``: what was measured, the numbers, the target (``(result key, "<=" or
    ">=", bound)``), the machine, its load, the date and the commit (with its dirty flag). The performance page
    (``docs/performance.md``) is generated from these records by ``cmi-toolkit readme``."""
    import json
    from datetime import datetime, timezone

    from cmi_toolkit.files import write_json
    from cmi_toolkit.runs.provenance import cpu_features, cpu_model, git_state

    key, op, bound = target
    if key not in results or op not in ("<=", ">="):
        raise ValueError(f"benchmark {name}: target {target} names no result or no comparison")
    record = {"benchmark": name, "what": what, "results": {k: float(v) for k, v in results.items()},
              "target": {"result": key, "op": op, "bound": bound},
              "machine": {"cpu": cpu_model(), **cpu_features(), "cores": os.cpu_count(), "threads": threads(),
                          "load_at_start": round(_LOAD_AT_START, 2)},
              "date": datetime.now(timezone.utc).strftime("%Y-%m-%d"), **git_state()}
    path = REPO / "results" / "bench" / f"{name}.json"
    write_json(path, record)
    print(f"recorded in {path.relative_to(REPO)}: {json.dumps(record['results'])}")
    return path


REPO = Path(__file__).resolve().parents[1]
_LOAD_AT_START = os.getloadavg()[0]
