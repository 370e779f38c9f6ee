"""Every module states its times, and every time measured (benchmarks/bench_course_times.py) keeps to them."""

from __future__ import annotations

import json
import re

import nbformat
import pytest

from .conftest import REPO

NOTEBOOKS = sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))
RECORD = REPO / "results" / "course_times.json"


def stated_minutes(path) -> dict[str, float]:
    """The bounds a notebook's ``**Time`` line states: ``smoke: under N min`` and ``default: under M min`` (or h)."""
    header = next(c.source for c in nbformat.read(path, as_version=4).cells if "**Time" in c.source)
    line = next(x for x in header.splitlines() if "**Time" in x) + " " + header.split("**Time", 1)[1]
    out = {}
    for mode in ("smoke", "default"):
        m = re.search(rf"{mode}: under\s+(\d+(?:\.\d+)?)\s+(min|h)\b", line)
        if m:
            out[mode] = float(m.group(1)) * (60 if m.group(2) == "h" else 1)
    return out


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_a_module_states_its_smoke_and_default_times(path):
    stated = stated_minutes(path)
    assert set(stated) == {"smoke", "default"}, f"{path.name}: its **Time line needs 'smoke: under N min' and " \
                                                "'default: under M min'"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_every_measured_time_keeps_to_the_stated_bound(path):
    """Measured by the benchmark (with its machine and load); a smoke time is measured for every module."""
    record = json.loads(RECORD.read_text(encoding="utf-8"))
    measured = record.get(path.stem, {})
    assert "smoke" in measured, f"{path.stem}: no smoke time measured (run benchmarks/bench_course_times.py)"
    stated = stated_minutes(path)
    for mode, entry in measured.items():
        assert entry["seconds"] <= 60 * stated[mode], (
            f"{path.stem} {mode}: measured {entry['seconds'] / 60:.1f} min on {entry['cpu']} ({entry['cores']} cores, "
            f"load {entry['load_at_start']}) against the stated {stated[mode]:g} min: fix the module or its statement")


def test_the_bound_parser_reads_hours_and_minutes(tmp_path):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(
        "**Time on a laptop CPU (2 cores, measured).** smoke: under 3 min; default: under 1.5 h (trains)")])
    path = tmp_path / "x.ipynb"
    nbformat.write(nb, path)
    assert stated_minutes(path) == {"smoke": 3.0, "default": 90.0}
