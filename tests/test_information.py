import math

import pytest
import torch

from cmi_toolkit.method.information import (
    class_centroids,
    conditional_mutual_information,
    ncmi,
    per_class_cmi,
    separation,
)
from cmi_toolkit.method.measure import measure


def _entropy(p):
    return -(torch.xlogy(p, p)).sum(-1)


@pytest.mark.parametrize("seed", range(5))
def test_cmi_equals_entropy_difference_brute_force(seed):
    g = torch.Generator().manual_seed(seed)
    n, k, c = 200, 5, 3
    probs = torch.softmax(3 * torch.randn(n, k, generator=g, dtype=torch.float64), -1)
    labels = torch.randint(c, (n,), generator=g)
    # brute force over the empirical joint: H(Y^|Y) - H(Y^|X,Y)
    h_y_given_y = 0.0
    for y in range(c):
        rows = probs[labels == y]
        h_y_given_y += len(rows) / n * _entropy(rows.mean(0)).item()
    h_given_xy = _entropy(probs).mean().item()
    assert conditional_mutual_information(probs, labels, c).item() == pytest.approx(h_y_given_y - h_given_xy, abs=1e-6)


def test_cmi_zero_when_each_class_shares_one_distribution():
    d = torch.tensor([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]], dtype=torch.float64)
    labels = torch.tensor([0, 0, 1, 1, 1, 0])
    probs = d[labels]
    assert conditional_mutual_information(probs, labels, 2).item() == pytest.approx(0.0, abs=1e-12)
    assert per_class_cmi(probs, labels, 2).tolist() == pytest.approx([0.0, 0.0], abs=1e-12)


def test_three_class_toy_by_hand():
    probs = torch.tensor([[0.8, 0.1, 0.1], [0.6, 0.3, 0.1],   # class 0
                          [0.2, 0.7, 0.1],                    # class 1
                          [0.1, 0.1, 0.8]], dtype=torch.float64)  # class 2
    labels = torch.tensor([0, 0, 1, 2])
    g = class_centroids(probs, labels, 3)
    assert g[0].tolist() == pytest.approx([0.7, 0.2, 0.1])
    # CMI by hand: only class 0 has spread
    kl = lambda p, q: sum(pi * math.log(pi / qi) for pi, qi in zip(p, q, strict=True))  # noqa: E731
    cmi = (kl([0.8, 0.1, 0.1], [0.7, 0.2, 0.1]) + kl([0.6, 0.3, 0.1], [0.7, 0.2, 0.1])) / 4
    assert conditional_mutual_information(probs, labels, 3).item() == pytest.approx(cmi)
    # Gamma by hand: priors (1/2, 1/4, 1/4); weights pi_c / (1 - pi_y)
    pri = [0.5, 0.25, 0.25]
    cross = lambda p, q: -sum(pi * math.log(qi) for pi, qi in zip(p, q, strict=True))  # noqa: E731
    cents = [[0.7, 0.2, 0.1], [0.2, 0.7, 0.1], [0.1, 0.1, 0.8]]
    rows = [[0.8, 0.1, 0.1], [0.6, 0.3, 0.1], [0.2, 0.7, 0.1], [0.1, 0.1, 0.8]]
    total = 0.0
    for p, y in zip(rows, [0, 0, 1, 2], strict=True):
        total += sum(pri[c] / (1 - pri[y]) * cross(p, cents[c]) for c in range(3) if c != y)
    gamma = total / 4
    assert separation(probs, labels, 3).item() == pytest.approx(gamma)
    assert ncmi(probs, labels, 3).item() == pytest.approx(cmi / gamma)


def test_bad_inputs():
    with pytest.raises(ValueError, match="labels"):
        conditional_mutual_information(torch.full((2, 2), 0.5), torch.tensor([0, 3]), 2)
    with pytest.raises(ValueError, match="rows"):
        conditional_mutual_information(torch.full((2, 2), 0.5), torch.tensor([0]), 2)


def test_measure_on_tiny_model(tiny_model, tokenizer, tmp_path):
    from cmi_toolkit.data.loading import load_glue, tokenize_glue

    from .glue_fixtures import write_task

    write_task(tmp_path, "sst2", n=20)
    ds = tokenize_glue(load_glue("sst2", source=tmp_path), tokenizer, "sst2")
    report = measure(tiny_model, ds["train"], tokenizer, task="sst2", batch_size=6, progress=False)
    # same numbers from an independent plain forward pass in dataset order
    batch = tokenizer(list(load_glue("sst2", source=tmp_path)["train"]["sentence"]), padding=True, return_tensors="pt")
    tiny_model.eval()
    with torch.no_grad():
        logits = tiny_model(**batch).logits.double()
    labels = torch.tensor(list(ds["train"]["label"]))
    assert report.num_samples == 20
    assert report.accuracy == pytest.approx((logits.argmax(-1) == labels).double().mean().item())
    assert report.metrics["accuracy"] == pytest.approx(report.accuracy)
    assert torch.allclose(report.logits.double(), logits, atol=1e-4)
    p = torch.softmax(logits, -1)
    assert report.output.cmi == pytest.approx(conditional_mutual_information(p, labels, 2).item(), abs=1e-5)
    assert len(report.feature.per_class_cmi) == 2 and report.feature.centroids.shape == (2, 32)
    assert set(report.summary()) >= {"accuracy", "feature_cmi", "feature_ncmi", "output_separation"}


def _gamma_by_loops(probs, labels, weights_of):
    """Gamma written as the definition reads, in plain Python: mean over rows of sum_{c != y} w_{y,c} H(p_i, g_c)."""
    rows = probs.tolist()
    ys = labels.tolist()
    k = len(rows[0])
    classes = sorted(set(ys))
    g = {c: [sum(r[j] for r, y in zip(rows, ys, strict=True) if y == c) / ys.count(c) for j in range(k)]
         for c in classes}
    total = 0.0
    for r, y in zip(rows, ys, strict=True):
        total += sum(weights_of(y, c) * -sum(p * math.log(q) for p, q in zip(r, g[c], strict=True))
                     for c in classes if c != y)
    return total / len(rows)


def test_one_gamma_weighting_on_unbalanced_classes():
    """Unbalanced classes (250/164/86 rows): ``separation``, ``ncmi`` and the loss's separation term all weigh the
    other class c of a class-y row by pi_c / (1 - pi_y), pi the labels' frequencies, and uniform priors give the
    MCMI released code's 1/(C - 1); the two weightings differ here, so the test tells them apart."""
    from cmi_toolkit.method.losses import CMILossConfig, cmi_regularized_loss

    gen = torch.Generator().manual_seed(0)
    counts = [250, 164, 86]
    labels = torch.cat([torch.full((n,), c) for c, n in enumerate(counts)])
    logits = torch.randn(len(labels), 3, generator=gen, dtype=torch.float64) + 2.0 * torch.nn.functional.one_hot(labels, 3)
    probs = torch.softmax(logits, -1)
    pi = [n / sum(counts) for n in counts]
    empirical = _gamma_by_loops(probs, labels, lambda y, c: pi[c] / (1 - pi[y]))
    uniform = _gamma_by_loops(probs, labels, lambda y, c: 1 / 2)
    assert abs(empirical - uniform) > 1e-3 * uniform  # the two weightings are different numbers here

    assert separation(probs, labels, 3).item() == pytest.approx(empirical, rel=1e-12)
    cmi = conditional_mutual_information(probs, labels, 3).item()
    assert ncmi(probs, labels, 3).item() == pytest.approx(cmi / empirical, rel=1e-12)
    centroids = class_centroids(probs, labels, 3)
    cfg = CMILossConfig(weight=0.0, separation_weight=1.0, space="output", temperature=1.0)
    terms = cmi_regularized_loss(logits, labels, centroids, cfg)
    assert terms["gamma"].item() == pytest.approx(empirical, rel=1e-12)
    flat = torch.full((3,), 1 / 3, dtype=torch.float64)
    assert cmi_regularized_loss(logits, labels, centroids, cfg, priors=flat)["gamma"].item() == pytest.approx(uniform, rel=1e-12)
    assert separation(probs, labels, 3, priors=flat).item() == pytest.approx(uniform, rel=1e-12)
