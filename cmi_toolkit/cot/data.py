"""CommonsenseQA, SVAMP and e-SNLI with LLM rationales (Distilling Step-by-Step's release).

Read from a folder given explicitly or by ``$CMI_TOOLKIT_COT_DIR``: ``<dataset>/<dataset>_{train,test}.json``
(JSON Lines; e-SNLI's training pool is its ``valid`` split) and ``<dataset>/llm/{split}_CoT_{i}.json`` (JSON arrays
of PaLM completions, concatenated in numeric order, one per example).

* CQA and SVAMP: the rationale is the completion before its first blank line; the LLM's own answer is read from its
  "the answer is (...)" sentence.
* e-SNLI: the completion is the rationale, then a line ``Answer: <label word>``, then further few-shot text; the
  rationale is the text before that line and the LLM's answer is its word. A completion with no ``Answer:`` line has
  no rationale: the row is named (file and row) in a :class:`CoTDataWarning` and marked ``rationale_ok = False``,
  and the students leave it out of training (every mode alike), never train on an empty rationale.

Gold data is checked like GLUE data: a CQA answer among its five choices, an e-SNLI label in {0, 1, 2}, a SVAMP label
that evaluates to a finite number; each violation is a :class:`CoTFormatError` naming the file and row. A teacher
completion with no parsable answer is kept (its ``teacher_answer`` is ``""``, counted by :func:`teacher_coverage`)
and a split where none parse is refused.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt, StrictStr, ValidationError

__all__ = ["COT_DIR_ENV", "COUNTS", "DATASETS", "ESNLI_LABELS", "LETTERS", "CoTDataWarning", "CoTFormatError",
           "esnli_answer", "esnli_rationale", "load_cot", "rationale_of", "teacher_answer", "teacher_coverage"]

COT_DIR_ENV = "CMI_TOOLKIT_COT_DIR"
COUNTS = {"cqa": {"train": 9741, "test": 1221}, "svamp": {"train": 800, "test": 200},
          "esnli": {"train": 9842, "test": 9824}}
DATASETS = tuple(COUNTS)
#: the files each split is read from (e-SNLI's released training split is not here: its validation split trains)
FILE_SPLIT = {"cqa": {"train": "train", "test": "test"}, "svamp": {"train": "train", "test": "test"},
              "esnli": {"train": "valid", "test": "test"}}
LETTERS = "abcde"
#: e-SNLI's label words, in label-id order (0 entailment, 1 neutral, 2 contradiction)
ESNLI_LABELS = ("entailment", "neutral", "contradiction")


class CoTFormatError(ValueError):
    """CoT files are missing, malformed or do not match each other; the message names the file."""


class CoTDataWarning(UserWarning):
    """A row the students leave out or a teacher answer that does not parse; the message names the file and row."""


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
    from ..data.loading import read_utf8

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


def _read_llm(folder: Path, split: str) -> tuple[list[str], list[Path], list[str]]:
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
    where: list[str] = []  # "<file>, row <r>" of each completion (1-based within its file)
    for f in files:
        try:
            data = json.loads(_read_text(f))
        except json.JSONDecodeError as exc:
            raise CoTFormatError(f"{f}, line {exc.lineno}: not a JSON array ({exc.msg})") from None
        if not isinstance(data, list) or not all(isinstance(x, str) for x in data):
            raise CoTFormatError(f"{f}: expected a JSON array of completion strings")
        out.extend(data)
        where.extend(f"{f}, row {r}" for r in range(1, len(data) + 1))
    return out, files, where


def rationale_of(completion: str) -> str:
    """The LLM completion before its first blank line."""
    return re.split(r"\n\s*\n", completion.strip(), maxsplit=1)[0].strip()


_ANSWER_LINE = re.compile(r"^[ \t]*Answer:[ \t]*(.*)$", flags=re.MULTILINE)


def esnli_rationale(completion: str) -> str | None:
    """An e-SNLI completion's rationale: the text before its first ``Answer:`` line; None when it has none."""
    m = _ANSWER_LINE.search(completion)
    return completion[:m.start()].strip() if m else None


def esnli_answer(completion: str) -> str | None:
    """The label word of an e-SNLI completion's first ``Answer:`` line (lower-cased); None when it has none.

    A word outside :data:`ESNLI_LABELS` is returned as it is: the caller names it."""
    m = _ANSWER_LINE.search(completion)
    return m.group(1).strip().rstrip(".").lower() if m else None


class CQARow(BaseModel):
    """One CommonsenseQA row: the question, its answer text and the five choices."""

    model_config = ConfigDict(extra="allow")
    question: StrictStr
    answer: StrictStr
    choices: list[StrictStr] = Field(min_length=5, max_length=5)


class ESNLIRow(BaseModel):
    """One e-SNLI row: the premise/hypothesis pair, its label id and the human explanations."""

    model_config = ConfigDict(extra="allow")
    premise: StrictStr
    hypothesis: StrictStr
    label: StrictInt = Field(ge=0, le=2)
    explanation_1: StrictStr


class SVAMPRow(BaseModel):
    """One SVAMP row: the problem and the arithmetic expression that answers it."""

    model_config = ConfigDict(extra="allow")
    input: StrictStr
    label: StrictStr | StrictInt | StrictFloat


def _check_row(schema: type[BaseModel], row: Any, where: str) -> None:
    from ..runs.schemas import first_error

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


def teacher_coverage(split) -> dict[str, float | int]:
    """How many of a split's teacher completions state a parsable answer: ``n``, ``parsed``, ``share``."""
    answers = list(split["teacher_answer"])
    parsed = sum(1 for a in answers if a)
    return {"n": len(answers), "parsed": parsed, "share": parsed / max(1, len(answers))}


def _warn(message: str) -> None:
    import warnings

    warnings.warn(CoTDataWarning(message), stacklevel=3)


def _esnli_columns(rows: list[dict], completions: list[str], path: Path, where: list[str]) -> dict[str, list]:
    """e-SNLI's columns; a gold label outside {0, 1, 2} or a missing field is a :class:`CoTFormatError`."""
    for i, r in enumerate(rows):
        _check_row(ESNLIRow, r, f"{path}, example {i + 1}")
    rationales, answers, ok = [], [], []
    for c, at in zip(completions, where, strict=True):
        rat, word = esnli_rationale(c), esnli_answer(c)
        if rat is None:
            _warn(f"{at}: no 'Answer:' line, so no rationale; the row is left out of training")
        elif not rat:
            _warn(f"{at}: empty rationale before its 'Answer:' line; the row is left out of training")
        if word is not None and word not in ESNLI_LABELS:
            _warn(f"{at}: answer {word!r} is not one of {', '.join(ESNLI_LABELS)}; counted as no answer")
            word = None
        rationales.append(rat or "")
        ok.append(bool(rat))
        answers.append(word or "")
    premise = [r["premise"].strip() for r in rows]
    hypothesis = [r["hypothesis"].strip() for r in rows]
    return {"input": [f"Premise: {p}\nHypothesis: {h}" for p, h in zip(premise, hypothesis, strict=True)],
            "premise": premise, "hypothesis": hypothesis, "label": [ESNLI_LABELS[r["label"]] for r in rows],
            "label_id": [r["label"] for r in rows], "explanation": [r["explanation_1"].strip() for r in rows],
            "rationale": rationales, "rationale_ok": ok, "teacher_answer": answers,
            "choices": [list(ESNLI_LABELS)] * len(rows)}


def load_cot(dataset: str, source: str | os.PathLike | None = None, check_counts: bool = True):
    """A DatasetDict (train, test) with ``input``, ``label``, ``rationale``, ``rationale_ok``, ``teacher_answer``.

    CQA: input = question + its five answer choices, label = the answer text, plus ``choices``
    (the five texts) for choice-ranked evaluation and ``label_id`` (the answer's index). SVAMP: input = the problem,
    label = the arithmetic expression. e-SNLI: ``premise``, ``hypothesis``, ``label`` (the label word), ``label_id``
    (0-2), ``choices`` (the three label words), ``explanation`` (the first human explanation); its ``train`` split is
    the released validation split. ``teacher_answer`` is the LLM's own answer (``""`` when it states none).
    """
    from datasets import Dataset, DatasetDict

    from .arithmetic import evaluate_expression

    if dataset not in COUNTS:
        raise ValueError(f"dataset must be one of {list(COUNTS)}, got {dataset!r}")
    folder = _cot_root(source) / dataset
    splits = {}
    for split in ("train", "test"):
        name = FILE_SPLIT[dataset][split]
        path = folder / f"{dataset}_{name}.json"
        rows = _read_jsonl(path)
        completions, files, where = _read_llm(folder / "llm", name)
        if len(completions) != len(rows):
            raise CoTFormatError(
                f"{path} has {len(rows)} examples but {', '.join(f.name for f in files)} hold {len(completions)} "
                "LLM completions: the files must be in the same order and of the same length")
        if check_counts and len(rows) != COUNTS[dataset][split]:
            raise CoTFormatError(f"{path}: {len(rows)} examples, expected {COUNTS[dataset][split]} (the released split)")
        if dataset == "esnli":
            columns = _esnli_columns(rows, completions, path, where)
        else:
            if dataset == "cqa":
                inputs = [_cqa_input(r, f"{path}, example {i + 1}") for i, r in enumerate(rows)]
                labels = [r["answer"].strip() for r in rows]
                choices = [[str(c).strip() for c in r["choices"]] for r in rows]
                label_ids = []
                for i, (label, row) in enumerate(zip(labels, choices, strict=True)):
                    lowered = [c.lower() for c in row]
                    if label.lower() not in lowered:
                        raise CoTFormatError(f"{path}, example {i + 1}: answer {label!r} is not one of its five "
                                             f"choices {row}")
                    label_ids.append(lowered.index(label.lower()))
            else:
                for i, r in enumerate(rows):
                    _check_row(SVAMPRow, r, f"{path}, example {i + 1}")
                    if evaluate_expression(str(r["label"])) is None:
                        raise CoTFormatError(f"{path}, example {i + 1}: label {r['label']!r} does not evaluate to a "
                                             "finite number (numbers, + - * / and parentheses)")
                inputs = [r["input"].strip() for r in rows]
                labels = [str(r["label"]).strip() for r in rows]
                choices = None
            rationales = [rationale_of(c) for c in completions]
            for at, rat in zip(where, rationales, strict=True):
                if not rat:
                    _warn(f"{at}: empty completion, so no rationale; the row is left out of training")
            columns = {"input": inputs, "label": labels, "rationale": rationales,
                       "rationale_ok": [bool(r) for r in rationales],
                       "teacher_answer": [teacher_answer(dataset, c, choices[i] if choices else None)
                                          for i, c in enumerate(completions)]}
            if choices is not None:
                columns["question"] = [r["question"].strip() for r in rows]
                columns["choices"] = choices
                columns["label_id"] = label_ids
        if not any(columns["teacher_answer"]):
            raise CoTFormatError(f"{folder / 'llm'}: none of the {len(rows)} {name} completions states a parsable "
                                 "answer; these are not this dataset's teacher files")
        splits[split] = Dataset.from_dict(columns)
    return DatasetDict(splits)
