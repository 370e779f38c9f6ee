"""CMI fine-tuning and knowledge distillation on ``transformers.Trainer``.

* :class:`CMITrainer`: ``compute_loss`` = CE + s * lambda * CMI (- beta * Gamma) on each batch,
  from one forward pass through a :class:`~cmi_toolkit.markov.MarkovSourceView`; every named term
  is averaged over the logging interval and logged (``ce``, ``cmi``, ``gamma``).
* :class:`CentroidCallback`: keeps the FPDCs/OPDCs in the chosen mode: a no-grad pass over the
  training set before training (``fixed``) or at every epoch start (``epoch``), or a streaming
  update after each optimiser step (``ema``). Under DDP each rank passes over its own shard and
  the sums are all-reduced, so all ranks hold the same centroids.
* :class:`DistillationTrainer`: alpha * T^2 * KL(teacher^T || student^T) + (1 - alpha) * CE.
"""

from __future__ import annotations

import os
from collections import defaultdict

import torch
from torch import nn
from transformers import Trainer, TrainerCallback

from .fpdc import CentroidEstimator
from .information import class_priors
from .losses import CMILossConfig, cmi_regularized_loss, distillation_loss
from .markov import MarkovSourceView

__all__ = ["CMITrainer", "CentroidCallback", "DistillationTrainer", "MeasureCallback"]


class _TermLogger:
    """Running means of named loss terms between two ``log`` calls."""

    def __init__(self):
        self.sums: dict[str, float] = defaultdict(float)
        self.count = 0

    def add(self, terms: dict[str, torch.Tensor]) -> None:
        for k, v in terms.items():
            if k != "total":
                self.sums[k] += float(v.detach())
        self.count += 1

    def flush(self, logs: dict[str, float]) -> None:
        if self.count:
            logs.update({k: round(v / self.count, 6) for k, v in self.sums.items()})
        self.sums.clear()
        self.count = 0


class _NamedTermsMixin:
    """Adds the running means of the named loss terms to every training log line."""

    def log(self, logs: dict[str, float], *args, **kwargs) -> None:
        if "loss" in logs:
            self._terms.flush(logs)
        super().log(logs, *args, **kwargs)


class CMITrainer(_NamedTermsMixin, Trainer):
    """A Trainer whose loss adds the CMI term.

    Args:
        cmi: the term's settings (lambda, objective, beta, space, temperature). ``weight=0`` and
            ``separation_weight=0`` give plain cross-entropy (no centroid work at all).
        centroid_mode: ``fixed``, ``epoch`` or ``ema`` (see :mod:`cmi_toolkit.fpdc`).
        pooling: which vector is h_x (see :class:`~cmi_toolkit.markov.MarkovSourceView`).
        ema_momentum: m of the ``ema`` update.
        centroid_batch_size: batch size of the no-grad centroid passes.
    """

    loss_is_scaled_for_ga = False  # compute_loss returns a per-batch mean

    def __init__(self, *args, cmi: CMILossConfig | None = None, centroid_mode: str = "epoch",
                 pooling: str = "auto", ema_momentum: float = 0.9, centroid_batch_size: int = 64, **kwargs):
        super().__init__(*args, **kwargs)
        self.cmi = cmi or CMILossConfig(weight=0.0)
        self.active = self.cmi.weight > 0 or self.cmi.separation_weight > 0
        model = self.model
        self.view = MarkovSourceView(model, pooling=pooling, temperature=self.cmi.temperature,
                                     output_temperature=self.cmi.temperature)
        num_labels = model.config.num_labels
        dim = self.view.feature_dim if self.cmi.space == "feature" else num_labels
        self.centroids = CentroidEstimator(num_labels, dim, mode=centroid_mode, momentum=ema_momentum,
                                           space=self.cmi.space, device=self.args.device)
        self.centroid_batch_size = centroid_batch_size
        self.priors = None
        if self.train_dataset is not None and "label" in self.train_dataset.column_names:
            self.priors = class_priors(torch.tensor(list(self.train_dataset["label"])), num_labels)
        self._terms = _TermLogger()
        self._pending: list[tuple[torch.Tensor, torch.Tensor]] = []
        if self.active:
            self.add_callback(CentroidCallback(self))

    def train(self, resume_from_checkpoint=None, **kwargs):
        """As ``Trainer.train``; a resumed run also restores the centroids saved with its checkpoint."""
        from transformers.trainer_utils import get_last_checkpoint

        folder = resume_from_checkpoint
        if folder is True:
            folder = get_last_checkpoint(self.args.output_dir)
        if isinstance(folder, str) and os.path.isfile(os.path.join(folder, "centroids.pt")):
            self.centroids.load_state_dict(torch.load(os.path.join(folder, "centroids.pt")))
        return super().train(resume_from_checkpoint=resume_from_checkpoint, **kwargs)

    def compute_loss(self, model: nn.Module, inputs, return_outputs: bool = False, num_items_in_batch=None):
        inputs = dict(inputs)
        labels = inputs.pop("labels")
        inputs.pop("idx", None)
        if not self.active:
            logits = model(**inputs).logits
            ce = nn.functional.cross_entropy(logits, labels)
            terms = {"ce": ce, "total": ce}
            outputs = {"logits": logits}
        else:
            view_out = self.view(_caller=model, **inputs)
            terms = cmi_regularized_loss(view_out.logits, labels, self.centroids.centroids, self.cmi,
                                         features=view_out.features, priors=self.priors)
            if model.training and self.centroids.mode == "ema":
                self._pending.append((view_out.probs(self.cmi.space).detach(), labels.detach()))
            outputs = {"logits": view_out.logits}
        if model.training:
            self._terms.add(terms)
        return (terms["total"], outputs) if return_outputs else terms["total"]

    def centroid_loader(self):
        """Non-shuffled, length-sorted batches of this rank's shard of the training set."""
        from .data import make_dataloader

        dataset = self.train_dataset
        world = self.args.world_size
        if world > 1:
            dataset = dataset.shard(num_shards=world, index=self.args.process_index, contiguous=True)
        return make_dataloader(dataset, self.processing_class, batch_size=self.centroid_batch_size, shuffle=False)


class CentroidCallback(TrainerCallback):
    """Keeps a :class:`CMITrainer`'s centroids in its mode (pass at epoch start, or EMA after steps)."""

    def __init__(self, trainer: CMITrainer):
        self.trainer = trainer

    def _pass(self) -> None:
        t = self.trainer
        t.centroids.fit(t.view, t.centroid_loader(), progress=t.args.process_index == 0 and not t.args.disable_tqdm)

    def on_train_begin(self, args, state, control, **kwargs):
        est = self.trainer.centroids
        if est.mode in ("fixed", "ema") and est.passes == 0:
            # fixed: the one pass; ema: a starting point, so no class begins at the uniform row
            self._pass()

    def on_epoch_begin(self, args, state, control, **kwargs):
        est = self.trainer.centroids
        if est.mode == "epoch":
            self._pass()

    def on_save(self, args, state, control, **kwargs):
        if args.should_save:
            folder = os.path.join(args.output_dir, f"checkpoint-{state.global_step}")
            os.makedirs(folder, exist_ok=True)
            torch.save(self.trainer.centroids.state_dict(), os.path.join(folder, "centroids.pt"))

    def on_step_end(self, args, state, control, **kwargs):
        t = self.trainer
        for probs, labels in t._pending:
            t.centroids.observe(probs, labels)
        t._pending.clear()


class DistillationTrainer(_NamedTermsMixin, Trainer):
    """Trains a student on alpha * T^2 * KL(teacher^T || student^T) + (1 - alpha) * CE."""

    loss_is_scaled_for_ga = False

    def __init__(self, *args, teacher: nn.Module, alpha: float = 0.5, temperature: float = 4.0, **kwargs):
        super().__init__(*args, **kwargs)
        self.teacher = teacher.to(self.args.device).eval()
        for p in self.teacher.parameters():
            p.requires_grad_(False)
        self.alpha, self.temperature = alpha, temperature
        self._terms = _TermLogger()

    def compute_loss(self, model: nn.Module, inputs, return_outputs: bool = False, num_items_in_batch=None):
        inputs = dict(inputs)
        labels = inputs.pop("labels")
        inputs.pop("idx", None)
        logits = model(**inputs).logits
        with torch.no_grad():
            teacher_logits = self.teacher(**inputs).logits
        terms = distillation_loss(logits, teacher_logits, labels, self.alpha, self.temperature)
        if model.training:
            self._terms.add(terms)
        return (terms["total"], {"logits": logits}) if return_outputs else terms["total"]


class MeasureCallback(TrainerCallback):
    """Measures the model on ``dataset`` every ``every`` optimiser steps (and at the end).

    ``history`` collects one :meth:`~cmi_toolkit.information.MeasureReport.summary` per
    measurement, with its ``step``: accuracy, CMI, separation and NCMI along training.
    """

    def __init__(self, dataset, tokenizer, every: int = 20, temperature: float = 1.0, pooling: str = "auto"):
        self.dataset, self.tokenizer, self.every = dataset, tokenizer, every
        self.temperature, self.pooling = temperature, pooling
        self.history: list[dict] = []

    def _measure(self, model, step: int) -> None:
        from .information import measure

        report = measure(model, self.dataset, self.tokenizer, temperature=self.temperature, pooling=self.pooling,
                         keep_outputs=False, progress=False)
        self.history.append({"step": step, **report.summary()})

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        self._measure(model, 0)

    def on_step_end(self, args, state, control, model=None, **kwargs):
        if state.global_step % self.every == 0:
            self._measure(model, state.global_step)

    def on_train_end(self, args, state, control, model=None, **kwargs):
        if not self.history or self.history[-1]["step"] != state.global_step:
            self._measure(model, state.global_step)
