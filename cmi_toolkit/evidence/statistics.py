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

import functools
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["paired_comparison", "verdict", "min_detectable_effect", "paired_bootstrap", "mcnemar_per_seed", "holm", "tost_paired", "random_effects"]


def min_detectable_effect(sd: float, n: int, alpha: float = 0.05, power: float = 0.8) -> float:
    """Smallest mean difference a two-sided paired t-test on ``n`` pairs detects with ``power``.

    Solves 1 - F_nct(t_c; n-1, delta sqrt(n)/sd) + F_nct(-t_c; n-1, delta sqrt(n)/sd) = power. The root is a
    noncentrality nc*(n, alpha, power) that does not depend on sd, so delta = nc* sd / sqrt(n) and nc* is
    solved once per (n, alpha, power). NaN for n < 2; 0 when sd is 0.
    """
    if n < 2 or not math.isfinite(sd):
        return float("nan")
    if sd == 0:
        return 0.0
    return float(_detectable_noncentrality(n, alpha, power) * sd / math.sqrt(n))


@functools.lru_cache(maxsize=256)
def _detectable_noncentrality(n: int, alpha: float, power: float) -> float:
    """The noncentrality at which the two-sided paired t-test on ``n`` pairs has ``power``."""
    from scipy.optimize import brentq
    from scipy.stats import nct, t

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
    return float(brentq(lambda x: power_at(x) - power, 0.0, hi, xtol=1e-10))


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


# --- the finite dev set, multiplicity, equivalence, pooling -----------------------------------------------

def paired_bootstrap(method: Sequence[Any], baseline: Sequence[Any], metric: str, num_classes: int,
                     resamples: int = 2000, confidence: float = 0.95, seed: int = 0) -> dict[str, Any]:
    """Two-level paired bootstrap of ``metric(method) - metric(baseline)`` over seeds *and* dev examples.

    ``method`` and ``baseline`` are per-seed :class:`~cmi_toolkit.data.predictions.Predictions` in the same
    seed order, all on the same examples (their label digests must agree). Replicate b draws n seeds
    with replacement (s*_1..s*_n) and one multiset of the N dev examples (weights w_b, the same for
    every seed and for both methods), and takes

        Delta*_b = (1/n) sum_j [ m(C^method_{s*_j}(w_b)) - m(C^baseline_{s*_j}(w_b)) ]

    with C(w) the weighted confusion counts and m the metric. The interval is the percentile interval
    of Delta*; p = min(1, 2 min(P*(Delta* <= 0), P*(Delta* >= 0))), at least 1 / resamples.
    ``mean`` is the point estimate on the observed data (the mean per-seed difference).
    """
    from ..data.predictions import PredictionsError, confusion_counts, metric_from_counts

    if len(method) != len(baseline) or not method:
        raise ValueError(f"the bootstrap needs the same seeds for both methods: {len(method)} vs {len(baseline)}")
    digests = {p.digest for p in [*method, *baseline]}
    if len(digests) != 1:
        raise PredictionsError("the runs being compared were scored on different examples (label digests differ)")
    n, N = len(method), len(method[0])
    rng = np.random.default_rng(seed)
    weights = rng.multinomial(N, np.full(N, 1.0 / N), size=resamples).astype(np.float64)  # B x N
    labels = method[0].labels
    diff = np.empty((resamples, n))
    observed = np.empty(n)
    for s in range(n):
        a = metric_from_counts(metric, confusion_counts(labels, method[s].pred, num_classes, weights))
        b = metric_from_counts(metric, confusion_counts(labels, baseline[s].pred, num_classes, weights))
        diff[:, s] = a - b
        observed[s] = method[s].score(metric, num_classes) - baseline[s].score(metric, num_classes)
    seeds = rng.integers(0, n, size=(resamples, n))
    deltas = np.take_along_axis(diff, seeds, axis=1).mean(1)
    alpha = 1 - confidence
    low, high = np.quantile(deltas, [alpha / 2, 1 - alpha / 2])
    p = min(1.0, 2 * min(float((deltas <= 0).mean()), float((deltas >= 0).mean())))
    return {"n": n, "examples": N, "mean": float(observed.mean()), "low": float(low), "high": float(high),
            "se": float(deltas.std(ddof=1)), "p": max(p, 1.0 / resamples), "resamples": resamples,
            "verdict": verdict(float(low), float(high))}


def mcnemar_per_seed(method: Sequence[Any], baseline: Sequence[Any]) -> list[dict[str, Any]]:
    """McNemar's test on each seed's paired correctness (statsmodels; exact binomial when b + c < 25).

    b: examples the method gets right and the baseline wrong; c: the reverse. p tests b = c.
    """
    from statsmodels.stats.contingency_tables import mcnemar

    out = []
    for m, b_ in zip(method, baseline, strict=True):
        if m.digest != b_.digest:
            from ..data.predictions import PredictionsError

            raise PredictionsError("McNemar needs both runs scored on the same examples (label digests differ)")
        mc, bc = m.correct, b_.correct
        table = np.array([[np.sum(mc & bc), np.sum(mc & ~bc)], [np.sum(~mc & bc), np.sum(~mc & ~bc)]])
        b, c = int(table[0, 1]), int(table[1, 0])
        p = 1.0 if b + c == 0 else float(mcnemar(table, exact=b + c < 25, correction=True).pvalue)
        out.append({"method_only": b, "baseline_only": c, "p": p})
    return out


def holm(pvalues: Sequence[float], alpha: float = 0.05) -> list[float]:
    """Holm-adjusted p-values; NaN entries stay NaN and are not counted (m = the finite ones).

    With p_(1) <= ... <= p_(m) sorted, adjusted p_(i) = max_{j <= i} min(1, (m - j + 1) p_(j)), then back in the
    input order. Equal to statsmodels' ``multipletests(p, method="holm")[1]`` (a test pins it); written out
    because that function runs a full ``gc.collect()`` on every call, a tenth of a second in a process holding
    torch, which made every report slow. ``alpha`` is accepted for that signature and does not change the
    adjusted values.
    """
    p = np.asarray(pvalues, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    if ok.size:
        order = ok[np.argsort(p[ok], kind="stable")]
        steps = np.minimum(1.0, (ok.size - np.arange(ok.size)) * p[order])
        out[order] = np.maximum.accumulate(steps)
    return out.tolist()


def tost_paired(differences: Sequence[float], margin: float, alpha: float = 0.05) -> dict[str, Any]:
    """Two one-sided paired t-tests of equivalence: H0 |mean d| >= margin against |mean d| < margin.

    p_lower tests mean d <= -margin, p_upper mean d >= +margin (scipy ``ttest_1samp`` with one-sided
    alternatives); p = max of the two; equivalent when p < alpha, i.e. when the (1 - 2 alpha) interval
    lies inside (-margin, +margin).
    """
    from scipy.stats import t, ttest_1samp

    d = np.asarray(differences, dtype=float)
    n = d.size
    if n < 2:
        return {"n": n, "mean": float(d.mean()) if n else float("nan"), "p": float("nan"), "equivalent": False}
    sd = float(d.std(ddof=1))
    if sd == 0:
        inside = abs(float(d.mean())) < margin
        p_lower = p_upper = 0.0 if inside else 1.0
    else:
        p_lower = float(ttest_1samp(d, -margin, alternative="greater").pvalue)
        p_upper = float(ttest_1samp(d, margin, alternative="less").pvalue)
    half = float(t.ppf(1 - alpha, n - 1)) * sd / math.sqrt(n)
    p = max(p_lower, p_upper)
    return {"n": n, "mean": float(d.mean()), "sd": sd, "margin": margin, "p_lower": p_lower, "p_upper": p_upper,
            "p": p, "low90": float(d.mean()) - half, "high90": float(d.mean()) + half, "equivalent": bool(p < alpha)}


def random_effects(effects: Sequence[float], std_errors: Sequence[float], confidence: float = 0.95) -> dict[str, Any]:
    """Random-effects pooled estimate (DerSimonian-Laird; statsmodels ``combine_effects``).

    Each study (task) i gives an effect e_i with standard error s_i; tau^2 is the between-task variance,
    the pooled mean sum_i w_i e_i / sum_i w_i with w_i = 1 / (s_i^2 + tau^2). Returns the pooled mean,
    its interval, p, tau^2 = max(0, (Q - (k - 1)) / (sum w - sum w^2 / sum w)) with the fixed-effect weights
    w = 1 / s^2, I^2 = max(0, (Q - (k - 1)) / Q) (Higgins and Thompson) and Cochran's Q with its p-value.
    statsmodels leaves tau^2 and I^2 negative when Q < k - 1; DerSimonian and Laird truncate tau^2 at 0, where
    the random-effects estimate is the fixed-effect one (a negative tau^2 would overweight every task).
    """
    from scipy.stats import chi2, norm
    from statsmodels.stats.meta_analysis import combine_effects

    e, s = np.asarray(effects, dtype=float), np.asarray(std_errors, dtype=float)
    k = e.size
    if k < 2:
        raise ValueError("a pooled estimate needs at least two tasks")
    s = np.maximum(s, 1e-9)  # a zero-variance task would take all the weight
    with np.errstate(invalid="ignore"):  # statsmodels takes the root of a negative tau^2's variance; unused then
        res = combine_effects(e, s ** 2, method_re="dl", alpha=1 - confidence)
    tau2 = max(0.0, float(res.tau2))
    if tau2 > 0:
        mean, se = float(res.mean_effect_re), float(res.sd_eff_w_re)
    else:
        mean, se = float(res.mean_effect_fe), float(res.sd_eff_w_fe)
    z = float(norm.ppf(0.5 + confidence / 2))
    q = float(res.q)
    return {"k": k, "mean": mean, "se": se, "low": mean - z * se, "high": mean + z * se,
            "p": float(2 * norm.sf(abs(mean / se))) if se > 0 else float("nan"), "tau2": tau2,
            "i2": max(0.0, (q - (k - 1)) / q) if q > 0 else 0.0, "q": q, "q_p": float(chi2.sf(q, k - 1)),
            "verdict": verdict(mean - z * se, mean + z * se)}
