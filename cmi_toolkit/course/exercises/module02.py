"""Course module 02, measuring: separation Γ, and NCMI: references, typical mistakes and their hints."""

from __future__ import annotations

import torch

from .exercise import Exercise, Mistake
from .inputs import _classes, _probs_labels
from .module00 import _cmi_reference
from .references import _centroids


def _separation_reference(probs, labels, c):
    from ...method.information import separation

    return separation(probs, labels, c)


def _separation_with(probs, labels, c, uniform: bool = False, own: bool = False):
    pi = torch.bincount(labels, minlength=c).double() / len(labels)
    cross = -(probs @ _centroids(probs, labels, c).log().T)
    if uniform:
        w = torch.full((len(labels), c), 1.0 / (c - 1), dtype=torch.float64)
    else:
        w = pi[None, :].expand(len(labels), c).clone() / (1.0 if own else (1 - pi[labels])[:, None])
    if not own:
        w[torch.arange(len(labels)), labels] = 0
    return (w * cross).sum(-1).mean()


def _ncmi_reference(probs, labels, c):
    from ...method.information import ncmi

    return ncmi(probs, labels, c)


EXERCISES: dict[str, Exercise] = {
    "separation": Exercise(
        "02", "separation(probs, labels, num_classes): mean_i sum_{c != y_i} pi_c/(1-pi_{y_i}) H(p_i, g_c)",
        _separation_reference, _probs_labels,
        "pi are the class frequencies of these labels; H(p, g) = -sum_k p_k log g_k is a cross-entropy; the weights "
        "of the other classes sum to 1 for every row.",
        {"uniform_weights": Mistake(lambda p, y, c: _separation_with(p, y, c, uniform=True),
                                    "you weighed the other classes equally (1/(C-1)); weigh class c by its share "
                                    "among the other classes, pi_c / (1 - pi_{y_i}): with unbalanced classes these "
                                    "differ."),
         "own_class": Mistake(lambda p, y, c: _separation_with(p, y, c, own=True),
                              "you included the row's own class (and weighed by pi_c alone): the sum runs over "
                              "c != y_i with weights pi_c / (1 - pi_{y_i}).")},
        _classes),
    "ncmi": Exercise(
        "02", "ncmi(probs, labels, num_classes): CMI / Γ, the plug-in CMI over the separation of exercise 02",
        _ncmi_reference, _probs_labels,
        "NCMI = I(X; Ŷ | Y) / Γ with Γ = mean_i sum_{c != y_i} pi_c / (1 − pi_{y_i}) H(p_i, g_c): the concentration "
        "of each class over how far the rows sit from the other classes.",
        {"inverted": Mistake(lambda p, y, c: _separation_reference(p, y, c) / _cmi_reference(p, y, c),
                             "your ratio is upside down: NCMI = CMI / Γ (small is good: tight and far apart)."),
         "uniform_separation": Mistake(lambda p, y, c: _cmi_reference(p, y, c) / _separation_with(p, y, c,
                                                                                                  uniform=True),
                                       "your Γ weighs the other classes equally (1/(C−1)): weigh class c by "
                                       "pi_c / (1 − pi_{y_i}).")},
        _classes),
}
