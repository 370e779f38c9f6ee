"""Shared set-up of the benchmarks: real SST-2 training batches and the offline model."""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable

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
