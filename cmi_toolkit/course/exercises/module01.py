"""Course module 01, fine-tuning with CMI: the CMI-regularised loss, and FPDC centroids of a batch: references, typical mistakes and their hints."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .exercise import Exercise, Mistake
from .inputs import _classes, _feature_inputs, _loss_inputs
from .references import _centroids, _kl_rows


def _fpdc_reference(features, labels, c, T):
    from ...method.information import class_centroids

    return class_centroids(torch.softmax(features / T, -1), labels, c)


def _fpdc_with(features, labels, c, T, softmax_of_mean=False, no_t=False, overall=False):
    if softmax_of_mean:
        return torch.stack([torch.softmax(features[labels == k].mean(0) / T, -1) for k in range(c)])
    q = torch.softmax(features / (1.0 if no_t else T), -1)
    return q.mean(0).expand(c, -1).clone() if overall else _centroids(q, labels, c)


def _cmi_loss_reference(logits, features, labels, centroids, lam, T):
    from ...method.losses import CMILossConfig, cmi_regularized_loss

    return cmi_regularized_loss(logits, labels, centroids, CMILossConfig(weight=lam, temperature=T),
                                features=features)["total"]


def _cmi_loss_with(logits, features, labels, centroids, lam, T, reverse=False, on_logits=False, no_t=False):
    h = logits if on_logits else features
    q = torch.softmax(h / (1.0 if no_t else T), -1)
    if on_logits:  # the output-space analogue needs output centroids
        centroids = _centroids(q, labels, logits.shape[1]).clamp_min(1e-12)
    g = centroids[labels]
    kl = _kl_rows(g, q) if reverse else _kl_rows(q, g)
    return F.cross_entropy(logits, labels) + lam * kl.mean()


EXERCISES: dict[str, Exercise] = {
    "cmi_loss": Exercise(
        "01", "cmi_loss(logits, features, labels, centroids, lam, T): CE + lam * mean_i KL(softmax(h_i/T) || g_{y_i})",
        _cmi_loss_reference, _loss_inputs,
        "the CMI term uses the *features* through softmax(h / T), not the logits, and KL(q || g); CE is on the "
        "logits at temperature 1.",
        {"reversed_kl": Mistake(lambda *a: _cmi_loss_with(*a, reverse=True),
                                "your KL runs the wrong way round: KL(q_i || g_{y_i}) weighs by q_i = softmax(h_i / T)."),
         "on_logits": Mistake(lambda *a: _cmi_loss_with(*a, on_logits=True),
                              "you used the logits for the CMI term: the feature-space term uses the features h_i "
                              "(and the given centroids)."),
         "no_temperature": Mistake(lambda *a: _cmi_loss_with(*a, no_t=True),
                                   "you left out the temperature: q_i = softmax(h_i / T).")}),
    "batch_fpdc": Exercise(
        "01", "batch_fpdc(features, labels, num_classes, T): g_y = mean over the rows of class y of softmax(h_i / T)",
        _fpdc_reference, _feature_inputs,
        "first turn every row into a distribution q_i = softmax(h_i / T), then average the q_i of each class.",
        {"softmax_of_mean": Mistake(lambda h, y, c, T: _fpdc_with(h, y, c, T, softmax_of_mean=True),
                                    "you took the softmax of the class's mean feature: the FPDC is the mean of the "
                                    "distributions softmax(h_i / T), and a softmax of a mean is not a mean of "
                                    "softmaxes."),
         "no_temperature": Mistake(lambda h, y, c, T: _fpdc_with(h, y, c, T, no_t=True),
                                   "you left out the temperature: q_i = softmax(h_i / T)."),
         "overall_mean": Mistake(lambda h, y, c, T: _fpdc_with(h, y, c, T, overall=True),
                                 "every class got the same row (the mean over the whole batch): average each class's "
                                 "own rows.")},
        lambda args: _classes((args[0], args[1], args[2]))),
}
