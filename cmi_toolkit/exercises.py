"""Self-checks for the notebooks' exercises: the student writes a piece of the method, the kit checks it.

Each exercise names a function the student writes. :func:`check` tries it on inputs that ``hypothesis``
generates (unbalanced classes, a class with one row, two to five classes, peaked and flat distributions,
extreme temperatures), each against the kit's own implementation, and prints either "✓ right" or "✗ not yet"
with the input it failed on, the two values and a hint. The hint is chosen by the mistake: the answer is
compared with each typical wrong version of the exercise (e.g. "averaged per class instead of per example")
and, when it behaves like one, that mistake is named; otherwise a general hint is shown. It never raises, so a
notebook with an exercise still runs to the end headless (an unattempted exercise says so), and what it returns
shows nothing in a notebook (no stray ``True``). Solutions live apart, in ``notebooks/solutions/solutions.py``;
the test suite runs them through these checks and checks that every typical mistake below is rejected with its
own hint.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

__all__ = ["EXERCISES", "Checked", "Exercise", "Mistake", "check"]


@dataclass(frozen=True)
class Mistake:
    """A typical wrong answer: a function that makes it, and the hint shown when an answer behaves like it."""

    fn: Callable
    hint: str


@dataclass(frozen=True)
class Exercise:
    """One exercise: what to write, the kit's answer, the inputs to try, the usual mistakes and a general hint."""

    notebook: str
    task: str
    reference: Callable
    inputs: Callable[[], object]  # () -> a hypothesis strategy of argument tuples
    hint: str
    mistakes: dict[str, Mistake] = field(default_factory=dict)
    describe: Callable[[tuple], str] = lambda args: ""


class Checked:
    """What :func:`check` returns: true when the answer is right; shows nothing as a notebook cell's last value."""

    def __init__(self, ok: bool, mistake: str | None = None):
        self.ok, self.mistake = ok, mistake

    def __bool__(self) -> bool:
        return self.ok

    def __repr__(self) -> str:
        return f"Checked(ok={self.ok}, mistake={self.mistake!r})"

    def _ipython_display_(self) -> None:  # the verdict was printed already
        pass


def _as_tensor(value) -> torch.Tensor:
    """Any numeric answer as a float64 tensor: a torch tensor (any dtype), a numpy array, a Python number, list or
    tuple of numbers."""
    if isinstance(value, torch.Tensor):
        return value.detach().to(torch.float64)
    import numpy as np

    return torch.as_tensor(np.asarray(value, dtype=np.float64))


def _close(a, b, tol: float = 1e-6) -> bool:
    """Whether the student's answer ``a`` equals the kit's ``b``: several values (a tuple ``b``) one by one; else
    numerically, in any form (:func:`_as_tensor`) and any broadcast-equivalent shape (``()``, ``(1,)``, ``(1, 1)``
    for a scalar; ``(k,)`` and ``(k, 1)`` for a vector): unit dimensions are left out of the comparison."""
    if isinstance(b, tuple):
        return (isinstance(a, (tuple, list)) and len(a) == len(b)
                and all(_close(x, y, tol) for x, y in zip(a, b, strict=True)))
    try:
        a = _as_tensor(a)
    except (TypeError, ValueError):
        return False
    b = _as_tensor(b)
    a, b = a.reshape([d for d in a.shape if d != 1]), b.reshape([d for d in b.shape if d != 1])
    return a.shape == b.shape and bool(torch.allclose(a, b, atol=tol, rtol=tol))


def _clone(args: tuple) -> tuple:
    return tuple(a.clone() if isinstance(a, torch.Tensor) else (list(a) if isinstance(a, list) else a) for a in args)


def _show(value) -> str:
    """A value as a student reads it: the number, the first values of a vector or matrix, and its shape."""
    if isinstance(value, tuple):
        return "(" + ", ".join(_show(v) for v in value) + ")"
    try:
        t = _as_tensor(value)
    except (TypeError, ValueError):
        return f"a {type(value).__name__}"
    if t.numel() == 1:
        return f"{t.item():.6g}"
    flat = t.flatten()
    shown = ", ".join(f"{v:.4g}" for v in flat[:6].tolist()) + (", ..." if flat.numel() > 6 else "")
    return f"[{shown}] (shape {tuple(t.shape)})"


# ------------------------------------------------------------------------------------------------- inputs


def _labels(g: torch.Generator, n: int, c: int, every_class: bool = True) -> torch.Tensor:
    """n labels of c classes, unbalanced at random; every class present at least once when ``every_class``."""
    weights = torch.rand(c, generator=g, dtype=torch.float64) ** 3 + 0.02  # some classes much rarer than others
    extra = n - (c if every_class else 0)
    drawn = (torch.multinomial(weights, extra, replacement=True, generator=g) if extra > 0
             else torch.zeros(0, dtype=torch.long))
    labels = torch.cat([torch.arange(c), drawn]) if every_class else drawn
    return labels[torch.randperm(n, generator=g)]


def _probs(g: torch.Generator, n: int, k: int, scale: float) -> torch.Tensor:
    return torch.softmax(torch.randn(n, k, generator=g, dtype=torch.float64) * scale, -1)


def _shapes(draw, st, n_min: int = 2):
    c = draw(st.integers(2, 5))
    n = draw(st.integers(max(c, n_min), 24))
    return n, c, torch.Generator().manual_seed(draw(st.integers(0, 2**31 - 1)))


def _strategy(body: Callable) -> Callable[[], object]:
    """``body(draw, st)`` as an exercise's ``inputs``: a function that makes the hypothesis strategy when called
    (hypothesis is imported only when a check runs)."""
    def make():
        from hypothesis import strategies as st

        return st.composite(lambda draw: body(draw, st))()

    make.__name__ = body.__name__
    return make


@_strategy
def _probs_labels(draw, st):
    n, c, g = _shapes(draw, st)
    k = draw(st.integers(2, 7))
    return _probs(g, n, k, draw(st.sampled_from([0.3, 1.0, 2.5]))), _labels(g, n, c), c


@_strategy
def _ema_inputs(draw, st):
    n, c, g = _shapes(draw, st)
    k = draw(st.integers(2, 6))
    labels = _labels(g, n, c, every_class=False)
    labels[labels == c - 1] = 0  # the last class is absent from the batch: it must keep its centroid
    start = _probs(g, c, k, 1.0)
    return start, _probs(g, n, k, draw(st.sampled_from([0.5, 3.0]))), labels, draw(st.sampled_from([0.5, 0.8, 0.99]))


@_strategy
def _loss_inputs(draw, st):
    n, c, g = _shapes(draw, st)
    d = draw(st.integers(2, 8))
    logits, feats = torch.randn(n, c, generator=g, dtype=torch.float64), torch.randn(n, d, generator=g,
                                                                                         dtype=torch.float64) * 2
    centroids = _probs(g, c, d, 1.0)
    return (logits, feats, _labels(g, n, c), centroids, draw(st.sampled_from([0.1, 0.3, 1.5])),
            draw(st.sampled_from([0.05, 0.5, 2.0])))


@_strategy
def _kd_inputs(draw, st):
    n, c, g = _shapes(draw, st)
    zs, zt = (torch.randn(n, c, generator=g, dtype=torch.float64) * 3 for _ in range(2))
    return zs, zt, _labels(g, n, c), draw(st.sampled_from([0.2, 0.5, 0.9])), draw(st.sampled_from([2.0, 4.0, 8.0]))


@_strategy
def _score_inputs(draw, st):
    b = draw(st.integers(2, 20))
    g = torch.Generator().manual_seed(draw(st.integers(0, 2**31 - 1)))
    scores = torch.randn(b, b, generator=g, dtype=torch.float64) * draw(st.sampled_from([0.5, 3.0]))
    return (scores + torch.diag(torch.rand(b, generator=g, dtype=torch.float64)) * 4,)  # not symmetric


@_strategy
def _pair_inputs(draw, st):
    n = draw(st.integers(2, 10))
    g = torch.Generator().manual_seed(draw(st.integers(0, 2**31 - 1)))
    base = (0.6 + 0.3 * torch.rand(n, generator=g, dtype=torch.float64))
    method = base + 0.02 * torch.randn(n, generator=g, dtype=torch.float64) + 0.01
    return [round(float(x), 4) for x in method], [round(float(x), 4) for x in base]


@_strategy
def _feature_inputs(draw, st):
    n, c, g = _shapes(draw, st)
    d = draw(st.integers(2, 8))
    feats = torch.randn(n, d, generator=g, dtype=torch.float64) * draw(st.sampled_from([0.5, 2.0, 6.0]))
    return feats, _labels(g, n, c), c, draw(st.sampled_from([0.05, 0.3, 1.0, 2.0]))


@_strategy
def _teacher_inputs(draw, st):
    n, c, g = _shapes(draw, st)
    logits = torch.randn(n, c, generator=g, dtype=torch.float64) * 2
    return (logits, _labels(g, n, c), _probs(g, c, c, 1.0), draw(st.sampled_from([0.1, 0.3, 1.0])),
            draw(st.sampled_from([0.5, 1.0, 2.0])))


@_strategy
def _sequence_inputs(draw, st):
    b, t, v = draw(st.integers(1, 4)), draw(st.integers(2, 6)), draw(st.integers(2, 9))
    g = torch.Generator().manual_seed(draw(st.integers(0, 2**31 - 1)))
    logits = torch.randn(b, t, v, generator=g, dtype=torch.float64) * draw(st.sampled_from([1.0, 4.0]))
    lengths = torch.randint(1, t + 1, (b,), generator=g)
    lengths[0] = max(1, t - 1)  # at least one padded position somewhere (when t > 1)
    return logits, torch.arange(t)[None, :] < lengths[:, None]


@_strategy
def _pvalue_inputs(draw, st):
    m = draw(st.integers(2, 10))
    g = torch.Generator().manual_seed(draw(st.integers(0, 2**31 - 1)))
    p = torch.rand(m, generator=g, dtype=torch.float64) ** draw(st.sampled_from([1.0, 3.0]))
    return ([round(float(x), 4) for x in p],)


def _classes(args: tuple) -> str:
    counts = torch.bincount(args[1], minlength=args[2]).tolist()
    return f"{len(args[1])} rows, {args[2]} classes with {'/'.join(map(str, counts))} rows"


# ------------------------------------------------------------------------------------------------- answers


def _centroids(probs, labels, c):
    return torch.stack([probs[labels == k].mean(0) for k in range(c)])


def _kl_rows(p, q):
    return (p * (p.log() - q.log())).sum(-1)


def _cmi_reference(probs, labels, c):
    from .information import conditional_mutual_information

    return conditional_mutual_information(probs, labels, c)


def _cmi_per_class(probs, labels, c):
    kl = _kl_rows(probs, _centroids(probs, labels, c)[labels])
    return torch.stack([kl[labels == k].mean() for k in range(c)]).mean()


def _separation_reference(probs, labels, c):
    from .information import separation

    return separation(probs, labels, c)


def _separation_with(probs, labels, c, uniform: bool = False, own: bool = False):
    pi = torch.bincount(labels, minlength=c).double() / len(labels)
    cross = -(probs @ _centroids(probs, labels, c).log().T)
    if uniform:
        w = torch.full((len(labels), c), 1.0 / (c - 1), dtype=torch.float64)
    else:
        w = pi[None, :].expand(len(labels), c).clone() / (1.0 if own else (1 - pi[labels])[:, None])
    if not own:
        w[torch.arange(len(labels)), labels] = 0
    return (w * cross).sum(-1).mean()


def _entropy_rows(p):
    return -torch.xlogy(p, p).sum(-1)


def _cmi_entropies_with(probs, labels, c, unweighted=False, marginal=False, swapped=False):
    if marginal:
        cond = _entropy_rows(probs.mean(0))
    elif unweighted:
        cond = _entropy_rows(_centroids(probs, labels, c)).mean()
    else:
        cond = _entropy_rows(_centroids(probs, labels, c)[labels]).mean()
    given_x = _entropy_rows(probs).mean()
    return given_x - cond if swapped else cond - given_x


def _fpdc_reference(features, labels, c, T):
    from .information import class_centroids

    return class_centroids(torch.softmax(features / T, -1), labels, c)


def _fpdc_with(features, labels, c, T, softmax_of_mean=False, no_t=False, overall=False):
    if softmax_of_mean:
        return torch.stack([torch.softmax(features[labels == k].mean(0) / T, -1) for k in range(c)])
    q = torch.softmax(features / (1.0 if no_t else T), -1)
    return q.mean(0).expand(c, -1).clone() if overall else _centroids(q, labels, c)


def _ncmi_reference(probs, labels, c):
    from .information import ncmi

    return ncmi(probs, labels, c)


def _kl_rows_reference(probs, labels, c):
    from .information import class_centroids, kl_to_centroids

    return kl_to_centroids(probs, labels, class_centroids(probs, labels, c))


def _teacher_reference(logits, labels, centroids, lam, T):
    from .losses import CMILossConfig, cmi_regularized_loss

    cfg = CMILossConfig(weight=lam, temperature=T, space="output", objective="maximize")
    return cmi_regularized_loss(logits, labels, centroids, cfg)["total"]


def _teacher_with(logits, labels, centroids, lam, T, plus=False, no_t=False):
    q = torch.softmax(logits / (1.0 if no_t else T), -1)
    kl = _kl_rows(q, centroids[labels]).mean()
    return F.cross_entropy(logits, labels) + (lam if plus else -lam) * kl


def _maxpool_reference(logits, mask):
    from .cot.mi import max_pooled_probs

    return max_pooled_probs(logits, mask)


def _holm_reference(pvalues):
    from .evidence import holm

    return holm(pvalues)


def _holm_with(pvalues, bonferroni=False, no_cummax=False, uncapped=False):
    p = torch.tensor(pvalues, dtype=torch.float64)
    m = len(p)
    if bonferroni:
        return (p * m).clamp(max=1.0).tolist()
    order = torch.argsort(p)
    adj = p[order] * torch.arange(m, 0, -1, dtype=torch.float64)
    if not no_cummax:
        adj = torch.cummax(adj, 0).values
    if not uncapped:
        adj = adj.clamp(max=1.0)
    out = torch.empty_like(p)
    out[order] = adj
    return out.tolist()


def _cmi_loss_reference(logits, features, labels, centroids, lam, T):
    from .losses import CMILossConfig, cmi_regularized_loss

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


def _ema_reference(centroids, probs, labels, m):
    from .fpdc import CentroidEstimator

    est = CentroidEstimator(centroids.shape[0], probs.shape[1], mode="ema", momentum=m, dtype=torch.float64)
    est.centroids, est.seen = centroids.clone(), torch.ones(centroids.shape[0], dtype=torch.long)
    est.update_ema(probs, labels)
    return est.centroids


def _ema_with(centroids, probs, labels, m, swap=False, every=False):
    out = centroids.clone()
    keep, new = ((1 - m), m) if swap else (m, (1 - m))
    for c in range(centroids.shape[0]):
        rows = probs[labels == c]
        if len(rows):
            out[c] = keep * centroids[c] + new * rows.mean(0)
        elif every:
            out[c] = keep * centroids[c] + new * probs.mean(0)
    return out


def _kd_reference(zs, zt, labels, alpha, T):
    from .losses import distillation_loss

    return distillation_loss(zs, zt, labels, alpha, T)["total"]


def _kd_with(zs, zt, labels, alpha, T, t2=True, reverse=False, swap=False):
    pt, ps = torch.softmax(zt / T, -1), torch.softmax(zs / T, -1)
    kl = (_kl_rows(ps, pt) if reverse else _kl_rows(pt, ps)).mean() * (T * T if t2 else 1.0)
    a = 1 - alpha if swap else alpha
    return a * kl + (1 - a) * F.cross_entropy(zs, labels)


def _infonce_reference(scores):
    return math.log(scores.shape[0]) + (scores.diagonal() - torch.logsumexp(scores, 1)).mean()


def _paired_reference(method, baseline):
    from .evidence import paired_comparison

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
    "plugin_cmi": Exercise(
        "00", "plugin_cmi(probs, labels, num_classes): (1/N) sum_i KL(p_i || g_{y_i}) with g_y the class means",
        _cmi_reference, _probs_labels,
        "g_y is the mean of the rows of class y; KL(p || g) = sum_k p_k (log p_k - log g_k), averaged over all N "
        "rows.",
        {"per_class_mean": Mistake(_cmi_per_class, "you averaged per class; average per example (the mean over all "
                                   "N rows, so a large class weighs more: that is E over X and Y)."),
         "ignores_labels": Mistake(lambda p, y, c: _kl_rows(p, p.mean(0).expand_as(p)).mean(),
                                   "you used one centroid for all rows (the overall mean): that is I(X; Z), not the "
                                   "conditional I(X; Z | Y); use g_{y_i}, the mean of row i's own class."),
         "reversed_kl": Mistake(lambda p, y, c: _kl_rows(_centroids(p, y, c)[y], p).mean(),
                                "your KL runs the wrong way round: KL(p_i || g_{y_i}) = sum_k p_ik log(p_ik / g_k), "
                                "with p_i as the weights.")},
        _classes),
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
    "separation": Exercise(
        "02", "separation(probs, labels, num_classes): mean_i sum_{c != y_i} pi_c/(1-pi_{y_i}) H(p_i, g_c)",
        _separation_reference, _probs_labels,
        "pi are the class frequencies of these labels; H(p, g) = -sum_k p_k log g_k is a cross-entropy; the weights "
        "of the other classes sum to 1 for every row.",
        {"uniform_weights": Mistake(lambda p, y, c: _separation_with(p, y, c, uniform=True),
                                    "you weighed the other classes equally (1/(C-1)); weigh class c by its share "
                                    "among the other classes, pi_c / (1 - pi_{y_i}): with unbalanced classes these "
                                    "differ."),
         "own_class": Mistake(lambda p, y, c: _separation_with(p, y, c, own=True),
                              "you included the row's own class (and weighed by pi_c alone): the sum runs over "
                              "c != y_i with weights pi_c / (1 - pi_{y_i}).")},
        _classes),
    "ema_update": Exercise(
        "03", "ema_update(centroids, probs, labels, m): g_y <- m g_y + (1 - m) batch mean of class y, for the classes "
        "in the batch", _ema_reference, _ema_inputs,
        "a class absent from the batch keeps its centroid; the batch mean is over that class's rows only; m "
        "multiplies the *old* centroid.",
        {"swapped_momentum": Mistake(lambda *a: _ema_with(*a, swap=True),
                                     "m multiplies the *old* centroid: g_y <- m g_y + (1 - m) mean."),
         "moves_absent_class": Mistake(lambda *a: _ema_with(*a, every=True),
                                       "a class with no rows in the batch must keep its centroid."),
         "whole_batch_mean": Mistake(lambda g, p, y, m: m * g + (1 - m) * p.mean(0),
                                     "each class moves towards the mean of *its own* rows in the batch, and only the "
                                     "classes present move.")}),
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
    "infonce_bound": Exercise(
        "05", "infonce_bound(scores): log B + mean_i [S_ii - logsumexp_j S_ij] for a B x B score matrix",
        _infonce_reference, _score_inputs,
        "the matched pairs are on the diagonal; logsumexp runs over each row; do not forget the log B.",
        {"no_log_b": Mistake(lambda s: (s.diagonal() - torch.logsumexp(s, 1)).mean(),
                             "you forgot the log B, which makes the bound 0 for a critic that knows nothing."),
         "columns": Mistake(lambda s: math.log(s.shape[0]) + (s.diagonal() - torch.logsumexp(s, 0)).mean(),
                            "your logsumexp runs down the columns: for row i it runs over j, S_ij (each input "
                            "against every candidate partner).")}),
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
    "cmi_from_entropies": Exercise(
        "00", "cmi_from_entropies(probs, labels, num_classes): H(Ŷ | Y) − H(Ŷ | X) = (1/N) sum_i H(g_{y_i}) − (1/N) "
        "sum_i H(p_i)", _cmi_reference, _probs_labels,
        "H(q) = −sum_k q_k log q_k; H(Ŷ | X) is the mean entropy of the rows p_i, H(Ŷ | Y) the mean over all N rows "
        "of the entropy of their class centroid g_{y_i}; CMI = H(Ŷ | Y) − H(Ŷ | X).",
        {"unweighted_classes": Mistake(lambda p, y, c: _cmi_entropies_with(p, y, c, unweighted=True),
                                       "you averaged H(g_c) over the classes equally: H(Ŷ | Y) = sum_c pi_c H(g_c), "
                                       "each class weighed by its share of the rows (average over the N rows)."),
         "marginal_entropy": Mistake(lambda p, y, c: _cmi_entropies_with(p, y, c, marginal=True),
                                     "you used the entropy of the overall mean, H(Ŷ): that gives I(X; Ŷ); condition "
                                     "on Y with each row's own class centroid g_{y_i}."),
         "swapped": Mistake(lambda p, y, c: _cmi_entropies_with(p, y, c, swapped=True),
                            "your difference has the wrong sign: CMI = H(Ŷ | Y) − H(Ŷ | X) >= 0 (knowing X tells "
                            "more than knowing Y).")},
        _classes),
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
    "ncmi": Exercise(
        "02", "ncmi(probs, labels, num_classes): CMI / Γ, the plug-in CMI over the separation of exercise 02",
        _ncmi_reference, _probs_labels,
        "NCMI = I(X; Ŷ | Y) / Γ with Γ = mean_i sum_{c != y_i} pi_c / (1 − pi_{y_i}) H(p_i, g_c): the concentration "
        "of each class over how far the rows sit from the other classes.",
        {"inverted": Mistake(lambda p, y, c: _separation_reference(p, y, c) / _cmi_reference(p, y, c),
                             "your ratio is upside down: NCMI = CMI / Γ (small is good: tight and far apart)."),
         "uniform_separation": Mistake(lambda p, y, c: _cmi_reference(p, y, c) / _separation_with(p, y, c,
                                                                                                  uniform=True),
                                       "your Γ weighs the other classes equally (1/(C−1)): weigh class c by "
                                       "pi_c / (1 − pi_{y_i}).")},
        _classes),
    "kl_per_example": Exercise(
        "03", "kl_per_example(probs, labels, num_classes): the N values KL(p_i || g_{y_i}) (their mean is the CMI)",
        _kl_rows_reference, _probs_labels,
        "one value per row: the KL from row i's distribution to its *own* class centroid g_{y_i} (the class mean).",
        {"nearest_centroid": Mistake(lambda p, y, c: torch.stack([_kl_rows(p, g.expand_as(p)) for g in
                                                                  _centroids(p, y, c)], 1).min(1).values,
                                     "you measured the KL to the nearest centroid: CMI uses the row's own class "
                                     "centroid g_{y_i}, even when another class's centroid is closer (that row is "
                                     "where the model confuses classes)."),
         "reversed_kl": Mistake(lambda p, y, c: _kl_rows(_centroids(p, y, c)[y], p),
                                "your KL runs the wrong way round: KL(p_i || g_{y_i}), weighed by p_i.")},
        _classes),
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
                             "an adjusted p-value above 1 is not a probability: cap at 1.")},
        lambda args: f"{len(args[0])} p-values {args[0]}"),
}


def _counterexample(fn: Callable, ex: Exercise, examples: int) -> tuple | None:
    """An input from ``ex.inputs`` on which ``fn`` disagrees with the kit (None: none found); its errors propagate."""
    from hypothesis import HealthCheck, Phase, given, settings

    found: list[tuple] = []

    @settings(max_examples=examples, derandomize=True, database=None, deadline=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(ex.inputs())
    def agrees(args):
        want = ex.reference(*_clone(args))  # the kit's answer first: an error there is not the student's
        if not _close(fn(*_clone(args)), want):
            found.append(args)
            raise AssertionError

    try:
        agrees()
    except AssertionError:
        if found:
            return found[0]
        raise
    return None


def _samples(ex: Exercise, k: int) -> list[tuple]:
    """``k`` inputs of the exercise's strategy, the same every time."""
    from hypothesis import HealthCheck, Phase, given, settings

    out: list[tuple] = []

    @settings(max_examples=k, derandomize=True, database=None, deadline=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(ex.inputs())
    def collect(args):
        out.append(args)

    collect()
    return out


def diagnose(fn: Callable, ex: Exercise, args: tuple, k: int = 8) -> str | None:
    """The typical mistake whose answers ``fn`` gives, on ``args`` and on ``k`` more inputs (None: none fits)."""
    inputs = [args, *_samples(ex, k)]
    for name, mistake in ex.mistakes.items():
        try:
            if all(_close(fn(*_clone(a)), mistake.fn(*_clone(a))) for a in inputs):
                return name
        except Exception:  # noqa: BLE001, S112 - a mistake that cannot run on these inputs does not fit
            continue
    return None


def check(name: str, fn: Callable | None, quiet: bool = False, examples: int = 30) -> Checked:
    """Check the student's ``fn`` for exercise ``name`` on ``examples`` generated inputs; print the verdict.

    Returns a :class:`Checked`, true when right; a wrong answer's message names the input it failed on, both
    values, and the hint of the mistake it makes (or the general hint).
    """
    ex = EXERCISES[name]
    say = (lambda msg: None) if quiet else print
    if fn is None:
        say(f"… {name}: not attempted yet ({ex.task})")
        return Checked(False)
    try:
        bad = _counterexample(fn, ex, examples)
    except NotImplementedError:
        say(f"… {name}: not attempted yet ({ex.task})")
        return Checked(False)
    except Exception as exc:  # noqa: BLE001 - a student's bug is feedback, not a crash
        say(f"✗ {name}: your function raised {type(exc).__name__}: {exc}. Hint: {ex.hint}")
        return Checked(False, "raised")
    if bad is None:
        say(f"✓ {name}: right: it matches the kit's implementation on {examples} generated inputs "
            "(unbalanced classes and edge cases included).")
        return Checked(True)
    mistake = diagnose(fn, ex, bad)
    where = ex.describe(bad)
    try:
        yours = _show(fn(*_clone(bad)))
    except Exception as exc:  # noqa: BLE001
        yours = f"{type(exc).__name__}"
    say(f"✗ {name}: not yet: on {where or 'one of the generated inputs'} yours gives {yours}, the kit "
        f"{_show(ex.reference(*_clone(bad)))}. Hint: {ex.mistakes[mistake].hint if mistake else ex.hint}")
    return Checked(False, mistake)
