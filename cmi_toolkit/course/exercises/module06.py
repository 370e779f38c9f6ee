"""Course module 06, reproducing GLUE: the paired interval, and Holm's adjustment: references, typical mistakes and their hints."""

from __future__ import annotations

import math

import torch

from .exercise import Exercise, Mistake
from .inputs import _pair_inputs, _pvalue_inputs


def _holm_reference(pvalues):
    from ...evidence.statistics import holm

    return holm(pvalues)


def _holm_with(pvalues, bonferroni=False, no_cummax=False, uncapped=False, unsorted=False):
    p = torch.tensor(pvalues, dtype=torch.float64)
    m = len(p)
    if bonferroni:
        return (p * m).clamp(max=1.0).tolist()
    order = torch.arange(m) if unsorted else torch.argsort(p)
    adj = p[order] * torch.arange(m, 0, -1, dtype=torch.float64)
    if not no_cummax:
        adj = torch.cummax(adj, 0).values
    if not uncapped:
        adj = adj.clamp(max=1.0)
    out = torch.empty_like(p)
    out[order] = adj
    return out.tolist()


def _paired_reference(method, baseline):
    from ...evidence.statistics import paired_comparison

    out = paired_comparison(method, baseline)
    return out["low"], out["high"]


def _paired_with(method, baseline, quantile=None, ddof=1, unpaired=False):
    from scipy.stats import t

    a, b = torch.tensor(method, dtype=torch.float64), torch.tensor(baseline, dtype=torch.float64)
    n = len(a)
    if unpaired:
        sd = math.sqrt(a.var(unbiased=True) / n + b.var(unbiased=True) / n)
    else:
        sd = float((a - b).std(unbiased=bool(ddof))) / math.sqrt(n)
    q = quantile if quantile is not None else t.ppf(0.975, n - 1)
    mean = float((a - b).mean())
    return mean - q * sd, mean + q * sd


EXERCISES: dict[str, Exercise] = {
    "paired_interval": Exercise(
        "06", "paired_interval(method, baseline): the 95 % paired-t interval (low, high) of method - baseline",
        _paired_reference, _pair_inputs,
        "work with the per-seed differences; their sd uses n - 1; the t quantile is scipy.stats.t.ppf(0.975, n - 1) "
        "and the half-width is t sd / sqrt(n).",
        {"normal_quantile": Mistake(lambda a, b: _paired_with(a, b, quantile=1.959963984540054),
                                    "you used the normal quantile 1.96: with n seeds use Student's t with n - 1 "
                                    "degrees of freedom (much wider for 3-5 seeds)."),
         "population_sd": Mistake(lambda a, b: _paired_with(a, b, ddof=0),
                                  "your sd divides by n: the sample sd divides by n - 1."),
         "unpaired": Mistake(lambda a, b: _paired_with(a, b, unpaired=True),
                             "you compared the two means as independent samples: pair them by seed and use the sd "
                             "of the per-seed differences.")}),
    "holm": Exercise(
        "06", "holm(pvalues): Holm's step-down adjusted p-values, in the order given", _holm_reference, _pvalue_inputs,
        "sort ascending; the k-th smallest (k = 1..m) becomes (m − k + 1) p_(k); then a running maximum so the "
        "adjusted values never decrease, capped at 1; return them in the original order.",
        {"bonferroni": Mistake(lambda p: _holm_with(p, bonferroni=True),
                               "you multiplied every p by m (Bonferroni): Holm multiplies the k-th smallest by "
                               "m − k + 1 only, so it rejects at least as much at the same error rate."),
         "no_running_max": Mistake(lambda p: _holm_with(p, no_cummax=True),
                                   "your adjusted p-values can decrease along the sorted order: take the running "
                                   "maximum, max_{j<=k} (m − j + 1) p_(j)."),
         "uncapped": Mistake(lambda p: _holm_with(p, uncapped=True),
                             "an adjusted p-value above 1 is not a probability: cap at 1."),
         "unsorted": Mistake(lambda p: _holm_with(p, unsorted=True),
                             "you stepped through the p-values in the order given: Holm's steps follow the sorted "
                             "order, the smallest p times m, the next times m − 1, ... (argsort first, then put the "
                             "adjusted values back in the order given).")},
        lambda args: f"{len(args[0])} p-values {args[0]}"),
}
