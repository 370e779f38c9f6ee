import pytest
import torch
import torch.nn.functional as F

from cmi_toolkit.method.losses import (
    CMILossConfig,
    NonFiniteLossError,
    cmi_regularized_loss,
    distillation_loss,
)


def _inputs(seed=0, n=6, k=3, d=5):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, k, generator=g, dtype=torch.float64, requires_grad=True)
    feats = torch.randn(n, d, generator=g, dtype=torch.float64, requires_grad=True)
    labels = torch.tensor([0, 1, 2, 0, 1, 2])
    cent = torch.softmax(torch.randn(k, d, generator=g, dtype=torch.float64), -1)
    return logits, feats, labels, cent


def test_terms_by_hand():
    logits, feats, labels, cent = _inputs()
    cfg = CMILossConfig(weight=0.3, space="feature", temperature=2.0)
    terms = cmi_regularized_loss(logits, labels, cent, cfg, features=feats)
    q = torch.softmax(feats / 2.0, -1)
    cmi = (q * (q.log() - cent[labels].log())).sum(-1).mean()
    ce = F.cross_entropy(logits, labels)
    assert terms["cmi"].item() == pytest.approx(cmi.item())
    assert terms["total"].item() == pytest.approx((ce + 0.3 * cmi).item())
    up = cmi_regularized_loss(logits, labels, cent, CMILossConfig(weight=0.3, objective="maximize", space="feature",
                                                                  temperature=2.0), features=feats)
    assert up["total"].item() == pytest.approx((ce - 0.3 * cmi).item())
    sep = cmi_regularized_loss(logits, labels, torch.softmax(torch.randn(3, 3, dtype=torch.float64), -1),
                               CMILossConfig(weight=0.1, separation_weight=0.2, space="output"))
    assert set(sep) == {"ce", "cmi", "gamma", "total"}
    assert sep["total"].item() == pytest.approx((sep["ce"] + 0.1 * sep["cmi"] - 0.2 * sep["gamma"]).item())


@pytest.mark.parametrize("space", ["feature", "output"])
@pytest.mark.parametrize("objective", ["minimize", "maximize"])
def test_gradcheck(space, objective):
    logits, feats, labels, cent = _inputs(1)
    if space == "output":
        cent = torch.softmax(torch.randn(3, 3, dtype=torch.float64), -1)
    cfg = CMILossConfig(weight=0.5, separation_weight=0.1, objective=objective, space=space, temperature=1.5)
    assert torch.autograd.gradcheck(
        lambda z, h: cmi_regularized_loss(z, labels, cent, cfg, features=h)["total"], (logits, feats))


def test_distillation_gradcheck_and_value():
    s, _, labels, _ = _inputs(2)
    t = torch.randn(6, 3, dtype=torch.float64)
    terms = distillation_loss(s, t, labels, alpha=0.7, temperature=3.0)
    pt, ps = torch.softmax(t / 3, -1), torch.softmax(s / 3, -1)
    kd = (pt * (pt.log() - ps.log())).sum(-1).mean() * 9
    assert terms["kd"].item() == pytest.approx(kd.item())
    assert terms["total"].item() == pytest.approx((0.7 * kd + 0.3 * F.cross_entropy(s, labels)).item())
    assert torch.autograd.gradcheck(lambda z: distillation_loss(z, t, labels, 0.7, 3.0)["total"], (s,))


def test_non_finite_names_term_and_setting():
    logits, feats, labels, cent = _inputs()
    bad = logits.detach().clone()
    bad[0, 0] = float("nan")
    with pytest.raises(NonFiniteLossError, match=r"'ce'.*lambda=1000.0"):
        cmi_regularized_loss(bad, labels, cent, CMILossConfig(weight=1000.0, space="feature"), features=feats)
    with pytest.raises(NonFiniteLossError, match=r"'kd'.*T=2"):
        distillation_loss(logits, torch.full((6, 3), float("inf")), labels, temperature=2)
    with pytest.raises(ValueError):
        CMILossConfig(weight=-1)
    with pytest.raises(ValueError):
        CMILossConfig(objective="sideways")
