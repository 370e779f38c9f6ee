"""Per-example predictions in a record: compact, exact, and enough to re-analyse a run without retraining.

A record's ``predictions`` block holds, for the evaluation examples in dataset order:

* ``labels`` and ``pred``: one character per example, the class id (``"0"``-``"9"``; K <= 10);
* ``prob``: the probability of the predicted class, max_c softmax(z)_c, as little-endian uint16
  q = round(65535 * p), base64-encoded (p is recovered to within 1 / 131070);
* ``n`` and ``digest``: the count and the SHA-256 (16 hex digits) of ``labels``, so two records
  can be checked to score the same examples in the same order before they are paired.

An SST-2 dev set (872 examples) takes about 4 KB. Metrics are recomputed from the confusion
matrix of (label, prediction) pairs, so the same code serves accuracy, F1 and Matthews'
correlation and exactly reproduces :func:`cmi_toolkit.data.tasks.compute_metrics`.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Predictions", "encode_predictions", "decode_predictions", "has_predictions", "confusion_counts",
           "metric_from_counts", "PredictionsError"]

MAX_CLASSES = 10


class PredictionsError(ValueError):
    """A record's predictions block is missing, damaged, or does not match another's examples."""


@dataclass(frozen=True)
class Predictions:
    """Decoded per-example predictions of one run."""

    labels: np.ndarray  # int, (N,)
    pred: np.ndarray  # int, (N,)
    prob: np.ndarray  # float, (N,): probability of the predicted class
    digest: str

    @property
    def correct(self) -> np.ndarray:
        return self.pred == self.labels

    def __len__(self) -> int:
        return int(self.labels.size)

    def score(self, metric: str, num_classes: int | None = None) -> float:
        """``metric`` (accuracy, f1 or matthews_correlation) of these predictions, from their confusion counts;
        ``num_classes`` defaults to the classes seen (at least 2)."""
        k = num_classes or max(2, int(max(self.labels.max(initial=0), self.pred.max(initial=0))) + 1)
        return float(metric_from_counts(metric, confusion_counts(self.labels, self.pred, k)))


def _digits(values: np.ndarray) -> str:
    return "".join(map(str, values.tolist()))


def _labels_digest(labels: str) -> str:
    return hashlib.sha256(labels.encode("ascii")).hexdigest()[:16]


def encode_predictions(pred: Sequence[int], prob: Sequence[float], labels: Sequence[int]) -> dict[str, Any]:
    """The record block of one run's predictions (see the module docstring)."""
    pred_a, labels_a = np.asarray(pred, dtype=np.int64).ravel(), np.asarray(labels, dtype=np.int64).ravel()
    prob_a = np.asarray(prob, dtype=np.float64).ravel()
    if not (pred_a.size == labels_a.size == prob_a.size):
        raise ValueError(f"{pred_a.size} predictions, {prob_a.size} probabilities, {labels_a.size} labels")
    for name, a in (("predictions", pred_a), ("labels", labels_a)):
        if a.size and (a.min() < 0 or a.max() >= MAX_CLASSES):
            raise ValueError(f"{name} must be class ids 0..{MAX_CLASSES - 1} to be stored compactly")
    if prob_a.size and (not np.isfinite(prob_a).all() or prob_a.min() < 0 or prob_a.max() > 1):
        raise ValueError("probabilities must lie in [0, 1]")
    q = np.round(prob_a * 65535).astype("<u2")
    label_str = _digits(labels_a)
    return {"n": int(labels_a.size), "labels": label_str, "pred": _digits(pred_a),
            "prob": base64.b64encode(q.tobytes()).decode("ascii"), "digest": _labels_digest(label_str)}


def has_predictions(record: dict[str, Any]) -> bool:
    return isinstance(record.get("predictions"), dict)


def decode_predictions(record_or_block: dict[str, Any], where: str = "record") -> Predictions:
    """The :class:`Predictions` of a record (or of its ``predictions`` block); damage is a named error."""
    block = record_or_block.get("predictions", record_or_block) if isinstance(record_or_block, dict) else None
    if not isinstance(block, dict) or "pred" not in block:
        raise PredictionsError(f"{where}: no per-example predictions (add them with `cmi-toolkit predictions`)")
    try:
        labels = np.frombuffer(block["labels"].encode("ascii"), dtype=np.uint8).astype(np.int64) - 48
        pred = np.frombuffer(block["pred"].encode("ascii"), dtype=np.uint8).astype(np.int64) - 48
        prob = np.frombuffer(base64.b64decode(block["prob"], validate=True), dtype="<u2").astype(np.float64) / 65535
    except (AttributeError, TypeError, ValueError, UnicodeEncodeError) as exc:
        raise PredictionsError(f"{where}: predictions block is damaged ({exc}); rerun or re-add the predictions") from None
    n = block.get("n")
    if not (labels.size == pred.size == prob.size == n) or (labels.size and (min(labels.min(), pred.min()) < 0
                                                                           or max(labels.max(), pred.max()) > 9)):
        raise PredictionsError(f"{where}: predictions block is damaged (lengths {labels.size}/{pred.size}/"
                               f"{prob.size}, n {n}); rerun or re-add the predictions")
    if block.get("digest") != _labels_digest(block["labels"]):
        raise PredictionsError(f"{where}: predictions block's digest does not match its labels")
    return Predictions(labels=labels, pred=pred, prob=prob, digest=block["digest"])


def confusion_counts(labels: np.ndarray, pred: np.ndarray, num_classes: int,
                     weights: np.ndarray | None = None) -> np.ndarray:
    """Confusion counts C[..., y, c] = sum_i w_i [label_i = y][pred_i = c].

    ``weights`` (B x N, e.g. bootstrap multiplicities) gives B matrices at once; None counts each example once.
    """
    cell = labels * num_classes + pred
    onehot = np.zeros((labels.size, num_classes * num_classes))
    onehot[np.arange(labels.size), cell] = 1.0
    counts = onehot.sum(0) if weights is None else weights @ onehot
    return counts.reshape(*counts.shape[:-1], num_classes, num_classes)


def metric_from_counts(metric: str, counts: np.ndarray) -> np.ndarray:
    """accuracy, f1 (binary, class 1 positive) or matthews_correlation from confusion counts [..., K, K].

    The formulas of scikit-learn (which :func:`~cmi_toolkit.data.tasks.compute_metrics` uses), vectorised over
    the leading axes: MCC = (c s - t.p) / sqrt((s^2 - p.p)(s^2 - t.t)) with t the true and p the predicted
    class counts, c the correct count and s the total; 0 where a denominator vanishes.
    """
    counts = np.asarray(counts, dtype=np.float64)
    total = counts.sum((-1, -2))
    correct = np.trace(counts, axis1=-2, axis2=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        if metric == "accuracy":
            return correct / total
        if metric == "f1":
            tp, fp, fn = counts[..., 1, 1], counts[..., 0, 1], counts[..., 1, 0]
            denom = 2 * tp + fp + fn
            return np.where(denom > 0, 2 * tp / np.where(denom > 0, denom, 1), 0.0)
        if metric == "matthews_correlation":
            t, p = counts.sum(-1), counts.sum(-2)
            cov_ytyp = correct * total - (t * p).sum(-1)
            cov_ypyp = total ** 2 - (p * p).sum(-1)
            cov_ytyt = total ** 2 - (t * t).sum(-1)
            denom = np.sqrt(cov_ytyt * cov_ypyp)
            return np.where(denom > 0, cov_ytyp / np.where(denom > 0, denom, 1), 0.0)
    raise ValueError(f"no confusion-matrix formula for metric {metric!r}")
