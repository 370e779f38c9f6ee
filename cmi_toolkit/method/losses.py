"""Losses as named, weighted terms.

CMI-regularised cross-entropy (one batch, centroids g treated as constants):

    total = CE + s * lambda * CMI_batch - beta * Gamma_batch,
    CMI_batch   = (1/B) sum_i KL(q_i || g_{y_i}),
    Gamma_batch = (1/B) sum_i sum_{c != y_i} pi_c / (1 - pi_{y_i}) H(q_i, g_c),

with q_i = softmax(h_i / T) (feature space) or softmax(z_i / T) (output space) and
s = +1 to minimise CMI (a better standalone model) or s = -1 to maximise it (an MCMI teacher).

Knowledge distillation:

    total = alpha * T^2 * KL(softmax(z_t / T) || softmax(z_s / T)) + (1 - alpha) * CE(z_s, y).

Every function returns a dict of named terms (``ce``, ``cmi``, ``gamma``, ``kd``, ``total``) for
logging. A non-finite term raises :class:`NonFiniteLossError` naming the term and the setting.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from ..defaults import CMI_WEIGHT, SPACE, TEMPERATURE
from .information import _separation_rows, class_priors, kl_to_centroids

__all__ = ["NonFiniteLossError", "CMILossConfig", "cmi_regularized_loss", "distillation_loss", "check_finite"]


class NonFiniteLossError(FloatingPointError):
    """A loss term became NaN or infinite; the message names it and the setting to change."""


def check_finite(terms: dict[str, Tensor], settings: str) -> None:
    """Raise :class:`NonFiniteLossError` for the first non-finite term."""
    for name, value in terms.items():
        if not torch.isfinite(value).all():
            raise NonFiniteLossError(
                f"loss term {name!r} is {value.item() if value.numel() == 1 else value} with {settings}. "
                "Lower the weight (lambda / beta), raise the temperature, or lower the learning rate."
            )


@dataclass
class CMILossConfig:
    """Settings of the CMI term.

    Attributes:
        weight: lambda >= 0, the weight of the CMI term (0 turns it off).
        objective: ``minimize`` (standalone model) or ``maximize`` (MCMI teacher).
        separation_weight: beta >= 0, weight of the separation term (subtracted).
        space: ``feature`` (f_x, the paper's choice) or ``output`` (P_x).
        temperature: T of the distributions.

    Defaults are the kit's one set (:mod:`cmi_toolkit.defaults`).
    """

    weight: float = CMI_WEIGHT
    objective: str = "minimize"
    separation_weight: float = 0.0
    space: str = SPACE
    temperature: float = TEMPERATURE

    def __post_init__(self):
        if self.objective not in ("minimize", "maximize"):
            raise ValueError(f"objective must be 'minimize' or 'maximize', got {self.objective!r}")
        if self.space not in ("feature", "output"):
            raise ValueError(f"space must be 'feature' or 'output', got {self.space!r}")
        for name, value in (("weight (lambda)", self.weight), ("separation_weight (beta)", self.separation_weight)):
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"{name} must be a finite number >= 0, got {value}; choose the sign with objective=")
        if not math.isfinite(self.temperature) or self.temperature <= 0:
            raise ValueError(f"temperature must be a finite number > 0, got {self.temperature}")

    @property
    def sign(self) -> float:
        return 1.0 if self.objective == "minimize" else -1.0

    def describe(self) -> str:
        return (f"lambda={self.weight}, beta={self.separation_weight}, objective={self.objective}, "
                f"space={self.space}, T={self.temperature}")


def _at_least_fp32(x: Tensor) -> Tensor:
    """``x`` in fp32 when it is bf16 / fp16 (autocast's outputs); fp32 and fp64 stay as they are."""
    return x.float() if x.dtype in (torch.bfloat16, torch.float16) else x


def cmi_regularized_loss(logits: Tensor, labels: Tensor, centroids: Tensor, cfg: CMILossConfig,
                         features: Tensor | None = None, priors: Tensor | None = None,
                         check: bool = True) -> dict[str, Tensor]:
    """CE + s * lambda * CMI - beta * Gamma on one batch; returns the named terms.

    ``check=False`` skips the NaN/inf check (a host synchronisation); trainers check once per log line.

    ``features`` (h_x) is needed in feature space; ``centroids`` (C x K) are detached.
    ``priors`` are the class frequencies pi that weigh Gamma's other classes, w_c = pi_c / (1 - pi_{y_i}), the one
    weighting of :func:`~cmi_toolkit.method.information.separation` (which says why). Default: the frequencies of
    ``labels``, as ``separation`` does; trainers pass the training set's. Uniform priors give the MCMI released
    code's 1/(C - 1).
    """
    labels = labels.long()
    logits = _at_least_fp32(logits)  # under bf16 autocast the terms are still computed in fp32
    features = _at_least_fp32(features) if features is not None else None
    ce = F.cross_entropy(logits, labels)
    source = features if cfg.space == "feature" else logits
    if source is None:
        raise ValueError("feature-space CMI needs the pooled features h_x")
    q = torch.softmax(source / cfg.temperature, dim=-1)
    g = centroids.detach().to(q)
    cmi = kl_to_centroids(q, labels, g).mean()
    terms = {"ce": ce, "cmi": cmi}
    total = ce + cfg.sign * cfg.weight * cmi
    if cfg.separation_weight > 0:
        num_classes = g.shape[0]
        if priors is None:
            priors = class_priors(labels, num_classes)
        gamma = _separation_rows(q, labels, num_classes, g, priors).mean()
        terms["gamma"] = gamma
        total = total - cfg.separation_weight * gamma
    terms["total"] = total
    if check:
        check_finite(terms, cfg.describe())
    return terms


def distillation_loss(student_logits: Tensor, teacher_logits: Tensor, labels: Tensor, alpha: float = 0.5,
                      temperature: float = 4.0, check: bool = True) -> dict[str, Tensor]:
    """alpha * T^2 * KL(p_teacher^T || p_student^T) + (1 - alpha) * CE(student, y)."""
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must lie in [0, 1], got {alpha}")
    if temperature <= 0:
        raise ValueError("temperature must be positive")
    t = temperature
    student_logits, teacher_logits = _at_least_fp32(student_logits), _at_least_fp32(teacher_logits)
    log_ps = F.log_softmax(student_logits / t, dim=-1)
    log_pt = F.log_softmax(teacher_logits.detach() / t, dim=-1)
    kd = F.kl_div(log_ps, log_pt, reduction="batchmean", log_target=True) * t * t
    ce = F.cross_entropy(student_logits, labels.long())
    terms = {"kd": kd, "ce": ce, "total": alpha * kd + (1 - alpha) * ce}
    if check:
        check_finite(terms, f"alpha={alpha}, T={temperature}")
    return terms
