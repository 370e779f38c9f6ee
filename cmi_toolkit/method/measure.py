"""Measuring a model: :func:`measure` makes one no-grad pass and returns CMI, separation and NCMI in both spaces.

The quantities are those of :mod:`~cmi_toolkit.method.information`, computed on the per-sample distributions
of the Markov-source view (:class:`~cmi_toolkit.method.markov.MarkovSourceView`): f_x = softmax(h_x / T) in
feature space and P_x = softmax(z_x) in output space, with per-class centroids over the whole evaluation set.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor
from tqdm.auto import tqdm

from ..defaults import POOLING, TEMPERATURE
from .information import (
    class_centroids,
    conditional_mutual_information,
    per_class_cmi,
    per_class_separation,
    separation,
)

__all__ = ["SpaceReport", "MeasureReport", "measure"]


@dataclass
class SpaceReport:
    """CMI, separation and NCMI in one space, overall and per class, with the centroids."""

    cmi: float
    separation: float
    ncmi: float
    per_class_cmi: list[float]
    per_class_separation: list[float]
    centroids: Tensor

    @classmethod
    def from_probs(cls, probs: Tensor, labels: Tensor, num_classes: int) -> SpaceReport:
        probs = probs.double()
        g = class_centroids(probs, labels, num_classes)
        cmi = conditional_mutual_information(probs, labels, num_classes, g).item()
        gamma = separation(probs, labels, num_classes, g).item()
        return cls(
            cmi=cmi,
            separation=gamma,
            ncmi=cmi / gamma if gamma > 0 else float("nan"),
            per_class_cmi=per_class_cmi(probs, labels, num_classes, g).tolist(),
            per_class_separation=per_class_separation(probs, labels, num_classes, g).tolist(),
            centroids=g.float(),
        )


@dataclass
class MeasureReport:
    """What :func:`measure` finds: accuracy and both spaces' information measures.

    ``features``, ``logits`` and ``labels`` are kept (in dataset order) for plots.
    """

    accuracy: float
    num_samples: int
    feature: SpaceReport
    output: SpaceReport
    metrics: dict[str, float] = field(default_factory=dict)
    #: share of predictions in the most-predicted class, and mean max_c softmax(z)_c at T = 1
    majority_prediction_share: float = float("nan")
    mean_max_prob: float = float("nan")
    features: Tensor | None = None
    logits: Tensor | None = None
    labels: Tensor | None = None
    #: per-example argmax class, probability of that class (T = 1) and label, in dataset order (always kept)
    predicted: Tensor | None = None
    confidence: Tensor | None = None
    targets: Tensor | None = None

    def prediction_block(self) -> dict:
        """The record's compact per-example predictions (:func:`cmi_toolkit.data.predictions.encode_predictions`)."""
        from ..data.predictions import encode_predictions

        if self.predicted is None:
            raise ValueError("this report kept no per-example predictions")
        return encode_predictions(self.predicted.numpy(), self.confidence.numpy(), self.targets.numpy())

    def summary(self) -> dict[str, float]:
        """Flat dict of the headline numbers (for tables and JSON)."""
        out = {"accuracy": self.accuracy, "num_samples": self.num_samples,
               "majority_prediction_share": self.majority_prediction_share, "mean_max_prob": self.mean_max_prob}
        for space in ("feature", "output"):
            rep: SpaceReport = getattr(self, space)
            out.update({f"{space}_cmi": rep.cmi, f"{space}_separation": rep.separation, f"{space}_ncmi": rep.ncmi})
        out.update(self.metrics)
        return out


@torch.no_grad()
def measure(model, dataset, tokenizer=None, task=None, batch_size: int = 64, pooling: str = POOLING,
            temperature: float = TEMPERATURE, output_temperature: float = 1.0, keep_outputs: bool = True,
            progress: bool = True) -> MeasureReport:
    """One no-grad pass over a tokenised dataset (or a DataLoader): accuracy, CMI, Gamma, NCMI.

    ``dataset`` is a tokenised :class:`datasets.Dataset` (see :func:`cmi_toolkit.data.loading.tokenize_glue`)
    batched with dynamic padding in length order, or a ready DataLoader. ``task`` (optional) adds
    the task's official metrics. Feature-space figures use f_x = softmax(h_x / temperature),
    output-space figures P_x = softmax(logits / output_temperature).
    """
    from ..data.loading import make_dataloader
    from ..data.tasks import compute_metrics, get_task
    from .markov import MarkovSourceView

    if isinstance(dataset, torch.utils.data.DataLoader):
        loader = dataset
    else:
        if tokenizer is None:
            raise ValueError("measure() needs the tokenizer to batch a dataset")
        loader = make_dataloader(dataset, tokenizer, batch_size=batch_size, shuffle=False, group_by_length=True)
    view = MarkovSourceView(model, pooling=pooling, temperature=temperature, output_temperature=output_temperature)
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    feats, logits, labels, order = [], [], [], []
    rng = torch.random.fork_rng(devices=[])  # measuring leaves training's random stream untouched
    rng.__enter__()
    try:
        for batch in tqdm(loader, desc="measure", disable=not progress, leave=False):
            idx = batch.pop("idx", None)
            y = batch.pop("labels")
            out = view(**{k: v.to(device) for k, v in batch.items()})
            feats.append(out.features.float().cpu())
            logits.append(out.logits.float().cpu())
            labels.append(y.cpu())
            if idx is not None:
                order.append(idx.cpu())
    finally:
        model.train(was_training)
        rng.__exit__(None, None, None)
    h, z, y = torch.cat(feats), torch.cat(logits), torch.cat(labels).long()
    if order:
        perm = torch.argsort(torch.cat(order))
        h, z, y = h[perm], z[perm], y[perm]
    num_classes = z.shape[1]
    if num_classes < 2:
        raise ValueError("measure() needs a classifier (2 or more outputs); STS-B-style regression has no CMI")
    preds = z.argmax(-1)
    probs_t1 = torch.softmax(z.double(), -1)
    metrics = {}
    if task is not None:
        metrics = compute_metrics(get_task(task) if isinstance(task, str) else task, preds.numpy(), y.numpy())
    report = MeasureReport(
        accuracy=float((preds == y).double().mean()),
        num_samples=int(y.numel()),
        feature=SpaceReport.from_probs(torch.softmax(h.double() / temperature, -1), y, num_classes),
        output=SpaceReport.from_probs(torch.softmax(z.double() / output_temperature, -1), y, num_classes),
        metrics={k: float(np.asarray(v)) for k, v in metrics.items()},
        majority_prediction_share=float(torch.bincount(preds, minlength=num_classes).max() / max(1, preds.numel())),
        mean_max_prob=float(probs_t1.max(-1).values.mean()),
        predicted=preds, confidence=probs_t1.max(-1).values.float(), targets=y,
    )
    if keep_outputs:
        report.features, report.logits, report.labels = h, z, y
    return report
