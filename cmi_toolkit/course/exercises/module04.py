"""Course module 04, teacher and student: the KD loss, and the MCMI teacher's loss: references, typical mistakes and their hints."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .exercise import Exercise, Mistake
from .inputs import _kd_inputs, _teacher_inputs
from .references import _kl_rows


def _teacher_reference(logits, labels, centroids, lam, T):
    from ...method.losses import CMILossConfig, cmi_regularized_loss

    cfg = CMILossConfig(weight=lam, temperature=T, space="output", objective="maximize")
    return cmi_regularized_loss(logits, labels, centroids, cfg)["total"]


def _teacher_with(logits, labels, centroids, lam, T, plus=False, no_t=False):
    q = torch.softmax(logits / (1.0 if no_t else T), -1)
    kl = _kl_rows(q, centroids[labels]).mean()
    return F.cross_entropy(logits, labels) + (lam if plus else -lam) * kl


def _kd_reference(zs, zt, labels, alpha, T):
    from ...method.losses import distillation_loss

    return distillation_loss(zs, zt, labels, alpha, T)["total"]


def _kd_with(zs, zt, labels, alpha, T, t2=True, reverse=False, swap=False):
    pt, ps = torch.softmax(zt / T, -1), torch.softmax(zs / T, -1)
    kl = (_kl_rows(ps, pt) if reverse else _kl_rows(pt, ps)).mean() * (T * T if t2 else 1.0)
    a = 1 - alpha if swap else alpha
    return a * kl + (1 - a) * F.cross_entropy(zs, labels)


EXERCISES: dict[str, Exercise] = {
    "kd_loss": Exercise(
        "04", "kd_loss(student_logits, teacher_logits, labels, alpha, T): alpha T^2 KL(p_t^T || p_s^T) + (1 - alpha) CE",
        _kd_reference, _kd_inputs,
        "both distributions are softened by T; KL goes from the teacher to the student, averaged over the batch; "
        "the T^2 factor keeps the gradients' scale.",
        {"no_t_squared": Mistake(lambda *a: _kd_with(*a, t2=False),
                                 "you left out the T^2 factor (Hinton et al.): without it the soft term's gradients "
                                 "shrink as 1/T^2."),
         "reversed_kl": Mistake(lambda *a: _kd_with(*a, reverse=True),
                                "your KL runs the wrong way round: KL(p_teacher || p_student), weighed by the "
                                "teacher's probabilities."),
         "swapped_alpha": Mistake(lambda *a: _kd_with(*a, swap=True),
                                  "alpha weighs the distillation term and (1 - alpha) the CE on the labels.")}),
    "mcmi_teacher_loss": Exercise(
        "04", "mcmi_teacher_loss(logits, labels, centroids, lam, T): CE − lam * mean_i KL(softmax(z_i/T) || "
        "g_{y_i}), the output-space MCMI teacher's objective", _teacher_reference, _teacher_inputs,
        "the teacher *maximises* CMI, so the CMI term is subtracted; it uses the logits z_i (output space) at "
        "temperature T, and CE is on the logits at temperature 1.",
        {"minimises": Mistake(lambda *a: _teacher_with(*a, plus=True),
                              "you added the CMI term: that is the CMI-minimiser; the MCMI teacher subtracts it "
                              "(it spreads each class out, so its soft labels carry more about X)."),
         "no_temperature": Mistake(lambda *a: _teacher_with(*a, no_t=True),
                                   "you left out the temperature: q_i = softmax(z_i / T).")}),
}
