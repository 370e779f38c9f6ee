"""bf16 autocast on the CPU path of every trainer: it is really on, the loss terms stay fp32, runs learn and record."""

from __future__ import annotations

import math

import pytest
import torch

from cmi_toolkit.method.losses import CMILossConfig, cmi_regularized_loss, distillation_loss
from cmi_toolkit.runs.execute import execute
from cmi_toolkit.runs.store import ResultStore

from .test_training import _cfg, _easy_sst2


def test_loss_terms_are_fp32_under_autocast():
    logits = torch.randn(6, 2, dtype=torch.bfloat16, requires_grad=True)
    feats = torch.randn(6, 16, dtype=torch.bfloat16, requires_grad=True)
    labels = torch.tensor([0, 1, 0, 1, 1, 0])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        terms = cmi_regularized_loss(logits, labels, torch.full((2, 16), 1 / 16), CMILossConfig(weight=0.1),
                                     features=feats)
        kd = distillation_loss(logits, torch.randn(6, 2, dtype=torch.bfloat16), labels)
    assert all(v.dtype == torch.float32 for v in [*terms.values(), *kd.values()])


@pytest.mark.slow
@pytest.mark.parametrize("method", ["ce", "cmi", "mcmi", "kd_ce"])
def test_every_method_trains_under_cpu_bf16_autocast(tmp_path, tiny_model_dir, method):
    from cmi_toolkit.method import trainers as training

    seen = []  # dtype of the trained model's classifier output at every training forward pass
    originals = {cls: cls.compute_loss for cls in (training.CMITrainer, training.DistillationTrainer)}

    def spy(orig):
        def compute_loss(self, model, inputs, *a, **k):
            if model.training and not getattr(self, "_spied", False):
                self._spied = True
                model.get_submodule("classifier").register_forward_hook(
                    lambda mod, i, out: seen.append(out.dtype) if mod.training else None)
            return orig(self, model, inputs, *a, **k)
        return compute_loss

    for cls, orig in originals.items():
        cls.compute_loss = spy(orig)
    try:
        glue = _easy_sst2(tmp_path / "glue")
        rec = execute(_cfg(tiny_model_dir, method=method, bf16=True), ResultStore(tmp_path / "res"), glue_dir=str(glue),
                      progress=False)
    finally:
        for cls, orig in originals.items():
            cls.compute_loss = orig
    assert seen and all(d == torch.bfloat16 for d in seen)  # every training forward ran under bf16 autocast
    assert rec["params"]["bf16"] is True and math.isfinite(rec["checks"]["final_train_ce"])
    assert rec["predictions"]["n"] == rec["eval_samples"]
