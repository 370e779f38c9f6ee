"""CommonsenseQA and SVAMP with LLM rationales (Distilling Step-by-Step's release).

Read from a folder given explicitly or by ``$CMI_TOOLKIT_COT_DIR``: ``<dataset>/<dataset>_{train,test}.json``
(JSON Lines) and ``<dataset>/llm/{split}_CoT_{i}.json`` (JSON arrays of PaLM completions, concatenated
in numeric order, one per example). The rationale is the completion before its first blank line;
the LLM's own answer is read from its "the answer is (...)" sentence.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt, StrictStr, ValidationError

__all__ = ["COT_DIR_ENV", "COUNTS", "LETTERS", "CoTFormatError", "load_cot", "rationale_of", "teacher_answer"]

COT_DIR_ENV = "CMI_TOOLKIT_COT_DIR"
COUNTS = {"cqa": {"train": 9741, "test": 1221}, "svamp": {"train": 800, "test": 200}}
LETTERS = "abcde"


class CoTFormatError(ValueError):
    """CoT files are missing, malformed or do not match each other; the message names the file."""


def _cot_root(source: str | os.PathLike | None) -> Path:
    root = source or os.environ.get(COT_DIR_ENV)
    if not root:
        raise CoTFormatError(f"no CoT data folder: pass one or set {COT_DIR_ENV} (a folder holding cqa/ and svamp/)")
    root = Path(root).expanduser()
    if not root.is_dir():
        raise CoTFormatError(f"{root}: CoT data folder not found (set {COT_DIR_ENV})")
    return root


def _read_text(path: Path) -> str:
    """UTF-8 text of ``path``; a bad byte is a :class:`CoTFormatError` naming the file and line."""
    from ..data import read_utf8

    return read_utf8(path, CoTFormatError)


def _read_jsonl(path: Path) -> list[dict]:
    if not path.is_file():
        raise CoTFormatError(f"{path}: missing file")
    rows = []
    for lineno, line in enumerate(_read_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise CoTFormatError(f"{path}, line {lineno}: not a JSON object ({exc.msg})") from None
    return rows


def _read_llm(folder: Path, split: str) -> tuple[list[str], list[Path]]:
    """The completions of ``<split>_CoT_0.json``, ``_1``, ... concatenated in numeric order.

    Any other file that starts with ``<split>_CoT_`` (``train_CoT_old.json``), or a gap in the
    numbering, is an error naming the file: a stray file must never be read or skipped silently.
    """
    pattern = re.compile(rf"^{re.escape(split)}_CoT_(\d+)\.json$")
    numbered: dict[int, Path] = {}
    for f in sorted(folder.glob(f"{split}_CoT_*")):
        m = pattern.match(f.name)
        if not m:
            raise CoTFormatError(f"{f}: not a numbered LLM file ({split}_CoT_<i>.json); move it out of {folder}")
        numbered[int(m.group(1))] = f
    if not numbered:
        raise CoTFormatError(f"{folder}: no {split}_CoT_<i>.json files")
    missing = sorted(set(range(max(numbered) + 1)) - set(numbered))
    if missing:
        raise CoTFormatError(f"{folder}: {split}_CoT_{missing[0]}.json is missing (the files are numbered 0, 1, ...)")
    files = [numbered[i] for i in sorted(numbered)]
    out: list[str] = []
    for f in files:
        try:
            data = json.loads(_read_text(f))
        except json.JSONDecodeError as exc:
            raise CoTFormatError(f"{f}, line {exc.lineno}: not a JSON array ({exc.msg})") from None
        if not isinstance(data, list) or not all(isinstance(x, str) for x in data):
            raise CoTFormatError(f"{f}: expected a JSON array of completion strings")
        out.extend(data)
    return out, files


def rationale_of(completion: str) -> str:
    """The LLM completion before its first blank line."""
    return re.split(r"\n\s*\n", completion.strip(), maxsplit=1)[0].strip()


class CQARow(BaseModel):
    """One CommonsenseQA row: the question, its answer text and the five choices."""

    model_config = ConfigDict(extra="allow")
    question: StrictStr
    answer: StrictStr
    choices: list[StrictStr] = Field(min_length=5, max_length=5)


class SVAMPRow(BaseModel):
    """One SVAMP row: the problem and the arithmetic expression that answers it."""

    model_config = ConfigDict(extra="allow")
    input: StrictStr
    label: StrictStr | StrictInt | StrictFloat


def _check_row(schema: type[BaseModel], row: Any, where: str) -> None:
    from ..schemas import first_error

    if not isinstance(row, dict):
        raise CoTFormatError(f"{where}: a row is a JSON object, got {type(row).__name__}")
    try:
        schema.model_validate(row)
    except ValidationError as exc:
        raise CoTFormatError(f"{where}: {first_error(exc)} (a {schema.__name__[:-3]} row needs "
                             f"{', '.join(schema.model_fields)})") from None


def _cqa_input(row: dict, where: str) -> str:
    _check_row(CQARow, row, where)
    choices = row["choices"]
    return row["question"].strip() + "\nAnswer Choices:\n" + "\n".join(f"({LETTERS[i]}) {c}" for i, c in enumerate(choices))


def teacher_answer(dataset: str, completion: str, choices: list[str] | None = None) -> str:
    """The LLM's own answer in its rationale ("So the answer is (c) wooded area." / "The answer is (10 * 45).").

    CQA: the text of the choice its letter names (falling back to the text after the letter);
    SVAMP: the expression in the parentheses. ``""`` when the rationale states no answer.
    """
    text = rationale_of(completion)
    if dataset == "cqa":
        m = re.search(r"answer is \(([a-e])\)\s*([^.\n]*)", text, flags=re.IGNORECASE)
        if not m:
            return ""
        index = LETTERS.index(m.group(1).lower())
        return choices[index] if choices and index < len(choices) else m.group(2).strip()
    # "answer is (<expression>)" closing the rationale (optionally with a full stop), found in linear time: the
    # end is checked first, then the first "answer is (" (a backtracking pattern was quadratic on a long row
    # that repeats "answer is (" without a closing bracket)
    tail = text.rstrip()
    if tail.endswith("."):
        tail = tail[:-1].rstrip()
    if not tail.endswith(")"):
        return ""
    m = re.search(r"answer is \(", tail, flags=re.IGNORECASE)
    if not m or m.end() > len(tail) - 2:
        return ""
    return tail[m.end():-1].strip()


def load_cot(dataset: str, source: str | os.PathLike | None = None, check_counts: bool = True):
    """A DatasetDict (train, test) with ``input``, ``label``, ``rationale``, ``teacher_answer`` columns.

    CQA: input = question + its five answer choices, label = the answer text, plus ``choices``
    (the five texts) for choice-ranked evaluation. SVAMP: input = the problem, label = the
    arithmetic expression. ``teacher_answer`` is the LLM's own answer (:func:`teacher_answer`).
    """
    from datasets import Dataset, DatasetDict

    if dataset not in COUNTS:
        raise ValueError(f"dataset must be one of {list(COUNTS)}, got {dataset!r}")
    folder = _cot_root(source) / dataset
    splits = {}
    for split in ("train", "test"):
        path = folder / f"{dataset}_{split}.json"
        rows = _read_jsonl(path)
        completions, files = _read_llm(folder / "llm", split)
        if len(completions) != len(rows):
            raise CoTFormatError(
                f"{path} has {len(rows)} examples but {', '.join(f.name for f in files)} hold {len(completions)} "
                "LLM completions: the files must be in the same order and of the same length")
        if check_counts and len(rows) != COUNTS[dataset][split]:
            raise CoTFormatError(f"{path}: {len(rows)} examples, expected {COUNTS[dataset][split]} (the released split)")
        if dataset == "cqa":
            inputs = [_cqa_input(r, f"{path}, example {i + 1}") for i, r in enumerate(rows)]
            labels = [r["answer"].strip() for r in rows]
            choices = [[str(c).strip() for c in r["choices"]] for r in rows]
        else:
            for i, r in enumerate(rows):
                _check_row(SVAMPRow, r, f"{path}, example {i + 1}")
            inputs = [r["input"].strip() for r in rows]
            labels = [str(r["label"]).strip() for r in rows]
            choices = None
        columns = {"input": inputs, "label": labels, "rationale": [rationale_of(c) for c in completions],
                   "teacher_answer": [teacher_answer(dataset, c, choices[i] if choices else None)
                                      for i, c in enumerate(completions)]}
        if choices is not None:
            columns["choices"] = choices
        splits[split] = Dataset.from_dict(columns)
    return DatasetDict(splits)
