"""README tables generated from run records, never typed.

The README marks each generated table with an HTML comment naming its source,

    <!-- table: glue cpu -->              the summary table of GLUE suite ``cpu`` (results/)
    <!-- table: cot cqa gpu -->           the CoT table of preset ``gpu`` on CQA (results/cot/)
    <!-- table: cot cqa gpu mask_padding=false -->   ... with an override

followed by the table and closed by ``<!-- /table -->``. :func:`update` rewrites every block from
the records; ``check=True`` only compares and lists the blocks that differ (the test suite does this).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

__all__ = ["render", "update", "BLOCK"]

BLOCK = re.compile(r"(<!-- table: (?P<spec>[^>]*?) -->\n)(?P<body>.*?)(<!-- /table -->)", re.DOTALL)
REPO = Path(__file__).resolve().parents[1]


def _value(text: str) -> Any:
    import yaml

    return yaml.safe_load(text)


def render(spec: str, root: str | Path = REPO) -> str:
    """The table text of one block (``spec`` as written after ``table:``)."""
    from .results import ResultStore

    words = spec.split()
    root = Path(root)
    if words[0] == "glue" and len(words) == 2:
        from .reproduce import _pct, caveats, load_suite, suite_records, summarise, summary_table

        records, _ = suite_records(ResultStore(root / "results"), load_suite(words[1]))
        rows = summarise(records)
        lines = summary_table(rows)
        majority = {r["task"]: r["majority"] for r in rows if r["majority"] is not None}
        if majority:
            lines += ["", "Majority-class score (always the training set's majority class): "
                      + ", ".join(f"{t} {_pct(v)}" for t, v in sorted(majority.items())) + "."]
        return "\n".join(lines + caveats(rows))
    if words[0] == "cot" and len(words) >= 3:
        from .cot import cot_table
        from .cot.runs import preset_records

        overrides = dict(w.split("=", 1) for w in words[3:])
        overrides = {k: _value(v) for k, v in overrides.items()}
        records = preset_records(ResultStore(root / "results" / "cot").all_records(), words[1], words[2], overrides)
        if not records:
            raise ValueError(f"README block 'table: {spec}': no records in {root / 'results' / 'cot'}")
        return cot_table(records)
    raise ValueError(f"README block 'table: {spec}': expected 'glue SUITE' or 'cot DATASET PRESET [key=value ...]'")


def update(path: str | Path, check: bool = False, root: str | Path = REPO) -> list[str]:
    """Regenerate every table block of ``path``; returns the specs whose text changed (or would change)."""
    from .results import atomic_write_text

    path = Path(path)
    text = path.read_text(encoding="utf-8")
    changed: list[str] = []

    def replace(m: re.Match) -> str:
        body = render(m.group("spec"), root) + "\n"
        if body != m.group("body"):
            changed.append(m.group("spec"))
        return m.group(1) + body + m.group(4)

    new = BLOCK.sub(replace, text)
    if not check and new != text:
        atomic_write_text(path, new)
    return changed
