"""CMI, separation and NCMI of a set of per-sample distributions, and :func:`measure` of a model.

For samples i with distributions p_i (rows of an N x K tensor: f_x in feature space, P_x in
output space) and labels y_i, with per-class centroids g_y = mean of p_i over class y:

* CMI        = (1/N) sum_i KL(p_i || g_{y_i})  = H(Y^ | Y) - H(Y^ | X, Y)   (nats)
* separation = (1/N) sum_i sum_{c != y_i} w_{i,c} H(p_i, g_c),
               H(p, q) = -sum_k p_k log q_k,  w_{i,c} = pi_c / (1 - pi_{y_i}),
               pi = class frequencies
* NCMI       = CMI / separation (lower is better for accuracy).

Centroids may be passed in (e.g. running FPDCs); by default they are the data's own.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor
from tqdm.auto import tqdm

from .defaults import POOLING, TEMPERATURE

__all__ = [
    "class_centroids",
    "class_priors",
    "kl_to_centroids",
    "conditional_mutual_information",
    "per_class_cmi",
    "separation",
    "per_class_separation",
    "ncmi",
    "SpaceReport",
    "MeasureReport",
    "measure",
]

EPS = 1e-12


def _check(probs: Tensor, labels: Tensor, num_classes: int) -> tuple[Tensor, Tensor]:
    if probs.dim() != 2:
        raise ValueError(f"probs must be N x K, got shape {tuple(probs.shape)}")
    labels = torch.as_tensor(labels, device=probs.device).long().view(-1)
    if labels.numel() != probs.shape[0]:
        raise ValueError(f"{probs.shape[0]} rows of probs but {labels.numel()} labels")
    if labels.numel() and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(f"labels must lie in 0..{num_classes - 1}")
    return probs, labels


def class_centroids(probs: Tensor, labels: Tensor, num_classes: int) -> Tensor:
    """g_y = mean of the rows of class y (C x K); a class with no rows gets the uniform row."""
    probs, labels = _check(probs, labels, num_classes)
    sums = torch.zeros(num_classes, probs.shape[1], dtype=probs.dtype, device=probs.device)
    sums.index_add_(0, labels, probs)
    counts = torch.bincount(labels, minlength=num_classes).to(probs.dtype)
    uniform = torch.full_like(sums, 1.0 / probs.shape[1])
    return torch.where(counts[:, None] > 0, sums / counts.clamp_min(1)[:, None], uniform)


def class_priors(labels: Tensor, num_classes: int) -> Tensor:
    """pi_c: class frequencies of ``labels``."""
    labels = torch.as_tensor(labels).long().view(-1)
    counts = torch.bincount(labels, minlength=num_classes).double()
    return counts / counts.sum().clamp_min(1)


def kl_to_centroids(probs: Tensor, labels: Tensor, centroids: Tensor) -> Tensor:
    """KL(p_i || g_{y_i}) per row, with 0 log 0 = 0."""
    g = centroids[labels]
    return (torch.xlogy(probs, probs) - probs * torch.log(g.clamp_min(EPS))).sum(-1)


def conditional_mutual_information(probs: Tensor, labels: Tensor, num_classes: int,
                                   centroids: Tensor | None = None) -> Tensor:
    """CMI = (1/N) sum_i KL(p_i || g_{y_i}) in nats (a 0-dim tensor, differentiable in ``probs``)."""
    probs, labels = _check(probs, labels, num_classes)
    if centroids is None:
        centroids = class_centroids(probs, labels, num_classes)
    return kl_to_centroids(probs, labels, centroids).mean()


def per_class_cmi(probs: Tensor, labels: Tensor, num_classes: int, centroids: Tensor | None = None) -> Tensor:
    """E[KL(p_X || g_y) | Y = y] for each class y (C values; NaN for a class with no rows)."""
    probs, labels = _check(probs, labels, num_classes)
    if centroids is None:
        centroids = class_centroids(probs, labels, num_classes)
    kl = kl_to_centroids(probs, labels, centroids)
    sums = torch.zeros(num_classes, dtype=kl.dtype, device=kl.device).index_add_(0, labels, kl)
    counts = torch.bincount(labels, minlength=num_classes).to(kl.dtype)
    return sums / counts


def _separation_rows(probs: Tensor, labels: Tensor, num_classes: int, centroids: Tensor | None,
                     priors: Tensor | None) -> Tensor:
    if centroids is None:
        centroids = class_centroids(probs, labels, num_classes)
    if priors is None:
        priors = class_priors(labels, num_classes)
    priors = priors.to(probs.dtype).to(probs.device)
    cross = -(probs @ torch.log(centroids.clamp_min(EPS)).T)  # N x C: H(p_i, g_c)
    weights = priors[None, :] / (1 - priors[labels]).clamp_min(EPS)[:, None]
    weights = weights.scatter(1, labels[:, None], 0.0)  # c != y_i
    return (weights * cross).sum(-1)


def separation(probs: Tensor, labels: Tensor, num_classes: int, centroids: Tensor | None = None,
               priors: Tensor | None = None) -> Tensor:
    """Gamma = (1/N) sum_i sum_{c != y_i} pi_c / (1 - pi_{y_i}) * H(p_i, g_c)."""
    probs, labels = _check(probs, labels, num_classes)
    return _separation_rows(probs, labels, num_classes, centroids, priors).mean()


def per_class_separation(probs: Tensor, labels: Tensor, num_classes: int, centroids: Tensor | None = None,
                         priors: Tensor | None = None) -> Tensor:
    """Gamma restricted to the rows of each class (C values)."""
    probs, labels = _check(probs, labels, num_classes)
    rows = _separation_rows(probs, labels, num_classes, centroids, priors)
    sums = torch.zeros(num_classes, dtype=rows.dtype, device=rows.device).index_add_(0, labels, rows)
    return sums / torch.bincount(labels, minlength=num_classes).to(rows.dtype)


def ncmi(probs: Tensor, labels: Tensor, num_classes: int, centroids: Tensor | None = None,
         priors: Tensor | None = None) -> Tensor:
    """NCMI = CMI / Gamma."""
    if centroids is None:
        probs, labels = _check(probs, labels, num_classes)
        centroids = class_centroids(probs, labels, num_classes)
    return conditional_mutual_information(probs, labels, num_classes, centroids) / separation(
        probs, labels, num_classes, centroids, priors
    )


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
        """The record's compact per-example predictions (:func:`cmi_toolkit.predictions.encode_predictions`)."""
        from .predictions import encode_predictions

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

    ``dataset`` is a tokenised :class:`datasets.Dataset` (see :func:`cmi_toolkit.data.tokenize_glue`)
    batched with dynamic padding in length order, or a ready DataLoader. ``task`` (optional) adds
    the task's official metrics. Feature-space figures use f_x = softmax(h_x / temperature),
    output-space figures P_x = softmax(logits / output_temperature).
    """
    from .data import make_dataloader
    from .markov import MarkovSourceView
    from .tasks import compute_metrics, get_task

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
