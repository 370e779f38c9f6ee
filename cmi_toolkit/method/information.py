"""CMI, separation and NCMI of a set of per-sample distributions (a model is measured by :mod:`.measure`).

For samples i with distributions p_i (rows of an N x K tensor: f_x in feature space, P_x in
output space) and labels y_i, with per-class centroids g_y = mean of p_i over class y:

* CMI        = (1/N) sum_i KL(p_i || g_{y_i})  = H(Y^ | Y) - H(Y^ | X, Y)   (nats)
* separation = (1/N) sum_i sum_{c != y_i} w_{i,c} H(p_i, g_c),
               H(p, q) = -sum_k p_k log q_k,  w_{i,c} = pi_c / (1 - pi_{y_i}),
               pi = class frequencies
* NCMI       = CMI / separation (lower is better for accuracy).

One weighting of Gamma everywhere (``separation``, :func:`~cmi_toolkit.method.measure.measure`, the loss's
separation term): the other class c of a row of class y weighs pi_c / (1 - pi_y), its share among the other
classes. This is DESIGN.md's definition. It follows the CMI-constrained deep-learning paper (Yang et al.,
arXiv 2309.09123), whose separation is an expectation over an independent copy (U, V) of (X, Y) with V != Y, so
the other class comes with its frequency; the kit normalises over the other classes so the weights of a row sum
to 1. The MCMI released code averages the other classes uniformly, 1/(C - 1): the two agree exactly when classes
are balanced and differ otherwise (uniform ``priors`` give the released code's value). pi is the class
frequencies of the data at hand: the labels given (by default), the training set in a trainer.

Centroids may be passed in (e.g. running FPDCs); by default they are the data's own.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["class_centroids", "class_priors", "kl_to_centroids", "conditional_mutual_information", "per_class_cmi", "separation", "per_class_separation", "ncmi"]

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
