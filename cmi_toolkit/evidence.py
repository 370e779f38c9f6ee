"""How the kit states a result: paired intervals, verdict words, degenerate runs, mechanism checks.

Paired comparison of a method with its baseline over the seeds both have (d_s = method_s - baseline_s):

    mean  = (1/n) sum_s d_s,           sd = sqrt( sum_s (d_s - mean)^2 / (n - 1) )
    95 % interval = mean +- t_{0.975, n-1} * sd / sqrt(n)          (paired t, scipy.stats)
    p     = two-sided p-value of the paired t-test (scipy.stats.ttest_rel)
    MDE80 = the smallest true mean difference a two-sided paired t-test at alpha = 0.05 detects
            with 80 % power at the observed sd (noncentral t, solved numerically).

Verdict: "better" when the interval lies above 0, "worse" when below, otherwise
"no difference detected" (never "wins" on a mean alone).

Degenerate runs (flagged, never counted for a method):

* ``loss_at_chance``: final training cross-entropy within 2 % of ln K;
* ``one_class``: >= 95 % of evaluation predictions in one class;
* ``near_uniform``: mean max_c P(c | x) within 0.05 of 1/K (the model barely prefers any class).

Mechanism check: a CMI-minimised model must end with lower CMI than its CE twin (same data, same
seed), measured in the space and at the temperature it trained with; a CMI-maximised teacher
with higher.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["paired_comparison", "verdict", "min_detectable_effect", "degenerate_flags", "mechanism_check",
           "CHANCE_LOSS_TOLERANCE", "ONE_CLASS_SHARE", "NEAR_UNIFORM_MARGIN"]

CHANCE_LOSS_TOLERANCE = 0.02
ONE_CLASS_SHARE = 0.95
NEAR_UNIFORM_MARGIN = 0.05


def min_detectable_effect(sd: float, n: int, alpha: float = 0.05, power: float = 0.8) -> float:
    """Smallest mean difference a two-sided paired t-test on ``n`` pairs detects with ``power``.

    Solves 1 - F_nct(t_c; n-1, delta sqrt(n)/sd) + F_nct(-t_c; n-1, delta sqrt(n)/sd) = power.
    NaN for n < 2; 0 when sd is 0.
    """
    from scipy.optimize import brentq
    from scipy.stats import nct, t

    if n < 2 or not math.isfinite(sd):
        return float("nan")
    if sd == 0:
        return 0.0
    df = n - 1
    tc = t.ppf(1 - alpha / 2, df)

    def power_at(nc: float) -> float:
        upper = float(nct.sf(tc, df, nc))
        lower = float(nct.cdf(-tc, df, nc))  # negligible for nc > 0; scipy returns NaN far in the tail
        if not math.isfinite(upper):
            upper = 1.0 if nc > tc else 0.0
        return upper + (lower if math.isfinite(lower) else 0.0)

    hi = tc + 1.0
    while power_at(hi) < power:
        hi *= 2
    nc = brentq(lambda x: power_at(x) - power, 0.0, hi, xtol=1e-10)
    return float(nc * sd / math.sqrt(n))


def verdict(low: float, high: float) -> str:
    """"better" / "worse" only when the interval [low, high] excludes 0."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return "no difference detected"
    if low > 0:
        return "better"
    if high < 0:
        return "worse"
    return "no difference detected"


def paired_comparison(method: Sequence[float], baseline: Sequence[float], confidence: float = 0.95) -> dict[str, Any]:
    """Paired-t summary of ``method - baseline`` (same seeds, same order); see the module docstring."""
    from scipy.stats import t, ttest_rel

    a, b = np.asarray(method, dtype=float), np.asarray(baseline, dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"paired comparison needs the same seeds: {a.shape} vs {b.shape}")
    d = a - b
    n = int(d.size)
    out: dict[str, Any] = {"n": n, "mean": float(d.mean()) if n else float("nan"), "sd": float("nan"),
                           "low": float("nan"), "high": float("nan"), "p": float("nan"),
                           "won": int((d > 0).sum()), "mde80": float("nan")}
    if n >= 2:
        sd = float(d.std(ddof=1))
        half = float(t.ppf(0.5 + confidence / 2, n - 1)) * sd / math.sqrt(n)
        out.update(sd=sd, low=out["mean"] - half, high=out["mean"] + half, mde80=min_detectable_effect(sd, n))
        if sd > 0:
            out["p"] = float(ttest_rel(a, b).pvalue)
        else:
            out["p"] = 1.0 if out["mean"] == 0 else 0.0
    out["verdict"] = verdict(out["low"], out["high"]) if n >= 2 else "too few seeds"
    return out


def degenerate_flags(final_train_ce: float | None, num_classes: int, majority_prediction_share: float,
                     mean_max_prob: float) -> list[str]:
    """The degenerate-run flags that apply (empty list: the run learned something)."""
    flags = []
    chance = math.log(num_classes)
    if final_train_ce is not None and math.isfinite(final_train_ce) and abs(final_train_ce - chance) <= CHANCE_LOSS_TOLERANCE * chance:
        flags.append("loss_at_chance")
    if majority_prediction_share >= ONE_CLASS_SHARE:
        flags.append("one_class")
    if mean_max_prob <= 1.0 / num_classes + NEAR_UNIFORM_MARGIN:
        flags.append("near_uniform")
    return flags


def mechanism_check(method: str, run_cmi: float, twin_cmi: float, space: str, temperature: float) -> dict[str, Any]:
    """Did the run move CMI the way its objective asks, against its CE twin? (``passed`` None: nothing to check)."""
    expected = {"cmi": "lower", "mcmi": "higher"}.get(method)
    passed = None
    if expected == "lower":
        passed = bool(run_cmi < twin_cmi)
    elif expected == "higher":
        passed = bool(run_cmi > twin_cmi)
    return {"space": space, "temperature": temperature, "cmi": run_cmi, "ce_twin_cmi": twin_cmi,
            "expected": expected, "passed": passed}
