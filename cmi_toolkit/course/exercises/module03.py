"""Course module 03, centroids and clusters: the EMA centroid update, and KL per example: references, typical mistakes and their hints."""

from __future__ import annotations

import torch

from .exercise import Exercise, Mistake
from .inputs import _classes, _ema_inputs, _probs_labels
from .references import _centroids, _kl_rows


def _kl_rows_reference(probs, labels, c):
    from ...method.information import class_centroids, kl_to_centroids

    return kl_to_centroids(probs, labels, class_centroids(probs, labels, c))


def _ema_reference(centroids, probs, labels, m):
    from ...method.fpdc import CentroidEstimator

    est = CentroidEstimator(centroids.shape[0], probs.shape[1], mode="ema", momentum=m, dtype=torch.float64)
    est.centroids, est.seen = centroids.clone(), torch.ones(centroids.shape[0], dtype=torch.long)
    est.update_ema(probs, labels)
    return est.centroids


def _ema_with(centroids, probs, labels, m, swap=False, every=False):
    out = centroids.clone()
    keep, new = ((1 - m), m) if swap else (m, (1 - m))
    for c in range(centroids.shape[0]):
        rows = probs[labels == c]
        if len(rows):
            out[c] = keep * centroids[c] + new * rows.mean(0)
        elif every:
            out[c] = keep * centroids[c] + new * probs.mean(0)
    return out


EXERCISES: dict[str, Exercise] = {
    "ema_update": Exercise(
        "03", "ema_update(centroids, probs, labels, m): g_y <- m g_y + (1 - m) batch mean of class y, for the classes "
        "in the batch", _ema_reference, _ema_inputs,
        "a class absent from the batch keeps its centroid; the batch mean is over that class's rows only; m "
        "multiplies the *old* centroid.",
        {"swapped_momentum": Mistake(lambda *a: _ema_with(*a, swap=True),
                                     "m multiplies the *old* centroid: g_y <- m g_y + (1 - m) mean."),
         "moves_absent_class": Mistake(lambda *a: _ema_with(*a, every=True),
                                       "a class with no rows in the batch must keep its centroid."),
         "whole_batch_mean": Mistake(lambda g, p, y, m: m * g + (1 - m) * p.mean(0),
                                     "each class moves towards the mean of *its own* rows in the batch, and only the "
                                     "classes present move.")}),
    "kl_per_example": Exercise(
        "03", "kl_per_example(probs, labels, num_classes): the N values KL(p_i || g_{y_i}) (their mean is the CMI)",
        _kl_rows_reference, _probs_labels,
        "one value per row: the KL from row i's distribution to its *own* class centroid g_{y_i} (the class mean).",
        {"nearest_centroid": Mistake(lambda p, y, c: torch.stack([_kl_rows(p, g.expand_as(p)) for g in
                                                                  _centroids(p, y, c)], 1).min(1).values,
                                     "you measured the KL to the nearest centroid: CMI uses the row's own class "
                                     "centroid g_{y_i}, even when another class's centroid is closer (that row is "
                                     "where the model confuses classes)."),
         "reversed_kl": Mistake(lambda p, y, c: _kl_rows(_centroids(p, y, c)[y], p),
                                "your KL runs the wrong way round: KL(p_i || g_{y_i}), weighed by p_i.")},
        _classes),
}
