"""A notebook's runs read from a committed, read-only result store; the missing ones train into the user's own."""

from __future__ import annotations

import hashlib

import pytest

from cmi_toolkit.runs.config import RunConfig
from cmi_toolkit.runs.store import ResultStore
from cmi_toolkit.runs.suites import cached_or_run

from .test_training import _easy_sst2


def _snapshot(root):
    return {p.relative_to(root): hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*")
            if p.is_file() and "locks" not in p.parts and p.name != ".lock"}


def test_cached_runs_load_from_the_read_only_cache_and_misses_train_into_the_store(tmp_path, tiny_model_dir, capsys):
    glue = str(_easy_sst2(tmp_path / "glue", n=24))
    runs = [RunConfig(task="sst2", method="ce", seed=s, model=str(tiny_model_dir), max_train_samples=None,
                      max_eval_samples=None, batch_size=8, epochs=1) for s in (0, 1)]
    cache = tmp_path / "cache"
    (first,) = cached_or_run(runs[:1], ResultStore(cache), glue_dir=glue, progress=False)  # the instructor's cache
    before, mine = _snapshot(cache), ResultStore(tmp_path / "mine")
    with pytest.raises(FileNotFoundError, match=r"1 run\(s\) are in neither .*sst2/ce/seed1.*train_missing=True"):
        cached_or_run(runs, mine, cache, glue, train=False, progress=False)
    capsys.readouterr()
    records = cached_or_run(runs, mine, cache, glue, progress=False)
    said = capsys.readouterr().out
    assert "1 of 2 runs not cached" in said and "median training time" in said  # the estimate comes first
    assert records[0] == first and records[1]["params"]["seed"] == 1
    assert _snapshot(cache) == before  # the cache was read, never written
    assert [r["key"] for r in mine.all_records()] == [records[1]["key"]]  # only the miss joined the user's store
    assert cached_or_run(runs, mine, cache, glue, train=False, progress=False) == records  # now nothing trains
