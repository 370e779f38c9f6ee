"""Course module 05, chain-of-thought distillation: the InfoNCE bound, and max-pooled label probabilities: references, typical mistakes and their hints."""

from __future__ import annotations

import math

import torch

from .exercise import Exercise, Mistake
from .inputs import _score_inputs, _sequence_inputs


def _maxpool_reference(logits, mask):
    from ...cot.mi import max_pooled_probs

    return max_pooled_probs(logits, mask)


def _infonce_reference(scores):
    return math.log(scores.shape[0]) + (scores.diagonal() - torch.logsumexp(scores, 1)).mean()


EXERCISES: dict[str, Exercise] = {
    "infonce_bound": Exercise(
        "05", "infonce_bound(scores): log B + mean_i [S_ii - logsumexp_j S_ij] for a B x B score matrix",
        _infonce_reference, _score_inputs,
        "the matched pairs are on the diagonal; logsumexp runs over each row; do not forget the log B.",
        {"no_log_b": Mistake(lambda s: (s.diagonal() - torch.logsumexp(s, 1)).mean(),
                             "you forgot the log B, which makes the bound 0 for a critic that knows nothing."),
         "columns": Mistake(lambda s: math.log(s.shape[0]) + (s.diagonal() - torch.logsumexp(s, 0)).mean(),
                            "your logsumexp runs down the columns: for row i it runs over j, S_ij (each input "
                            "against every candidate partner).")}),
    "max_pooled_probs": Exercise(
        "05", "max_pooled_probs(logits, mask): v_b = max over the real positions t of softmax(z_{b,t}) (B x V), the "
        "released MI term's summary of one task's output", _maxpool_reference, _sequence_inputs,
        "softmax over the vocabulary at every position first, then the largest value over the positions where mask "
        "is True (padding never wins: zero it out before the max).",
        {"max_before_softmax": Mistake(lambda z, m: torch.softmax((z + torch.where(m[..., None], 0.0, -1e9)).max(1).values,
                                                                  -1),
                                       "you took the max over positions of the logits and then a softmax: the term "
                                       "pools the *probabilities* (softmax at each position, then the max)."),
         "ignores_mask": Mistake(lambda z, m: torch.softmax(z, -1).max(1).values,
                                 "padding positions won the max: leave out the positions where mask is False."),
         "mean_pool": Mistake(lambda z, m: (torch.softmax(z, -1) * m[..., None]).sum(1) / m.sum(1, keepdim=True),
                              "you averaged over positions: the released term takes the max.")}),
}
