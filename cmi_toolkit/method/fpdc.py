"""FPDC / OPDC estimators: per-class centroids of f_x (feature space) or P_x (output space).

FPDC_y = g_y = E[f_X | Y = y],   OPDC_y = Q_y = E[P_X | Y = y].

Three update modes, each exact about what it computes:

* ``fixed``: one no-grad pass over the training set before training; the centroids stay.
* ``epoch``: one no-grad pass at the start of every epoch (alternating minimisation: centroids
  for fixed weights, then weights for fixed centroids).
* ``ema``: no extra pass; after each training batch, every class present in the batch moves
  towards its batch mean,  g_y <- m * g_y + (1 - m) * mean_{i in batch, y_i = y} p_i,  and a
  class seen for the first time takes its batch mean.

A class absent from a pass or batch keeps its centroid (uniform until first seen). Updates are
vectorised (``index_add_``/``bincount``). Under ``torch.distributed`` the per-class sums and
counts are all-reduced before dividing, so every rank holds the centroids of the union of the
ranks' data.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import Tensor
from tqdm.auto import tqdm

from ..defaults import CENTROID_MODE, EMA_MOMENTUM

__all__ = ["MODES", "CentroidEstimator"]

MODES = ("fixed", "epoch", "ema")


def _all_reduce(*tensors: Tensor) -> None:
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        for t in tensors:
            dist.all_reduce(t, op=dist.ReduceOp.SUM)


class CentroidEstimator:
    """Per-class centroids of distributions (C x K), kept in one of :data:`MODES`.

    Args:
        num_classes: C.
        dim: K, the support size of the distributions (hidden size for FPDCs, labels for OPDCs).
        mode: ``fixed``, ``epoch`` or ``ema``.
        momentum: m of the ``ema`` update.
        space: ``feature`` (FPDC) or ``output`` (OPDC): which distribution of a
            :class:`~cmi_toolkit.method.markov.MarkovOutput` :meth:`fit` reads.
    """

    def __init__(self, num_classes: int, dim: int, mode: str = CENTROID_MODE, momentum: float = EMA_MOMENTUM,
                 space: str = "feature", device: torch.device | str | None = None,
                 dtype: torch.dtype = torch.float32):
        if mode not in MODES:
            raise ValueError(f"centroid mode must be one of {MODES}, got {mode!r}")
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"ema momentum must lie in [0, 1), got {momentum}")
        if space not in ("feature", "output"):
            raise ValueError(f"space must be 'feature' or 'output', got {space!r}")
        self.num_classes, self.dim, self.mode, self.momentum, self.space = num_classes, dim, mode, momentum, space
        self.centroids = torch.full((num_classes, dim), 1.0 / dim, device=device, dtype=dtype)
        self.seen = torch.zeros(num_classes, dtype=torch.long, device=device)
        self._sums: Tensor | None = None
        self._counts: Tensor | None = None
        self.passes = 0

    # -- pass-based modes -------------------------------------------------------------------------
    def needs_pass(self, epoch: int) -> bool:
        """Whether a no-grad pass must run at the start of ``epoch`` (0-based)."""
        return self.mode == "epoch" or (self.mode == "fixed" and self.passes == 0)

    def begin_pass(self) -> None:
        self._sums = torch.zeros_like(self.centroids)
        self._counts = torch.zeros(self.num_classes, dtype=self.centroids.dtype, device=self.centroids.device)

    def accumulate(self, probs: Tensor, labels: Tensor) -> None:
        """Add a batch to the running per-class sums of the current pass."""
        if self._sums is None:
            raise RuntimeError("call begin_pass() before accumulate()")
        probs = probs.detach().to(self._sums)
        labels = labels.to(self._sums.device).long()
        self._sums.index_add_(0, labels, probs)
        self._counts += torch.bincount(labels, minlength=self.num_classes).to(self._counts)

    def end_pass(self) -> None:
        """All-reduce the pass's sums and counts and set the centroid of every class present."""
        if self._sums is None:
            raise RuntimeError("end_pass() without begin_pass()")
        _all_reduce(self._sums, self._counts)
        present = self._counts > 0
        self.centroids[present] = self._sums[present] / self._counts[present, None]
        self.seen += self._counts.long()
        self._sums = self._counts = None
        self.passes += 1

    @torch.no_grad()
    def fit(self, view, loader, progress: bool = True) -> Tensor:
        """One no-grad pass of ``view`` (a :class:`~cmi_toolkit.method.markov.MarkovSourceView`) over ``loader``."""
        model = view.model
        was_training = model.training
        model.eval()
        device = next(model.parameters()).device
        self.begin_pass()
        # the pass leaves the global random stream untouched (a DataLoader iterator draws a seed from
        # it), so training's batch order is the same with or without it, and after a resumption
        with torch.random.fork_rng(devices=[]):
            try:
                for batch in tqdm(loader, desc=f"centroids ({self.space})", disable=not progress, leave=False):
                    labels = batch["labels"]
                    inputs = {k: v.to(device) for k, v in batch.items() if k not in ("labels", "idx")}
                    self.accumulate(view(**inputs).probs(self.space), labels)
            finally:
                model.train(was_training)
        self.end_pass()
        return self.centroids

    # -- streaming mode -----------------------------------------------------------------------------
    @torch.no_grad()
    def update_ema(self, probs: Tensor, labels: Tensor) -> None:
        """g_y <- m g_y + (1 - m) batch_mean_y for the classes present (first sight: batch mean)."""
        probs = probs.detach().to(self.centroids)
        labels = labels.to(self.centroids.device).long()
        sums = torch.zeros_like(self.centroids).index_add_(0, labels, probs)
        counts = torch.bincount(labels, minlength=self.num_classes).to(self.centroids)
        _all_reduce(sums, counts)
        # masks through torch.where rather than boolean indexing: no host synchronisation per step
        present = (counts > 0)[:, None]
        batch_mean = sums / counts.clamp_min(1)[:, None]
        first = (self.seen == 0)[:, None]
        moved = torch.where(first, batch_mean, self.momentum * self.centroids + (1 - self.momentum) * batch_mean)
        self.centroids = torch.where(present, moved, self.centroids)
        self.seen += counts.long()

    def observe(self, probs: Tensor, labels: Tensor) -> None:
        """Called after every training batch: updates in ``ema`` mode, nothing otherwise."""
        if self.mode == "ema":
            self.update_ema(probs, labels)

    # -- persistence --------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {"centroids": self.centroids.clone(), "seen": self.seen.clone(), "passes": self.passes,
                "mode": self.mode, "space": self.space, "momentum": self.momentum}

    def load_state_dict(self, state: dict) -> None:
        self.centroids = state["centroids"].to(self.centroids)
        self.seen = state["seen"].to(self.seen)
        self.passes = int(state["passes"])

    def to(self, device) -> CentroidEstimator:
        self.centroids = self.centroids.to(device)
        self.seen = self.seen.to(device)
        return self
