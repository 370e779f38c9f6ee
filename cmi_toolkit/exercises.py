"""Self-checks for the notebooks' exercises: the student writes a piece of the method, the kit checks it.

Each exercise names a function the student writes; :func:`check` calls it on fixed random inputs,
compares the result with the kit's own implementation, and prints either "✓ right" or "✗ not yet"
with a hint aimed at the usual mistake. It never raises, so a notebook with an exercise still
runs to the end headless (an unattempted exercise says so). Solutions live apart, in
``notebooks/solutions/solutions.py``; the test suite runs them through these checks and checks
that a typical wrong answer is rejected.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

__all__ = ["EXERCISES", "Exercise", "check"]


@dataclass(frozen=True)
class Exercise:
    """One exercise: what to write, how it is checked, the hint shown when it is wrong."""

    notebook: str
    task: str
    compare: Callable[[Callable], bool]
    hint: str


def _inputs(seed: int, n: int = 12, k: int = 5, c: int = 3):
    g = torch.Generator().manual_seed(seed)
    probs = torch.softmax(torch.randn(n, k, generator=g, dtype=torch.float64) * 2, -1)
    labels = torch.arange(n) % c
    return probs, labels, c


def _close(a, b, tol: float = 1e-6) -> bool:
    a, b = torch.as_tensor(a, dtype=torch.float64), torch.as_tensor(b, dtype=torch.float64)
    return a.shape == b.shape and bool(torch.allclose(a, b, atol=tol, rtol=tol))


def _plugin_cmi(fn) -> bool:
    from .information import conditional_mutual_information

    return all(_close(fn(*_inputs(s)), conditional_mutual_information(*_inputs(s))) for s in range(3))


def _separation(fn) -> bool:
    from .information import separation

    return all(_close(fn(*_inputs(s)), separation(*_inputs(s))) for s in range(3))


def _cmi_loss(fn) -> bool:
    from .losses import CMILossConfig, cmi_regularized_loss

    for s in range(3):
        g = torch.Generator().manual_seed(s)
        logits, feats = torch.randn(8, 2, generator=g, dtype=torch.float64), torch.randn(8, 6, generator=g, dtype=torch.float64)
        labels = torch.arange(8) % 2
        cent = torch.softmax(torch.randn(2, 6, generator=g, dtype=torch.float64), -1)
        want = cmi_regularized_loss(logits, labels, cent, CMILossConfig(weight=0.3, temperature=0.5), features=feats)
        if not _close(fn(logits, feats, labels, cent, 0.3, 0.5), want["total"]):
            return False
    return True


def _ema_update(fn) -> bool:
    from .fpdc import CentroidEstimator

    for s in range(3):
        probs, labels, c = _inputs(s)
        labels = labels.clone()
        labels[labels == 2] = 0  # class 2 absent from the batch: it must keep its centroid
        est = CentroidEstimator(c, probs.shape[1], mode="ema", momentum=0.8, dtype=torch.float64)
        start = torch.softmax(torch.randn(c, probs.shape[1], generator=torch.Generator().manual_seed(9 + s),
                                          dtype=torch.float64), -1)
        est.centroids, est.seen = start.clone(), torch.ones(c, dtype=torch.long)
        est.update_ema(probs, labels)
        if not _close(fn(start.clone(), probs, labels, 0.8), est.centroids):
            return False
    return True


def _kd_loss(fn) -> bool:
    from .losses import distillation_loss

    for s in range(3):
        g = torch.Generator().manual_seed(s)
        zs, zt = torch.randn(8, 3, generator=g, dtype=torch.float64), torch.randn(8, 3, generator=g, dtype=torch.float64)
        labels = torch.arange(8) % 3
        if not _close(fn(zs, zt, labels, 0.5, 4.0), distillation_loss(zs, zt, labels, 0.5, 4.0)["total"]):
            return False
    return True


def _infonce(fn) -> bool:
    for s in range(3):
        scores = torch.randn(16, 16, generator=torch.Generator().manual_seed(s), dtype=torch.float64) * 3
        want = math.log(16) + (scores.diagonal() - torch.logsumexp(scores, 1)).mean()
        if not _close(fn(scores), want):
            return False
    return True


def _paired_interval(fn) -> bool:
    from .evidence import paired_comparison

    a, b = [0.81, 0.83, 0.80, 0.86, 0.84], [0.80, 0.81, 0.79, 0.80, 0.85]
    out = paired_comparison(a, b)
    low, high = fn(a, b)
    return _close(low, out["low"]) and _close(high, out["high"])


EXERCISES: dict[str, Exercise] = {
    "plugin_cmi": Exercise("00", "plugin_cmi(probs, labels, num_classes): (1/N) sum_i KL(p_i || g_{y_i}) with g_y the "
                           "class means", _plugin_cmi,
                           "g_y is the mean of the rows of class y; KL(p || g) = sum_k p_k (log p_k - log g_k), "
                           "averaged over all N rows (not over classes)."),
    "cmi_loss": Exercise("01", "cmi_loss(logits, features, labels, centroids, lam, T): CE + lam * mean_i KL(softmax(h_i/T) "
                         "|| g_{y_i})", _cmi_loss,
                         "the CMI term uses the *features* through softmax(h / T), not the logits, and KL(q || g), "
                         "not KL(g || q); CE is on the logits at temperature 1."),
    "separation": Exercise("02", "separation(probs, labels, num_classes): mean_i sum_{c != y_i} pi_c/(1-pi_{y_i}) "
                           "H(p_i, g_c)", _separation,
                           "pi are the class frequencies of these labels; H(p, g) = -sum_k p_k log g_k is a cross-"
                           "entropy; the weights of the other classes sum to 1 for every row."),
    "ema_update": Exercise("03", "ema_update(centroids, probs, labels, m): g_y <- m g_y + (1 - m) batch mean of class "
                           "y, for the classes in the batch", _ema_update,
                           "a class absent from the batch keeps its centroid; the batch mean is over that class's "
                           "rows only; m multiplies the *old* centroid."),
    "kd_loss": Exercise("04", "kd_loss(student_logits, teacher_logits, labels, alpha, T): alpha T^2 KL(p_t^T || p_s^T) "
                        "+ (1 - alpha) CE", _kd_loss,
                        "both distributions are softened by T; KL goes from the teacher to the student, averaged "
                        "over the batch; the T^2 factor keeps the gradients' scale."),
    "infonce_bound": Exercise("05", "infonce_bound(scores): log B + mean_i [S_ii - logsumexp_j S_ij] for a B x B score "
                              "matrix", _infonce,
                              "the matched pairs are on the diagonal; logsumexp runs over each row; do not forget "
                              "the log B, which makes the bound 0 for a critic that knows nothing."),
    "paired_interval": Exercise("06", "paired_interval(method, baseline): the 95 % paired-t interval (low, high) of "
                                "method - baseline", _paired_interval,
                                "work with the per-seed differences; their sd uses n - 1; the t quantile is "
                                "scipy.stats.t.ppf(0.975, n - 1) and the half-width is t sd / sqrt(n)."),
}


def check(name: str, fn: Callable | None, quiet: bool = False) -> bool:
    """Check the student's ``fn`` for exercise ``name``; prints the verdict (and hint), returns True when right."""
    ex = EXERCISES[name]
    say = (lambda msg: None) if quiet else print
    if fn is None:
        say(f"… {name}: not attempted yet ({ex.task})")
        return False
    try:
        ok = ex.compare(fn)
    except NotImplementedError:
        say(f"… {name}: not attempted yet ({ex.task})")
        return False
    except Exception as exc:  # noqa: BLE001 - a student's bug is feedback, not a crash
        say(f"✗ {name}: your function raised {type(exc).__name__}: {exc}. Hint: {ex.hint}")
        return False
    say(f"✓ {name}: right, it matches the kit's implementation." if ok else f"✗ {name}: not yet. Hint: {ex.hint}")
    return ok
