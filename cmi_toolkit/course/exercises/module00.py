"""Course module 00, the Markov-source view: plug-in CMI, and CMI from entropies: references, typical mistakes and their hints."""

from __future__ import annotations

import math

import torch

from .exercise import Exercise, Mistake
from .inputs import _classes, _probs_labels
from .references import _centroids, _entropy_rows, _kl_rows


def _cmi_reference(probs, labels, c):
    from ...method.information import conditional_mutual_information

    return conditional_mutual_information(probs, labels, c)


def _cmi_per_class(probs, labels, c):
    kl = _kl_rows(probs, _centroids(probs, labels, c)[labels])
    return torch.stack([kl[labels == k].mean() for k in range(c)]).mean()


def _cmi_entropies_with(probs, labels, c, unweighted=False, marginal=False, swapped=False):
    if marginal:
        cond = _entropy_rows(probs.mean(0))
    elif unweighted:
        cond = _entropy_rows(_centroids(probs, labels, c)).mean()
    else:
        cond = _entropy_rows(_centroids(probs, labels, c)[labels]).mean()
    given_x = _entropy_rows(probs).mean()
    return given_x - cond if swapped else cond - given_x


EXERCISES: dict[str, Exercise] = {
    "plugin_cmi": Exercise(
        "00", "plugin_cmi(probs, labels, num_classes): (1/N) sum_i KL(p_i || g_{y_i}) with g_y the class means",
        _cmi_reference, _probs_labels,
        "g_y is the mean of the rows of class y; KL(p || g) = sum_k p_k (log p_k - log g_k), averaged over all N "
        "rows.",
        {"per_class_mean": Mistake(_cmi_per_class, "you averaged per class; average per example (the mean over all "
                                   "N rows, so a large class weighs more: that is E over X and Y)."),
         "ignores_labels": Mistake(lambda p, y, c: _kl_rows(p, p.mean(0).expand_as(p)).mean(),
                                   "you used one centroid for all rows (the overall mean): that is I(X; Z), not the "
                                   "conditional I(X; Z | Y); use g_{y_i}, the mean of row i's own class."),
         "reversed_kl": Mistake(lambda p, y, c: _kl_rows(_centroids(p, y, c)[y], p).mean(),
                                "your KL runs the wrong way round: KL(p_i || g_{y_i}) = sum_k p_ik log(p_ik / g_k), "
                                "with p_i as the weights."),
         "bits": Mistake(lambda p, y, c: _cmi_reference(p, y, c) / math.log(2),
                         "your value is in bits (log base 2): the kit measures information in nats, so use the natural "
                         "log (torch.log), not log2."),
         "sum_not_mean": Mistake(lambda p, y, c: _cmi_reference(p, y, c) * len(y),
                                 "you summed the per-example KL terms: CMI is their mean, (1/N) sum_i, so it does not "
                                 "grow with the number of rows.")},
        _classes),
    "cmi_from_entropies": Exercise(
        "00", "cmi_from_entropies(probs, labels, num_classes): H(Ŷ | Y) − H(Ŷ | X) = (1/N) sum_i H(g_{y_i}) − (1/N) "
        "sum_i H(p_i)", _cmi_reference, _probs_labels,
        "H(q) = −sum_k q_k log q_k; H(Ŷ | X) is the mean entropy of the rows p_i, H(Ŷ | Y) the mean over all N rows "
        "of the entropy of their class centroid g_{y_i}; CMI = H(Ŷ | Y) − H(Ŷ | X).",
        {"unweighted_classes": Mistake(lambda p, y, c: _cmi_entropies_with(p, y, c, unweighted=True),
                                       "you averaged H(g_c) over the classes equally: H(Ŷ | Y) = sum_c pi_c H(g_c), "
                                       "each class weighed by its share of the rows (average over the N rows)."),
         "marginal_entropy": Mistake(lambda p, y, c: _cmi_entropies_with(p, y, c, marginal=True),
                                     "you used the entropy of the overall mean, H(Ŷ): that gives I(X; Ŷ); condition "
                                     "on Y with each row's own class centroid g_{y_i}."),
         "swapped": Mistake(lambda p, y, c: _cmi_entropies_with(p, y, c, swapped=True),
                            "your difference has the wrong sign: CMI = H(Ŷ | Y) − H(Ŷ | X) >= 0 (knowing X tells "
                            "more than knowing Y).")},
        _classes),
}
