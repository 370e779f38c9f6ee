"""The evidence statistics against hand computations, second methods and simulations with a known truth.

* per-example predictions: round trip, and metrics from confusion counts equal scikit-learn's;
* the two-level bootstrap and the verdict interval cover a known true difference in ~95 % of 200
  simulated suites (seeds and dev examples both random); the seed-only t interval does not;
* Holm keeps the family-wise error at <= 5 % under the null, where unadjusted tests do not;
* TOST equals statsmodels' ``ttost_paired``; McNemar equals an exact binomial test by hand;
  the random-effects estimate equals DerSimonian-Laird by hand.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cmi_toolkit.data.predictions import (
    Predictions,
    PredictionsError,
    confusion_counts,
    decode_predictions,
    encode_predictions,
    metric_from_counts,
)
from cmi_toolkit.data.tasks import compute_metrics, get_task
from cmi_toolkit.evidence.statistics import (
    holm,
    mcnemar_per_seed,
    paired_bootstrap,
    paired_comparison,
    random_effects,
    tost_paired,
)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 400), st.integers(2, 3), st.integers(0, 10_000))
def test_predictions_round_trip(n, k, seed):
    rng = np.random.default_rng(seed)
    labels, pred, prob = rng.integers(0, k, n), rng.integers(0, k, n), rng.random(n)
    block = encode_predictions(pred, prob, labels)
    back = decode_predictions({"predictions": block})
    assert (back.labels == labels).all() and (back.pred == pred).all()
    assert np.abs(back.prob - prob).max() <= 1 / 131070 + 1e-12


def test_damaged_predictions_are_one_named_error():
    block = encode_predictions([0, 1, 1], [0.9, 0.8, 0.7], [0, 1, 0])
    with pytest.raises(PredictionsError, match="record k1: .*damaged"):
        decode_predictions({"predictions": {**block, "pred": "01"}}, "record k1")
    with pytest.raises(PredictionsError, match="digest"):
        decode_predictions({"predictions": {**block, "labels": "111"}}, "record k1")
    with pytest.raises(PredictionsError, match="no per-example predictions"):
        decode_predictions({"metrics": {}}, "record k1")


@settings(max_examples=80, deadline=None)
@given(st.integers(2, 300), st.sampled_from(["sst2", "mrpc", "cola"]), st.integers(0, 10_000))
def test_metrics_from_counts_equal_scikit_learn(n, task, seed):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    pred = np.where(rng.random(n) < rng.random(), labels, rng.integers(0, 2, n))
    expected = compute_metrics(get_task(task), pred, labels)
    counts = confusion_counts(labels, pred, 2)
    for metric, value in expected.items():
        assert metric_from_counts(metric, counts) == pytest.approx(value, abs=1e-12)


def _simulated_suite(rng, n_seeds, n_examples, delta, tau=0.1):
    """Per-seed predictions of two methods on one dev set drawn from a population with a known true Δ.

    Example i has difficulty z_i ~ N(0, 1) and a method effect d_i ~ N(delta, 1) (the method helps on some
    examples, hurts on others); seed s gives each model a quality shift ~ N(0, tau);
    P(correct) = sigmoid(1 + z_i + shift (+ d_i for the method)). Every model shares each example's
    uniform draw, as fine-tuned models err on the same examples: the dev set's own sampling then
    moves every seed's difference alike, which resampling seeds alone cannot see.
    """
    z = rng.normal(size=n_examples)
    d = rng.normal(delta, 1.0, n_examples)
    u = rng.random(n_examples)
    labels = rng.integers(0, 2, n_examples)
    out = {"m": [], "b": []}
    for _ in range(n_seeds):
        for name, shift in (("m", d), ("b", 0.0)):
            p = 1 / (1 + np.exp(-(1 + z + rng.normal(0, tau) + shift)))
            correct = u < p
            pred = np.where(correct, labels, 1 - labels)
            out[name].append(Predictions(labels=labels, pred=pred, prob=np.full(n_examples, 0.9), digest="sim"))
    return out


def _true_delta(delta, tau=0.1, draws=2_000_000, seed=123):
    rng = np.random.default_rng(seed)
    z, d = rng.normal(size=draws), rng.normal(delta, 1.0, draws)
    a, b = rng.normal(0, tau, draws), rng.normal(0, tau, draws)
    return float(np.mean(1 / (1 + np.exp(-(1 + z + b + d))) - 1 / (1 + np.exp(-(1 + z + a)))))


def test_two_level_interval_covers_the_true_difference():
    """200 simulated suites (5 seeds, 300 dev examples): the verdict's interval (the wider of the two)
    covers the true Δ about 95 % of the time; the seed-only t interval, blind to the dev set's own
    sampling, covers it less often."""
    rng = np.random.default_rng(0)
    truth = _true_delta(0.2)
    cover_used = cover_t = 0
    sims = 200
    for _ in range(sims):
        s = _simulated_suite(rng, 5, 300, 0.2)
        boot = paired_bootstrap(s["m"], s["b"], "accuracy", 2, resamples=400, seed=int(rng.integers(1 << 30)))
        acc = [[p.correct.mean() for p in s[k]] for k in ("m", "b")]
        t = paired_comparison(acc[0], acc[1])
        assert boot["mean"] == pytest.approx(t["mean"])
        lo, hi = (t["low"], t["high"]) if t["high"] - t["low"] >= boot["high"] - boot["low"] else (boot["low"], boot["high"])
        cover_used += lo <= truth <= hi
        cover_t += t["low"] <= truth <= t["high"]
    assert 0.90 <= cover_used / sims <= 0.995, cover_used / sims
    assert cover_t / sims < 0.85 < cover_used / sims  # the seed-only interval misses the dev set's sampling


def test_holm_keeps_the_family_wise_error_under_the_null():
    """200 null families of 10 comparisons (5 seeds each): P(any Holm-adjusted p < 0.05) <= 5 % (+ MC slack),
    while unadjusted p-values reject somewhere in far more families."""
    rng = np.random.default_rng(1)
    any_holm = any_raw = 0
    for _ in range(200):
        p = [paired_comparison(rng.normal(0, 1, 5), rng.normal(0, 1, 5))["p"] for _ in range(10)]
        any_holm += min(holm(p)) < 0.05
        any_raw += min(p) < 0.05
    assert any_holm / 200 <= 0.08
    assert any_raw / 200 >= 0.25


def test_holm_equals_statsmodels_with_ties_nans_and_large_p(monkeypatch):
    import gc

    from statsmodels.stats.multitest import multipletests

    monkeypatch.setattr(gc, "collect", lambda *a: 0)  # multipletests collects garbage on every call

    rng = np.random.default_rng(3)
    for m in (1, 2, 5, 13):
        for _ in range(20):
            p = rng.uniform(0, 1, m) ** 3
            if m > 2:
                p[1] = p[0]  # a tie
            mine = holm(list(p))
            assert mine == pytest.approx(list(multipletests(p, method="holm")[1]), abs=1e-15)
    with_nan = [0.02, float("nan"), 0.01, 0.5]
    expected = multipletests(np.array([0.02, 0.01, 0.5]), method="holm")[1]
    got = holm(with_nan)
    assert math.isnan(got[1]) and [got[0], got[2], got[3]] == pytest.approx(list(expected))


def test_holm_by_hand():
    # sorted p: 0.01, 0.03, 0.04 -> 3 * 0.01, max(0.03, 2 * 0.03), max(0.06, 1 * 0.04)
    assert holm([0.04, 0.01, 0.03]) == pytest.approx([0.06, 0.03, 0.06])
    assert math.isnan(holm([0.01, float("nan")])[1])


def test_tost_equals_statsmodels():
    from statsmodels.stats.weightstats import ttost_paired

    rng = np.random.default_rng(2)
    for _ in range(20):
        a, b = rng.normal(0.8, 0.01, 6), rng.normal(0.8, 0.01, 6)
        mine = tost_paired(a - b, 0.005)
        p, lower, upper = ttost_paired(a, b, -0.005, 0.005)
        assert mine["p"] == pytest.approx(p) and mine["p_lower"] == pytest.approx(lower[1])
        assert mine["equivalent"] == (p < 0.05)
        assert mine["equivalent"] == (-0.005 < mine["low90"] and mine["high90"] < 0.005)


def test_mcnemar_equals_an_exact_binomial_by_hand():
    from scipy.stats import binomtest

    labels = np.zeros(40, dtype=int)
    m = np.zeros(40, dtype=int)
    b = np.zeros(40, dtype=int)
    m[:7] = 1  # method wrong on 7 the baseline gets right
    b[7:9] = 1  # baseline wrong on 2 the method gets right
    mk = [Predictions(labels, m, np.ones(40), "x")]
    bk = [Predictions(labels, b, np.ones(40), "x")]
    (res,) = mcnemar_per_seed(mk, bk)
    assert (res["method_only"], res["baseline_only"]) == (2, 7)
    assert res["p"] == pytest.approx(binomtest(2, 9, 0.5).pvalue)


def test_random_effects_equals_dersimonian_laird_by_hand():
    e = np.array([0.01, 0.0, -0.02, 0.005])
    s = np.array([0.005, 0.004, 0.01, 0.006])
    w = 1 / s**2
    fixed = (w * e).sum() / w.sum()
    q = (w * (e - fixed) ** 2).sum()
    tau2 = max(0.0, (q - 3) / (w.sum() - (w**2).sum() / w.sum()))
    wr = 1 / (s**2 + tau2)
    mean = (wr * e).sum() / wr.sum()
    out = random_effects(e, s)
    assert out["mean"] == pytest.approx(mean) and out["tau2"] == pytest.approx(tau2)
    assert out["se"] == pytest.approx(math.sqrt(1 / wr.sum()))
    assert out["i2"] == pytest.approx(max(0.0, (q - 3) / q))
    # tasks that agree more than their errors say (Q < k - 1): tau² is truncated at 0 (DerSimonian-Laird), so the
    # pooled estimate is the fixed-effect one; an untruncated, negative tau² would overweight every task
    e, s = np.array([0.004, 0.0, -0.002, 0.001]), np.array([0.01, 0.008, 0.02, 0.012])
    w = 1 / s**2
    homogeneous = random_effects(e, s)
    assert homogeneous["q"] < 3 and homogeneous["i2"] == 0.0  # I² is a share: never below 0
    assert homogeneous["tau2"] == 0.0
    assert homogeneous["mean"] == pytest.approx((w * e).sum() / w.sum())
    assert homogeneous["se"] == pytest.approx(math.sqrt(1 / w.sum()))


def test_bootstrap_refuses_runs_on_different_examples():
    a = Predictions(np.array([0, 1]), np.array([0, 1]), np.ones(2), "d1")
    b = Predictions(np.array([0, 1]), np.array([0, 0]), np.ones(2), "d2")
    with pytest.raises(PredictionsError, match="different examples"):
        paired_bootstrap([a], [b], "accuracy", 2)


def test_a_suite_without_a_plan_pools_no_wnli_and_a_plan_decides_for_itself():
    """WNLI's dev set is adversarial to its training set: a pooled estimate over it would measure that (the old cpu
    suite pooled +16 WNLI points into a "better"), so suites leave it out unless their plan says otherwise."""
    from cmi_toolkit.evidence.verdicts import not_counted, pooled

    rows = [{"question": "q", "task": t, "n": 3, "mean": m, "se": 0.01} for t, m in
            (("sst2", 0.0), ("mrpc", 0.005), ("wnli", 0.16))]
    assert not_counted({}) == ("wnli",)
    assert pooled(rows, exclude=not_counted({}))["q"]["tasks"] == ["sst2", "mrpc"]
    assert not_counted({"plan": {"excluded": {}}}) == ()  # a plan that counts every task
    assert pooled(rows, exclude=not_counted({"plan": {"excluded": {}}}))["q"]["tasks"] == ["sst2", "mrpc", "wnli"]


def test_a_pool_never_averages_points_of_different_metrics():
    """Accuracy, F1 and MCC points are different units: the pool takes the largest group of tasks sharing one
    metric and names the others as left out; a question with no two tasks in one metric has no pool."""
    from cmi_toolkit.evidence.verdicts import pool_scope, pooled

    rows = [{"question": "q", "task": t, "metric": m, "n": 5, "mean": d, "se": 0.01} for t, m, d in
            (("cola", "matthews_correlation", -0.02), ("mrpc", "f1", 0.004), ("rte", "accuracy", 0.02),
             ("sst2", "accuracy", 0.001))]
    pool = pooled(rows)["q"]
    assert pool["tasks"] == ["rte", "sst2"] and pool["metric"] == "accuracy"
    assert pool["left_out"] == ["cola in matthews_correlation", "mrpc in f1"]
    assert pool_scope(pool) == "the accuracy tasks rte, sst2 (cola in matthews_correlation, mrpc in f1: not pooled)"
    assert pooled(rows[1:2] + rows[3:]) == {}  # f1 and accuracy, one task each
    # an arm that changed nothing (the same score on every seed: se 0) has no finite weight and is named, not pooled
    flat = {"question": "q", "task": "esnli", "metric": "accuracy", "n": 5, "mean": 0.0, "se": 0.0}
    assert pooled(rows[2:3] + [flat]) == {}
    three = pooled(rows + [flat])["q"]
    assert three["tasks"] == ["rte", "sst2"] and "esnli (the same score on every seed)" in three["left_out"]


def test_the_answer_names_every_better_or_worse_task_and_says_no_difference_only_for_the_rest():
    """The README's two-sentence answer is the family's verdicts: a task judged better (or worse) is named with
    its interval, the others are 'no difference detected', and a partial program says so."""
    from cmi_toolkit.evidence.verdicts import answers

    def row(task, verdict, mean, method="cmi", base="ce"):
        return {"task": task, "method": method, "baseline": base, "question": method, "mechanism_of": method,
                "n": 5, "verdict": verdict, "mean": mean, "low": mean - 0.02, "high": mean + 0.02,
                "t": {"mde80": 0.01}, "mechanism": (5, 5)}

    nothing = [row("sst2", "no difference detected", 0.001), row("rte", "no difference detected", 0.01)]
    (line,) = answers(nothing, {})
    assert "no difference detected on any of sst2, rte" in line and "better" not in line.split("**")[-1]
    assert "10 of 10 runs" in line and "±1.00 points" in line
    mixed = [row("sst2", "no difference detected", 0.001), row("rte", "better", 0.03),
             row("mrpc", "kd", 0.0, method="kd_mcmi", base="kd_ce")]
    first, second = answers(mixed, {"cmi": {"mean": 0.01, "low": -0.01, "high": 0.03, "tasks": ["sst2", "rte"],
                                            "metric": "accuracy", "left_out": [],
                                            "verdict": "no difference detected"}}, partial=True)
    assert "better on rte (+3.00 points [+1.00, +5.00])" in first and "no difference detected on sst2" in first
    assert "any of" not in first and "pooled over the accuracy tasks sst2, rte: +1.00 points [-1.00, +3.00]" in first and "So far (partial)" in first
    assert "MCMI" in second and "mrpc" in second
    # an arm whose every seed scored exactly as its baseline (a term that changed nothing) claims no resolution
    same = row("esnli", "no difference detected", 0.0, method="dss_mi", base="dss")
    same.update(low=0.0, high=0.0, t={"mde80": 0.0, "sd": 0.0})
    (line,) = answers([same], {})
    assert "the same score as its baseline on every seed on esnli" in line and "±0.00" not in line
