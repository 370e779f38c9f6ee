"""GLUE task registry: text columns, labels, file layouts and official metrics.

Each :class:`GlueTask` describes one task twice: as the hub's ``nyu-mll/glue``
config presents it (column names, label ids and names, split names) and as the
original GLUE distribution lays it out on disk (file per split, header or not,
which file column feeds which hub column). :mod:`cmi_toolkit.data.loading` reads the
second into the first.

Official metrics (computed with scikit-learn / scipy, never the hub):

* CoLA: Matthews correlation coefficient.
* MRPC, QQP: F1 of the positive class and accuracy.
* MNLI: accuracy on ``validation_matched`` and on ``validation_mismatched``
  (the caller evaluates each split; :func:`compute_metrics` scores one).
* STS-B: Pearson and Spearman correlation of the regression output.
* SST-2, QNLI, RTE, WNLI: accuracy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

__all__ = ["UnknownTaskError", "GlueTask", "TASKS", "get_task", "compute_metrics", "task_names"]


class UnknownTaskError(ValueError):
    """A task name the registry does not know; the message lists the known ones."""


@dataclass(frozen=True)
class GlueTask:
    """One GLUE task: hub schema plus on-disk layout.

    Attributes:
        name: canonical GLUE directory name (``"SST-2"``).
        hub_config: config name of ``nyu-mll/glue`` (``"sst2"``).
        text_columns: hub text columns, one or two.
        label_names: class names in hub id order; empty for regression (STS-B).
        splits: hub split name -> file name in the GLUE folder.
        header: whether the TSV files start with a header row.
        file_columns: hub column -> file column, by header name or (header-less) index.
        label_column: file column holding the label, by header name or index.
        label_is_string: labels are written as names (RTE, QNLI, MNLI) rather than ids.
        num_columns: number of tab-separated fields per row when the file has no header.
        metric_names: keys :func:`compute_metrics` returns, the first being the headline metric.
    """

    name: str
    hub_config: str
    text_columns: tuple[str, ...]
    label_names: tuple[str, ...]
    splits: dict[str, str]
    header: bool
    file_columns: dict[str, str | int]
    label_column: str | int
    label_is_string: bool = False
    num_columns: int | None = None
    metric_names: tuple[str, ...] = ("accuracy",)
    aliases: tuple[str, ...] = field(default=())

    @property
    def num_labels(self) -> int:
        """Number of model outputs: classes, or 1 for the STS-B regression."""
        return len(self.label_names) if self.label_names else 1

    @property
    def is_regression(self) -> bool:
        return not self.label_names

    @property
    def validation_splits(self) -> tuple[str, ...]:
        return tuple(s for s in self.splits if s.startswith("validation"))


_TRAIN_DEV = {"train": "train.tsv", "validation": "dev.tsv"}

TASKS: dict[str, GlueTask] = {
    t.hub_config: t
    for t in [
        GlueTask(
            name="CoLA",
            hub_config="cola",
            text_columns=("sentence",),
            label_names=("unacceptable", "acceptable"),
            splits=_TRAIN_DEV,
            header=False,
            num_columns=4,
            file_columns={"sentence": 3},
            label_column=1,
            metric_names=("matthews_correlation",),
        ),
        GlueTask(
            name="SST-2",
            hub_config="sst2",
            text_columns=("sentence",),
            label_names=("negative", "positive"),
            splits=_TRAIN_DEV,
            header=True,
            file_columns={"sentence": "sentence"},
            label_column="label",
            aliases=("sst-2", "sst"),
        ),
        GlueTask(
            name="MRPC",
            hub_config="mrpc",
            text_columns=("sentence1", "sentence2"),
            label_names=("not_equivalent", "equivalent"),
            splits=_TRAIN_DEV,
            header=True,
            file_columns={"sentence1": "#1 String", "sentence2": "#2 String"},
            label_column="Quality",
            metric_names=("f1", "accuracy"),
        ),
        GlueTask(
            name="QQP",
            hub_config="qqp",
            text_columns=("question1", "question2"),
            label_names=("not_duplicate", "duplicate"),
            splits=_TRAIN_DEV,
            header=True,
            file_columns={"question1": "question1", "question2": "question2"},
            label_column="is_duplicate",
            metric_names=("f1", "accuracy"),
        ),
        GlueTask(
            name="MNLI",
            hub_config="mnli",
            text_columns=("premise", "hypothesis"),
            label_names=("entailment", "neutral", "contradiction"),
            splits={
                "train": "train.tsv",
                "validation_matched": "dev_matched.tsv",
                "validation_mismatched": "dev_mismatched.tsv",
            },
            header=True,
            file_columns={"premise": "sentence1", "hypothesis": "sentence2"},
            label_column="gold_label",
            label_is_string=True,
        ),
        GlueTask(
            name="QNLI",
            hub_config="qnli",
            text_columns=("question", "sentence"),
            label_names=("entailment", "not_entailment"),
            splits=_TRAIN_DEV,
            header=True,
            file_columns={"question": "question", "sentence": "sentence"},
            label_column="label",
            label_is_string=True,
        ),
        GlueTask(
            name="RTE",
            hub_config="rte",
            text_columns=("sentence1", "sentence2"),
            label_names=("entailment", "not_entailment"),
            splits=_TRAIN_DEV,
            header=True,
            file_columns={"sentence1": "sentence1", "sentence2": "sentence2"},
            label_column="label",
            label_is_string=True,
        ),
        GlueTask(
            name="WNLI",
            hub_config="wnli",
            text_columns=("sentence1", "sentence2"),
            label_names=("not_entailment", "entailment"),
            splits=_TRAIN_DEV,
            header=True,
            file_columns={"sentence1": "sentence1", "sentence2": "sentence2"},
            label_column="label",
        ),
        GlueTask(
            name="STS-B",
            hub_config="stsb",
            text_columns=("sentence1", "sentence2"),
            label_names=(),
            splits=_TRAIN_DEV,
            header=True,
            file_columns={"sentence1": "sentence1", "sentence2": "sentence2"},
            label_column="score",
            metric_names=("pearson", "spearmanr"),
            aliases=("sts-b",),
        ),
    ]
}


def task_names() -> list[str]:
    """Hub config names of every registered task, in GLUE order."""
    return list(TASKS)


def get_task(name: str) -> GlueTask:
    """Look a task up by hub config name (``sst2``), GLUE name (``SST-2``) or alias."""
    key = name.strip().lower()
    for task in TASKS.values():
        if key in (task.hub_config, task.name.lower(), *task.aliases):
            return task
    known = ", ".join(f"{t.hub_config} ({t.name})" for t in TASKS.values())
    raise UnknownTaskError(f"unknown GLUE task {name!r}; known tasks: {known}")


def compute_metrics(task: GlueTask | str, predictions: Sequence, references: Sequence) -> dict[str, float]:
    """Official GLUE metric(s) of one split.

    ``predictions`` are class ids (classification) or real scores (STS-B).
    Returns a dict whose keys are ``task.metric_names``.
    """
    from scipy.stats import pearsonr, spearmanr
    from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef

    task = get_task(task) if isinstance(task, str) else task
    preds = np.asarray(predictions)
    refs = np.asarray(references)
    if preds.shape != refs.shape:
        raise ValueError(f"predictions {preds.shape} and references {refs.shape} differ in shape")
    if preds.size == 0:
        raise ValueError("cannot score an empty split")
    if task.is_regression:
        return {
            "pearson": float(pearsonr(preds, refs)[0]),
            "spearmanr": float(spearmanr(preds, refs)[0]),
        }
    out: dict[str, float] = {}
    for metric in task.metric_names:
        if metric == "accuracy":
            out[metric] = float(accuracy_score(refs, preds))
        elif metric == "f1":
            out[metric] = float(f1_score(refs, preds, zero_division=0))
        elif metric == "matthews_correlation":
            out[metric] = float(matthews_corrcoef(refs, preds))
        else:  # pragma: no cover - registry and scorer are kept in step
            raise KeyError(metric)
    return out
