"""The exercises' inputs, drawn by ``hypothesis``: unbalanced classes, a class with one row, two to five
classes, peaked and flat distributions, extreme temperatures.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

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
