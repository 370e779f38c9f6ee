"""The mutual-information terms that couple the label task and the rationale task.

Two modes (``CoTConfig.mi_mode``):

* ``released`` (:func:`mi_loss_released`): the heuristic of Chen et al.'s released code. Each
  pass's decoder logits go through a softmax over the vocabulary and are max-pooled over target
  positions (a B x V vector per pass); L_MI is the cross-entropy of the rationale vector, read as
  logits, against the detached label vector, read as a soft target. It is not an estimate of
  any mutual information: it pulls the rationale pass's most-probable tokens towards the label
  pass's.

* ``variational`` (:class:`InfoNCECritic`): a learned lower bound on the mutual information
  I(R_label; R_rationale) between the two passes' representations of the same input, which the
  paper's objective asks to maximise. Representations r = mean over target positions of the
  decoder's last hidden states; a critic scores every pair in the batch,
  S_ij = <g(r_label_i), h(r_rationale_j)> / tau, with g, h linear projections, and

      I >= I_NCE = log B + (1/B) sum_i [ S_ii - log sum_j exp S_ij ]        (van den Oord et al. 2018)

  The bound can never exceed log B. L_MI = -I_NCE; the critic and the student are trained
  jointly on it (one optimiser), so the critic tightens the bound while the student raises it.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["MI_MODES", "mi_loss_released", "max_pooled_probs", "InfoNCECritic", "pooled_states"]

MI_MODES = ("released", "variational")


def mi_loss_released(label_logits: Tensor, rationale_logits: Tensor, label_mask: Tensor | None = None,
                     rationale_mask: Tensor | None = None) -> Tensor:
    """L_MI of the released code.

    v_label = max_t softmax(z_label[:, t, :]),  v_rat = max_t softmax(z_rat[:, t, :])  (B x V each);
    L_MI = CE(v_rat as logits, v_label.detach() as soft target) = -mean_b sum_v v_label log_softmax(v_rat).
    Masks (B x T, True for real target positions) leave padding out of the max-pool; None keeps it.
    """

    v_label = max_pooled_probs(label_logits, label_mask)
    v_rat = max_pooled_probs(rationale_logits, rationale_mask)
    return F.cross_entropy(v_rat, v_label.detach())


def max_pooled_probs(logits: Tensor, mask: Tensor | None = None) -> Tensor:
    """v = max_t softmax(z[:, t, :]) (B x V): each vocabulary entry's largest probability over the target positions
    where ``mask`` (B x T) is True (None: every position); the released MI term's summary of one task's output."""
    if logits.dtype in (torch.bfloat16, torch.float16):  # fp32 under bf16 autocast
        logits = logits.float()
    probs = torch.softmax(logits, dim=-1)
    if mask is not None:
        probs = probs * mask[..., None].to(probs.dtype)  # probabilities >= 0: a zeroed row never wins the max
    return probs.max(dim=1).values


def pooled_states(hidden: Tensor, mask: Tensor) -> Tensor:
    """Mean of ``hidden`` (B x T x H) over the positions where ``mask`` (B x T) is True."""
    m = mask.to(hidden.dtype)[..., None]
    return (hidden * m).sum(1) / m.sum(1).clamp_min(1.0)


class InfoNCECritic(nn.Module):
    """Bilinear critic S = g(a) h(b)^T / tau and the InfoNCE lower bound on I(A; B).

    Args:
        dim_a, dim_b: sizes of the two representations.
        dim: size of the shared projection space.
        temperature: tau.
    """

    def __init__(self, dim_a: int, dim_b: int, dim: int = 128, temperature: float = 0.1):
        super().__init__()
        if temperature <= 0:
            raise ValueError("the critic's temperature must be positive")
        self.g = nn.Linear(dim_a, dim)
        self.h = nn.Linear(dim_b, dim)
        self.temperature = temperature

    def scores(self, a: Tensor, b: Tensor) -> Tensor:
        """B x B critic scores of every (a_i, b_j) pair; the diagonal holds the matched pairs."""
        return F.normalize(self.g(a), dim=-1) @ F.normalize(self.h(b), dim=-1).T / self.temperature

    def lower_bound(self, a: Tensor, b: Tensor) -> Tensor:
        """I_NCE = log B + mean_i [S_ii - logsumexp_j S_ij]  (nats, <= log B)."""
        s = self.scores(a.float(), b.float())
        return math.log(s.shape[0]) + (s.diagonal() - torch.logsumexp(s, dim=1)).mean()

    def forward(self, a: Tensor, b: Tensor) -> Tensor:
        """The loss term: -I_NCE (minimising it maximises the bound)."""
        return -self.lower_bound(a, b)
