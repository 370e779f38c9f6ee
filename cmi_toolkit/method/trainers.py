"""CMI fine-tuning and knowledge distillation on ``transformers.Trainer``.

* :class:`CMITrainer`: ``compute_loss`` = CE + s * lambda * CMI (- beta * Gamma) on each batch,
  from one forward pass through a :class:`~cmi_toolkit.method.markov.MarkovSourceView`; every named term
  is averaged over the logging interval and logged (``ce``, ``cmi``, ``gamma``).
* :class:`CentroidCallback`: keeps the FPDCs/OPDCs in the chosen mode: a no-grad pass over the
  training set before training (``fixed``) or at every epoch start (``epoch``), or a streaming
  update after each optimiser step (``ema``). Under DDP each rank passes over its own shard and
  the sums are all-reduced, so all ranks hold the same centroids.
* :class:`DistillationTrainer`: alpha * T^2 * KL(teacher^T || student^T) + (1 - alpha) * CE.

Checkpoints are atomic: each is written into ``<output_dir>/.staging/`` and renamed to
``checkpoint-N`` only when complete (weights, optimiser, RNG, trainer state, centroids), so an
interruption never leaves a half-written ``checkpoint-N``; :func:`last_complete_checkpoint`
skips (with a one-line notice) any incomplete one left by older code or by hand.

No host synchronisation per training step: the named terms are summed on the device and copied
to the host (and checked for NaN/inf) only when the Trainer logs.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys

import torch
from torch import nn
from transformers import Trainer, TrainerCallback

from ..defaults import CENTROID_MODE, EMA_MOMENTUM, POOLING, TEMPERATURE
from .fpdc import CentroidEstimator
from .information import class_priors
from .losses import CMILossConfig, NonFiniteLossError, cmi_regularized_loss, distillation_loss
from .markov import MarkovSourceView

__all__ = ["CMITrainer", "CentroidCallback", "DistillationTrainer", "MeasureCallback", "last_complete_checkpoint",
           "checkpoint_problem"]

_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")
STAGING = ".staging"


class _TermLogger:
    """Running sums of named loss terms between two ``log`` calls, kept on the device.

    :meth:`add` queues no host copy; :meth:`flush` copies the means once per log line and raises
    :class:`~cmi_toolkit.method.losses.NonFiniteLossError` naming the first term that went NaN or infinite.
    """

    def __init__(self, settings: str = ""):
        self.sums: dict[str, torch.Tensor] = {}
        self.count = 0
        self.settings = settings

    def add(self, terms: dict[str, torch.Tensor]) -> None:
        for k, v in terms.items():
            v = v.detach().float()
            self.sums[k] = self.sums[k] + v if k in self.sums else v.clone()
        self.count += 1

    def flush(self, logs: dict[str, float]) -> None:
        if self.count:
            names = list(self.sums)
            values = (torch.stack([self.sums[k] for k in names]) / self.count).tolist()  # one host copy
            for name, value in zip(names, values, strict=True):
                if value != value or value in (float("inf"), float("-inf")):
                    raise NonFiniteLossError(
                        f"loss term {name!r} became {value} with {self.settings}. "
                        "Lower the weight (lambda / beta), raise the temperature, or lower the learning rate.")
            logs.update({k: round(v, 6) for k, v in zip(names, values, strict=True) if k != "total"})
        self.sums.clear()
        self.count = 0


class _NamedTermsMixin:
    """Adds the running means of the named loss terms to every training log line."""

    def log(self, logs: dict[str, float], *args, **kwargs) -> None:
        if "loss" in logs or "train_loss" in logs:
            self._terms.flush(logs)
        super().log(logs, *args, **kwargs)


MANIFEST = "manifest.json"
#: what a resume restores besides the weights and the trainer state (torch zip archives)
RESUME_FILES = ("optimizer.pt", "scheduler.pt")


def _staging_name() -> str:
    """This process's staging folder: two processes (or two identical commands) never share one; the ranks
    of one torchrun job do (each writes its RNG state into the same staged checkpoint)."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        return f"{STAGING}-ddp-{os.environ.get('TORCHELASTIC_RUN_ID') or os.environ.get('MASTER_PORT', '0')}"
    import socket

    return f"{STAGING}-{socket.gethostname()}-{os.getpid()}"


def write_manifest(folder: str | os.PathLike) -> None:
    """Record every file of a staged checkpoint with its size (``manifest.json``): a resume then checks that
    each one is there, whole."""
    folder = str(folder)
    files = {}
    for root, _, names in os.walk(folder):
        for name in names:
            if name != MANIFEST:
                path = os.path.join(root, name)
                files[os.path.relpath(path, folder)] = os.path.getsize(path)
    with open(os.path.join(folder, MANIFEST), "w", encoding="utf-8") as fh:
        json.dump({"files": files}, fh, indent=1, sort_keys=True)


def _zip_problem(path: str) -> str | None:
    """Why the torch archive at ``path`` cannot be loaded (None if its zip directory is whole and it loads as weights
    only, so resuming from it runs no code)."""
    import zipfile

    if not os.path.isfile(path):
        return f"no {os.path.basename(path)}"
    if not zipfile.is_zipfile(path):
        return f"{os.path.basename(path)} is truncated or not a torch archive"
    try:  # a whole archive may still hold objects that only a full unpickle (running code) would build
        torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as exc:  # any failure means the file cannot be resumed from safely
        return f"{os.path.basename(path)} does not load as weights only ({type(exc).__name__})"
    return None


def checkpoint_problem(folder: str | os.PathLike, required: tuple[str, ...] = ()) -> str | None:
    """Why ``folder`` is not a complete checkpoint (None if it is).

    Complete: ``trainer_state.json`` parses, ``model.safetensors`` holds every byte its header promises
    (a truncated file is caught without loading it), every file of its ``manifest.json`` is present with
    the size it was written with, and the optimiser and scheduler states (plus ``required``, e.g. the
    centroids of a CMI run) are present, whole torch archives that load as weights only.
    """
    folder = str(folder)
    manifest = os.path.join(folder, MANIFEST)
    if os.path.isfile(manifest):
        try:
            listed = json.loads(open(manifest, encoding="utf-8").read())["files"]
        except (ValueError, KeyError, TypeError, UnicodeDecodeError):
            return "manifest.json is unreadable"
        for name, size in listed.items():
            path = os.path.join(folder, name)
            if not os.path.isfile(path):
                return f"no {name}"
            if os.path.getsize(path) != size:
                return f"{name} is truncated ({os.path.getsize(path)} of {size} bytes)"
    for name in (*RESUME_FILES, *required):
        problem = _zip_problem(os.path.join(folder, name))
        if problem:
            return problem
    state = os.path.join(folder, "trainer_state.json")
    weights = os.path.join(folder, "model.safetensors")
    if not os.path.isfile(state):
        return "no trainer_state.json"
    try:
        json.loads(open(state, encoding="utf-8").read())
    except (ValueError, UnicodeDecodeError):
        return "trainer_state.json is not valid JSON"
    if not os.path.isfile(weights):
        return "no model.safetensors"
    from ..data.models import safetensors_problem

    return safetensors_problem(weights)


def last_complete_checkpoint(output_dir: str | os.PathLike, notify=None, required: tuple[str, ...] = ()) -> str | None:
    """The newest complete ``checkpoint-N`` under ``output_dir`` (:func:`checkpoint_problem`, with ``required``
    files); incomplete ones are skipped with a notice, so the previous complete one (or a fresh start) is used."""
    notify = notify or (lambda msg: print(msg, file=sys.stderr))
    if not os.path.isdir(output_dir):
        return None
    found = sorted(((int(m.group(1)), name) for name in os.listdir(output_dir) if (m := _CHECKPOINT.match(name))
                    and os.path.isdir(os.path.join(output_dir, name))), reverse=True)
    for _, name in found:
        path = os.path.join(output_dir, name)
        problem = checkpoint_problem(path, required)
        if problem is None:
            return path
        notify(f"notice: skipping incomplete checkpoint {path} ({problem})")
    return None


class _AtomicCheckpointMixin:
    """Writes each checkpoint into ``<output_dir>/.staging`` and renames it into place when complete."""

    def _extra_checkpoint_state(self, folder: str) -> None:
        """Hook: save more state into the staged checkpoint ``folder`` before it is renamed."""

    def _save_checkpoint(self, model, trial) -> None:
        from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

        run_dir = self._get_output_dir(trial=trial)
        staging = os.path.join(run_dir, _staging_name())
        name = f"{PREFIX_CHECKPOINT_DIR}-{self.state.global_step}"
        if self.args.should_save:
            shutil.rmtree(staging, ignore_errors=True)
        self.args.output_dir = staging
        try:
            super()._save_checkpoint(model, trial)
            if self.args.should_save:
                self._extra_checkpoint_state(os.path.join(staging, name))
        except OSError as exc:
            shutil.rmtree(staging, ignore_errors=True)
            raise OSError(f"{run_dir}: cannot write checkpoint {name} ({exc.strerror or exc}); free space or "
                          "pass --results_dir on a disk with room, then run the same command again") from None
        finally:
            self.args.output_dir = run_dir
        self.accelerator.wait_for_everyone()  # every rank has written its RNG state into the staged folder
        if self.args.should_save:
            write_manifest(os.path.join(staging, name))
            final = os.path.join(run_dir, name)
            if os.path.isdir(final):
                shutil.rmtree(final)
            os.replace(os.path.join(staging, name), final)
            shutil.rmtree(staging, ignore_errors=True)
            self._rotate_complete(run_dir, keep=final)
        self.accelerator.wait_for_everyone()

    def _rotate_complete(self, run_dir: str, keep: str) -> None:
        limit = self.args.save_total_limit
        if not limit:
            return
        found = sorted((int(m.group(1)), n) for n in os.listdir(run_dir) if (m := _CHECKPOINT.match(n)))
        for _, name in found[:-limit]:
            path = os.path.join(run_dir, name)
            if path != keep:
                shutil.rmtree(path, ignore_errors=True)


class CMITrainer(_AtomicCheckpointMixin, _NamedTermsMixin, Trainer):
    """A Trainer whose loss adds the CMI term.

    Args:
        cmi: the term's settings (lambda, objective, beta, space, temperature). ``weight=0`` and
            ``separation_weight=0`` give plain cross-entropy (no centroid work at all).
        centroid_mode: ``fixed``, ``epoch`` or ``ema`` (see :mod:`cmi_toolkit.method.fpdc`).
        pooling: which vector is h_x (see :class:`~cmi_toolkit.method.markov.MarkovSourceView`).
        ema_momentum: m of the ``ema`` update.
        centroid_batch_size: batch size of the no-grad centroid passes.
    """

    loss_is_scaled_for_ga = False  # compute_loss returns a per-batch mean

    def __init__(self, *args, cmi: CMILossConfig | None = None, centroid_mode: str = CENTROID_MODE,
                 pooling: str = POOLING, ema_momentum: float = EMA_MOMENTUM, centroid_batch_size: int = 64, **kwargs):
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
        self._terms = _TermLogger(self.cmi.describe())
        self._pending: list[tuple[torch.Tensor, torch.Tensor]] = []
        if self.active:
            self.add_callback(CentroidCallback(self))

    @property
    def resume_files(self) -> tuple[str, ...]:
        """Files a checkpoint of this trainer needs besides the Trainer's own (the centroids when active)."""
        return ("centroids.pt",) if self.active else ()

    def _extra_checkpoint_state(self, folder: str) -> None:
        if self.active:
            torch.save(self.centroids.state_dict(), os.path.join(folder, "centroids.pt"))

    def train(self, resume_from_checkpoint=None, **kwargs):
        """As ``Trainer.train``; a resumed run also restores the centroids saved with its checkpoint."""
        folder = resume_from_checkpoint
        if folder is True:
            folder = last_complete_checkpoint(self.args.output_dir, required=self.resume_files)
            resume_from_checkpoint = folder
        if isinstance(folder, str) and self.active:
            path = os.path.join(folder, "centroids.pt")
            if not os.path.isfile(path):  # fresh centroids would change the run without a word
                raise FileNotFoundError(f"{folder}: no centroids.pt to resume this CMI run from; delete the "
                                        "checkpoint folder to start the run afresh")
            self.centroids.load_state_dict(torch.load(path, weights_only=True))
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
                                         features=view_out.features, priors=self.priors, check=False)
            if model.training and self.centroids.mode == "ema":
                self._pending.append((view_out.probs(self.cmi.space).detach(), labels.detach()))
            outputs = {"logits": view_out.logits}
        if model.training:
            self._terms.add(terms)
        return (terms["total"], outputs) if return_outputs else terms["total"]

    def centroid_loader(self):
        """Non-shuffled, length-sorted batches of this rank's shard of the training set."""
        from ..data.loading import make_dataloader

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
        epoch = int(state.epoch + 1e-9) if state.epoch else 0
        # one pass per epoch; a run resumed inside epoch e already holds that epoch's centroids
        if est.mode == "epoch" and est.passes <= epoch:
            self._pass()

    def on_step_end(self, args, state, control, **kwargs):
        t = self.trainer
        for probs, labels in t._pending:
            t.centroids.observe(probs, labels)
        t._pending.clear()


class DistillationTrainer(_AtomicCheckpointMixin, _NamedTermsMixin, Trainer):
    """Trains a student on alpha * T^2 * KL(teacher^T || student^T) + (1 - alpha) * CE."""

    loss_is_scaled_for_ga = False

    def __init__(self, *args, teacher: nn.Module, alpha: float = 0.5, temperature: float = 4.0, **kwargs):
        super().__init__(*args, **kwargs)
        self.teacher = teacher.to(self.args.device).eval()
        for p in self.teacher.parameters():
            p.requires_grad_(False)
        self.alpha, self.temperature = alpha, temperature
        self._terms = _TermLogger(f"alpha={alpha}, T={temperature}")

    def compute_loss(self, model: nn.Module, inputs, return_outputs: bool = False, num_items_in_batch=None):
        inputs = dict(inputs)
        labels = inputs.pop("labels")
        inputs.pop("idx", None)
        logits = model(**inputs).logits
        with torch.no_grad():
            teacher_logits = self.teacher(**inputs).logits
        terms = distillation_loss(logits, teacher_logits, labels, self.alpha, self.temperature, check=False)
        if model.training:
            self._terms.add(terms)
        return (terms["total"], {"logits": logits}) if return_outputs else terms["total"]


class MeasureCallback(TrainerCallback):
    """Measures the model on ``dataset`` every ``every`` optimiser steps (and at the end).

    ``history`` collects one :meth:`~cmi_toolkit.method.measure.MeasureReport.summary` per
    measurement, with its ``step``: accuracy, CMI, separation and NCMI along training.
    """

    def __init__(self, dataset, tokenizer, every: int = 20, temperature: float = TEMPERATURE, pooling: str = POOLING):
        self.dataset, self.tokenizer, self.every = dataset, tokenizer, every
        self.temperature, self.pooling = temperature, pooling
        self.history: list[dict] = []

    def _measure(self, model, step: int) -> None:
        from .measure import measure

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
