"""A user's own examples for a task: any labelled (or unlabelled) TSV, CSV or JSON Lines file.

:func:`read_examples` returns a :class:`datasets.Dataset` with the hub's schema of the task (its text columns,
``label`` as a ClassLabel, ``idx``), so that :func:`~cmi_toolkit.data.loading.tokenize_glue` and
:func:`~cmi_toolkit.method.measure.measure` score it exactly as they score a GLUE dev set.

* Format by extension: ``.tsv`` (tab-separated, no quoting, as GLUE), ``.csv`` (quoted CSV), ``.jsonl`` /
  ``.json`` (one JSON object per line).
* Columns: the task's hub names (``sentence``; ``sentence1``/``sentence2``; ``question``/``sentence`` ...) or
  its GLUE file names (``#1 String``), or those given in ``text_columns``; the label column is ``label``
  unless told otherwise.
* Labels: the task's label names (``negative``, ``positive``; ``entailment`` ...) or their ids; the model's
  own label names are checked against the task's (:func:`check_label_names`).

Every problem is one line naming the file, the line and the fix.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .tasks import GlueTask, get_task

__all__ = ["DataFileError", "read_examples", "check_label_names", "FORMATS"]

FORMATS = {".tsv": "tsv", ".csv": "csv", ".jsonl": "jsonl", ".json": "jsonl"}


class DataFileError(ValueError):
    """A user's data file cannot be read as examples of the task; the message names file, line and fix."""


def _rows(path: Path) -> tuple[list[str], list[tuple[int, dict[str, Any]]]]:
    """(column names, [(line number, row)]) of the file, by its extension."""
    kind = FORMATS.get(path.suffix.lower())
    if kind is None:
        raise DataFileError(f"{path}: unknown format {path.suffix!r}; use .tsv, .csv or .jsonl")
    from .loading import read_utf8, split_rows

    text = read_utf8(path, DataFileError)
    if kind == "jsonl":
        rows, columns = [], []
        for lineno, line in enumerate(split_rows(text), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataFileError(f"{path}, line {lineno}: not a JSON object ({exc.msg}); one object per line") from None
            if not isinstance(row, dict):
                raise DataFileError(f"{path}, line {lineno}: a row is a JSON object, got {type(row).__name__}")
            columns += [c for c in row if c not in columns]
            rows.append((lineno, row))
        return columns, rows
    lines = split_rows(text)
    if kind == "tsv":
        table = [line.split("\t") for line in lines]
    else:
        table = list(csv.reader(lines))
    numbered = [(i, r) for i, r in enumerate(table, start=1) if any(cell.strip() for cell in r)]
    if not numbered:
        raise DataFileError(f"{path}: empty file; expected a header row naming the columns, then one row per example")
    (_, header), body = numbered[0], numbered[1:]
    out = []
    for lineno, cells in body:
        if len(cells) != len(header):
            raise DataFileError(f"{path}, line {lineno}: {len(cells)} fields, the header has {len(header)}"
                                + ("; texts must not contain tabs" if kind == "tsv" else ""))
        out.append((lineno, dict(zip(header, cells, strict=True))))
    return header, out


def _text_columns(task: GlueTask, columns: Sequence[str], given: Sequence[str] | None, path: Path) -> list[str]:
    if given:
        if len(given) != len(task.text_columns):
            raise DataFileError(f"--text_columns: {task.name} needs {len(task.text_columns)} text column(s) "
                                f"({', '.join(task.text_columns)}), got {len(given)}")
        missing = [c for c in given if c not in columns]
        if missing:
            raise DataFileError(f"{path}: no column {missing[0]!r}; its columns are {list(columns)}")
        return list(given)
    for names in (list(task.text_columns), [str(v) for v in task.file_columns.values()]):
        if all(c in columns for c in names):
            return names
    raise DataFileError(f"{path}: no text column(s) {list(task.text_columns)} for {task.name}; its columns are "
                        f"{list(columns)}: rename them or pass --text_columns")


def check_label_names(task: GlueTask | str, model_labels: dict[int, str] | None, where: str) -> None:
    """Refuse a model whose own label names (``config.id2label``, unless the generic ``LABEL_i``) are not the
    task's in the task's order: its outputs would be read as the wrong classes."""
    task = get_task(task) if isinstance(task, str) else task
    if not model_labels:
        return
    names = [str(model_labels[i]) for i in sorted(model_labels)]
    if all(n.upper() == f"LABEL_{i}" for i, n in enumerate(names)):
        return
    if [n.lower() for n in names] != [n.lower() for n in task.label_names]:
        raise DataFileError(f"{where}: the model's labels are {names}, {task.name}'s are {list(task.label_names)}; "
                            "pass a model fine-tuned on this task")


def read_examples(path: str | os.PathLike, task: GlueTask | str, text_columns: Sequence[str] | None = None,
                  label_column: str = "label", labelled: bool = True):
    """The examples of ``path`` as a hub-schema dataset of ``task`` (see the module docstring).

    ``labelled=False`` reads the text columns alone (for predictions) and gives every row label 0.
    """
    from datasets import Dataset

    from .loading import glue_features

    task = get_task(task) if isinstance(task, str) else task
    if task.is_regression:
        raise DataFileError(f"{task.name} is a regression task; the kit scores classification tasks")
    path = Path(path)
    if not path.is_file():
        raise DataFileError(f"{path}: no such file; pass --data with a .tsv, .csv or .jsonl file")
    columns, rows = _rows(path)
    if not rows:
        raise DataFileError(f"{path}: a header and no examples")
    texts = _text_columns(task, columns, text_columns, path)
    if labelled and label_column not in columns:
        raise DataFileError(f"{path}: no label column {label_column!r}; its columns are {list(columns)}: pass "
                            "--label_column, or use `cmi-toolkit predict` for unlabelled rows")
    data: dict[str, list] = {c: [] for c in task.text_columns}
    labels = []
    lower = [n.lower() for n in task.label_names]
    for lineno, row in rows:
        for hub, col in zip(task.text_columns, texts, strict=True):
            value = row.get(col)
            if not isinstance(value, str) or not value.strip():
                raise DataFileError(f"{path}, line {lineno}: column {col!r} is empty or not text")
            data[hub].append(value)
        if not labelled:
            labels.append(0)
            continue
        raw = row.get(label_column)
        text = str(raw).strip() if raw is not None and not isinstance(raw, bool) else ""
        if text.lower() in lower:
            labels.append(lower.index(text.lower()))
        elif text.isdigit() and int(text) < task.num_labels:
            labels.append(int(text))
        else:
            raise DataFileError(f"{path}, line {lineno}: unknown label {raw!r}; {task.name} labels are "
                                + ", ".join(f"{i}={n}" for i, n in enumerate(task.label_names)))
    return Dataset.from_dict({**data, "label": labels, "idx": list(range(len(labels)))}, features=glue_features(task))
