"""GLUE data: the hub or a local GLUE-format folder, subsets, tokenisation, batching.

:func:`load_glue` returns a :class:`datasets.DatasetDict` with exactly the
columns, feature types and label ids of the hub's ``nyu-mll/glue`` config, from

1. an explicit ``source`` folder,
2. else the folder named by the environment variable ``CMI_TOOLKIT_GLUE_DIR``,
3. else the hub (fails within seconds with a message naming the variable when
   the hub cannot be reached).

A local folder holds the original GLUE distribution layout,
``<dir>/<TASK>/train.tsv`` and ``dev.tsv`` (MNLI: ``dev_matched.tsv`` and
``dev_mismatched.tsv``). Texts are never quoted in those files, so rows are split
on tabs alone. Every malformed row is an error naming the file, the line and the
expected layout; no row is dropped silently.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from datasets import ClassLabel, Dataset, DatasetDict, Features, Value
from torch.utils.data import DataLoader, Sampler

from .hub import require_hub
from .tasks import GlueTask, get_task

__all__ = [
    "GLUE_DIR_ENV",
    "GlueFormatError",
    "DataChangedError",
    "verify_read",
    "glue_features",
    "read_glue_split",
    "read_utf8",
    "split_rows",
    "load_glue",
    "subset",
    "subset_indices",
    "glue_fingerprint",
    "tokenize_glue",
    "LengthSortedSampler",
    "make_dataloader",
]

GLUE_DIR_ENV = "CMI_TOOLKIT_GLUE_DIR"


class GlueFormatError(ValueError):
    """A GLUE file does not match its task's layout; the message names file, line and fix."""


def glue_features(task: GlueTask) -> Features:
    """The hub's feature schema of ``task``: text columns, label, ``idx``."""
    cols: dict[str, Any] = {c: Value("string") for c in task.text_columns}
    cols["label"] = Value("float32") if task.is_regression else ClassLabel(names=list(task.label_names))
    cols["idx"] = Value("int32")
    return Features(cols)


def _layout(task: GlueTask) -> str:
    if task.header:
        cols = sorted({*map(str, task.file_columns.values()), str(task.label_column)})
        return f"a header row naming at least {cols}, then one tab-separated row per example"
    return (
        f"no header row; {task.num_columns} tab-separated fields per row, "
        f"label in field {int(task.label_column) + 1}, text in field "
        + ", ".join(str(int(i) + 1) for i in task.file_columns.values())
    )


def _parse_label(task: GlueTask, raw: str, where: str) -> int | float:
    value = raw.strip()
    if task.is_regression:
        try:
            return float(value)
        except ValueError:
            raise GlueFormatError(f"{where}: label {raw!r} is not a number ({task.name} scores are floats)") from None
    if task.label_is_string:
        if value in task.label_names:
            return task.label_names.index(value)
        raise GlueFormatError(
            f"{where}: unknown label {raw!r}; {task.name} labels are {list(task.label_names)}"
        )
    if value.isascii() and value.isdigit() and int(value) < len(task.label_names):
        return int(value)
    raise GlueFormatError(
        f"{where}: unknown label {raw!r}; {task.name} labels are ids 0..{len(task.label_names) - 1} "
        f"({', '.join(f'{i}={n}' for i, n in enumerate(task.label_names))})"
    )


#: sha256 of the bytes each file last gave :func:`read_utf8` (what a run actually read)
_LAST_READ: dict[str, str] = {}


class DataChangedError(ValueError):
    """A data file's bytes changed between the fingerprint a run was keyed with and the read it trained on."""


def verify_read(fingerprint: dict[str, Any], task: GlueTask | str) -> None:
    """Raise :class:`DataChangedError` unless every split file :func:`load_glue` read for ``task`` had the
    bytes ``fingerprint`` (:func:`glue_fingerprint`) hashed: the record then names the data it trained on."""
    task = get_task(task) if isinstance(task, str) else task
    if fingerprint.get("source") in (None, "hub"):
        return
    folder = _task_folder(task, Path(fingerprint["source"]))
    for split, filename in task.splits.items():
        path = str((folder / filename).resolve())
        read, keyed = _LAST_READ.get(path), fingerprint["files"].get(split)
        if read is not None and keyed is not None and read != keyed:
            raise DataChangedError(
                f"{folder / filename}: the file changed while the run was being prepared (sha256 {keyed[:12]}... "
                f"when the run was keyed, {read[:12]}... when it was read); nothing was recorded: leave the data "
                "alone during a run and run the same command again")


def read_utf8(path: Path, error: type[Exception] | None = None) -> str:
    """The file's text (a leading byte-order mark, as in MRPC, is dropped).

    A byte that is not UTF-8 raises ``error`` (default :class:`GlueFormatError`) naming the file and line.
    """
    raw = path.read_bytes()
    _LAST_READ[str(Path(path).resolve())] = hashlib.sha256(raw).hexdigest()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise (error or GlueFormatError)(
            f"{path}, line {line}: byte {raw[exc.start:exc.start + 1]!r} is not UTF-8; "
            "re-save the file as UTF-8 (e.g. iconv -f latin1 -t utf-8)"
        ) from None


def split_rows(text: str) -> list[str]:
    """The rows of a data file: split on \n alone (a \r before it, as in CRLF files, is dropped; no empty last
    row). U+2028, NEL, form feed or a lone \r inside a sentence are text, not row breaks."""
    lines = [line[:-1] if line.endswith("\r") else line for line in text.split("\n")]
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def read_glue_split(task: GlueTask | str, path: str | os.PathLike) -> Dataset:
    """Read one GLUE TSV file of ``task`` into a hub-schema :class:`datasets.Dataset`."""
    task = get_task(task) if isinstance(task, str) else task
    path = Path(path)
    if not path.is_file():
        raise GlueFormatError(f"{path}: missing file; expected {task.name} split in the GLUE layout ({_layout(task)})")
    text = read_utf8(path)
    lines = split_rows(text)
    if not lines:
        raise GlueFormatError(f"{path}: empty file; expected {_layout(task)}")
    if task.header and len(lines) == 1:
        raise GlueFormatError(f"{path}: one line ({len(lines[0]):,} characters) and no data rows after it; "
                              f"expected {_layout(task)}")

    first_line = 1
    if task.header:
        header = lines[0].split("\t")
        missing = [c for c in [*task.file_columns.values(), task.label_column] if c not in header]
        if missing:
            raise GlueFormatError(
                f"{path}, line 1: header {header} lacks column(s) {missing}; expected {_layout(task)}"
            )
        width = len(header)
        index = {c: header.index(c) for c in [*task.file_columns.values(), task.label_column]}
        lines, first_line = lines[1:], 2
    else:
        width = int(task.num_columns or 0)
        index = {c: int(c) for c in [*task.file_columns.values(), task.label_column]}

    columns: dict[str, list] = {c: [] for c in task.text_columns}
    labels: list[int | float] = []
    for lineno, line in enumerate(lines, start=first_line):
        if not line.strip():
            raise GlueFormatError(f"{path}, line {lineno}: blank line inside the data; expected {_layout(task)}")
        fields = line.split("\t")
        if len(fields) != width:
            raise GlueFormatError(
                f"{path}, line {lineno}: {len(fields)} tab-separated fields, expected {width} "
                f"({_layout(task)}); texts must not contain tabs or line breaks"
            )
        for hub_col, file_col in task.file_columns.items():
            columns[hub_col].append(fields[index[file_col]])
        labels.append(_parse_label(task, fields[index[task.label_column]], f"{path}, line {lineno}"))

    data = {**columns, "label": labels, "idx": list(range(len(labels)))}
    return Dataset.from_dict(data, features=glue_features(task))


def _task_folder(task: GlueTask, root: Path) -> Path:
    """``root/<TASK>`` (or ``root/<hub config>``) holding the task's split files."""
    folder = root / task.name
    if not folder.is_dir():
        # accept the hub config name too (<dir>/sst2)
        alt = root / task.hub_config
        if alt.is_dir():
            return alt
        raise GlueFormatError(
            f"{folder}: missing task folder; expected {root}/{task.name}/ holding "
            + ", ".join(task.splits.values())
        )
    for split, filename in task.splits.items():
        if not (folder / filename).is_file():
            raise GlueFormatError(
                f"{folder / filename}: missing split {split!r}; a {task.name} folder holds "
                + ", ".join(task.splits.values())
            )
    return folder


def _load_local(task: GlueTask, root: Path) -> DatasetDict:
    folder = _task_folder(task, root)
    return DatasetDict({split: read_glue_split(task, folder / filename) for split, filename in task.splits.items()})


def resolve_source(source: str | os.PathLike | None) -> str | Path:
    """``"hub"`` or an existing GLUE folder: the explicit source, else $CMI_TOOLKIT_GLUE_DIR, else the hub."""
    if source is None:
        source = os.environ.get(GLUE_DIR_ENV) or "hub"
    if str(source) == "hub":
        return "hub"
    root = Path(source).expanduser()
    if not root.is_dir():
        raise GlueFormatError(
            f"{root}: GLUE folder not found; pass a folder holding GLUE task folders (e.g. SST-2/train.tsv) "
            f"with --glue_dir, or set {GLUE_DIR_ENV}"
        )
    return root.resolve()


def load_glue(
    task: GlueTask | str,
    source: str | os.PathLike | None = None,
    max_train_samples: int | None = None,
    max_eval_samples: int | None = None,
    seed: int = 0,
) -> DatasetDict:
    """Load a GLUE task with the hub's schema.

    Args:
        task: task name (``"sst2"``, ``"SST-2"``) or :class:`GlueTask`.
        source: a GLUE folder (holding ``<TASK>/train.tsv``...), or ``"hub"`` to force the hub.
            ``None`` means ``$CMI_TOOLKIT_GLUE_DIR`` if set, else the hub.
        max_train_samples, max_eval_samples: seeded random subsets of the train and validation
            splits (see :func:`subset`).
        seed: seed of those subsets.
    """
    task = get_task(task) if isinstance(task, str) else task
    source = resolve_source(source)
    if source == "hub":
        require_hub(
            f"Loading GLUE {task.name} from nyu-mll/glue",
            f"Pass a local GLUE folder (source=... or --glue-dir) or set {GLUE_DIR_ENV} to a folder "
            f"in the original GLUE layout (<dir>/{task.name}/train.tsv, dev.tsv).",
        )
        from datasets import load_dataset

        ds = load_dataset("nyu-mll/glue", task.hub_config)
        ds = DatasetDict({k: v for k, v in ds.items() if not k.startswith("test")})
    else:
        ds = _load_local(task, source)
    for split in list(ds):
        limit = max_train_samples if split == "train" else max_eval_samples
        ds[split] = subset(ds[split], limit, seed)
    return ds


def subset_indices(n: int, max_samples: int | None, seed: int = 0) -> np.ndarray | None:
    """Row indices of the seeded subset of ``max_samples`` of ``n`` rows, sorted; None means all rows."""
    if max_samples is not None and max_samples <= 0:
        raise ValueError(f"max_samples must be positive, got {max_samples}")
    if max_samples is None or max_samples >= n:
        return None
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n, size=max_samples, replace=False))


def subset(dataset: Dataset, max_samples: int | None, seed: int = 0) -> Dataset:
    """A seeded random subset of ``max_samples`` rows, kept in original order (all rows if None).

    Asking for more rows than the split has keeps all of them, with a warning.
    """
    if max_samples is not None and max_samples > len(dataset):
        import warnings

        warnings.warn(f"asked for {max_samples} rows but the split has {len(dataset)}: using all {len(dataset)}",
                      stacklevel=2)
    keep = subset_indices(len(dataset), max_samples, seed)
    return dataset if keep is None else dataset.select(keep.tolist())


_HASH_CACHE: dict[tuple[str, int, int], tuple[str, int]] = {}


def _file_digest(path: Path) -> tuple[str, int]:
    """(sha256 of the file's bytes, number of non-blank lines), cached by path, size and mtime."""
    st = path.stat()
    cache_key = (str(path), st.st_size, st.st_mtime_ns)
    if cache_key not in _HASH_CACHE:
        raw = path.read_bytes()
        lines = sum(1 for line in raw.split(b"\n") if line.strip())  # rows as read_glue_split splits them
        _HASH_CACHE[cache_key] = (hashlib.sha256(raw).hexdigest(), lines)
    return _HASH_CACHE[cache_key]


def glue_fingerprint(task: GlueTask | str, source: str | os.PathLike | None = None,
                     max_train_samples: int | None = None, max_eval_samples: int | None = None,
                     seed: int = 0) -> dict[str, Any]:
    """What :func:`load_glue` with the same arguments reads: file hashes and subset indices.

    Returns ``{"source", "files": {split: sha256}, "rows": {split: n}, "subsets": {split: sha256 of
    the selected indices or "all"}, "digest"}``; ``digest`` (16 hex digits) changes whenever any
    file's bytes or any selected row changes. For the hub the files are named, not hashed.
    """
    task = get_task(task) if isinstance(task, str) else task
    source = resolve_source(source)
    info: dict[str, Any] = {"task": task.hub_config, "source": str(source), "files": {}, "rows": {}, "subsets": {}}
    if source == "hub":
        info["files"] = {split: f"hub:nyu-mll/glue/{task.hub_config}/{split}" for split in task.splits}
        info["subsets"] = {split: f"max={max_train_samples if split == 'train' else max_eval_samples},seed={seed}"
                           for split in task.splits}
    else:
        folder = _task_folder(task, source)
        for split, filename in task.splits.items():
            digest, lines = _file_digest(folder / filename)
            rows = lines - (1 if task.header else 0)
            limit = max_train_samples if split == "train" else max_eval_samples
            keep = subset_indices(rows, limit, seed)
            info["files"][split] = digest
            info["rows"][split] = rows
            info["subsets"][split] = "all" if keep is None else hashlib.sha256(keep.astype(np.int64).tobytes()).hexdigest()[:16]
    canonical = repr(sorted((k, sorted(v.items())) for k, v in info.items() if isinstance(v, dict)))
    info["digest"] = hashlib.sha256(canonical.encode()).hexdigest()[:16]
    return info


def tokenize_glue(dataset: Dataset | DatasetDict, tokenizer, task: GlueTask | str, max_length: int = 128):
    """Tokenise without padding (the collator pads each batch to its longest row).

    Adds ``input_ids``, ``attention_mask`` (and ``token_type_ids``) and ``length``; keeps ``label``
    and ``idx`` and drops the text columns.
    """
    task = get_task(task) if isinstance(task, str) else task

    def encode(batch):
        texts = [batch[c] for c in task.text_columns]
        enc = tokenizer(*texts, truncation=True, max_length=max_length)
        enc["length"] = [len(ids) for ids in enc["input_ids"]]
        return enc

    return dataset.map(encode, batched=True, remove_columns=list(task.text_columns), desc="tokenise")


class LengthSortedSampler(Sampler[int]):
    """Indices in order of increasing length: evaluation batches with the least padding."""

    def __init__(self, lengths):
        self.order = np.argsort(np.asarray(lengths), kind="stable").tolist()

    def __iter__(self) -> Iterator[int]:
        return iter(self.order)

    def __len__(self) -> int:
        return len(self.order)


def make_dataloader(
    dataset: Dataset,
    tokenizer,
    batch_size: int = 32,
    shuffle: bool = False,
    group_by_length: bool = True,
    seed: int = 0,
) -> DataLoader:
    """Batches padded dynamically to their longest row.

    Training (``shuffle=True``) with ``group_by_length`` uses transformers' ``LengthGroupedSampler``
    (random mega-batches sorted by length); evaluation with ``group_by_length`` walks the rows in
    length order. Model inputs only: ``label`` becomes ``labels``; ``idx`` is kept so callers can
    restore the original order.
    """
    from transformers import DataCollatorWithPadding
    from transformers.trainer_pt_utils import LengthGroupedSampler

    keep = [c for c in ("input_ids", "attention_mask", "token_type_ids", "label", "idx") if c in dataset.column_names]
    lengths = dataset["length"] if "length" in dataset.column_names else [len(x) for x in dataset["input_ids"]]
    data = dataset.select_columns(keep).with_format("torch")
    sampler: Sampler[int] | None
    if shuffle and group_by_length:
        generator = torch.Generator().manual_seed(seed)
        sampler = LengthGroupedSampler(batch_size, lengths=list(lengths), generator=generator)
    elif shuffle:
        sampler = None
    elif group_by_length:
        sampler = LengthSortedSampler(lengths)
    else:
        sampler = None
    collate = DataCollatorWithPadding(tokenizer)  # pads, and renames label -> labels

    return DataLoader(
        data,
        batch_size=batch_size,
        sampler=sampler,
        shuffle=shuffle and sampler is None,
        collate_fn=collate,
        generator=torch.Generator().manual_seed(seed) if shuffle and sampler is None else None,
    )
