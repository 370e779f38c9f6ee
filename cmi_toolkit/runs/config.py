"""A run's configuration: :class:`RunConfig` (task, method, model, seed and parameters; their hash is the
run's key, :func:`~cmi_toolkit.runs.store.run_key`) and :func:`dependencies` (the teacher a distilled student
needs). A field's type is checked where a value arrives (:func:`field_type_problem`).
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from dataclasses import asdict, dataclass, field
from typing import Any

from .. import defaults as D
from .store import run_key

__all__ = ["METHODS", "RunConfig"]



METHODS = ("ce", "cmi", "mcmi", "student", "kd_ce", "kd_mcmi")
CMI_FIELDS = ("cmi_weight", "separation_weight", "space", "temperature", "pooling", "centroid_mode", "ema_momentum")
KD_FIELDS = ("student_layers", "student_model", "kd_alpha", "kd_temperature")


@dataclass
class RunConfig:
    """Everything that defines a run (its hash is the run's key)."""

    task: str = field(default="sst2", metadata={"help": "GLUE task"})
    method: str = field(default="cmi", metadata={"help": f"one of {METHODS}"})
    model: str = field(default=D.MODEL, metadata={"help": "alias, local folder or hub id"})
    seed: int = field(default=0, metadata={"help": "training seed (weights of the head, batch order)"})
    max_train_samples: int | None = field(default=2000, metadata={"help": "seeded training subset (all: every row)"})
    max_eval_samples: int | None = field(default=None, metadata={"help": "seeded evaluation subset"})
    data_seed: int = field(default=0, metadata={"help": "seed of the data subsets (fixed across training seeds)"})
    eval_on: str = field(default="dev", metadata={"help": "dev (GLUE validation) or heldout (a split of train, for sweeps)"})
    heldout_fraction: float = field(default=0.2, metadata={"help": "share of the training subset held out when eval_on=heldout"})
    max_length: int = field(default=128, metadata={"help": "truncate inputs to this many tokens"})
    epochs: float = field(default=3.0, metadata={"help": "training epochs"})
    batch_size: int = field(default=32, metadata={"help": "training batch size per device"})
    learning_rate: float = field(default=5e-5, metadata={"help": "peak learning rate"})
    weight_decay: float = field(default=0.01, metadata={"help": "AdamW weight decay"})
    warmup_ratio: float = field(default=0.1, metadata={"help": "linear warm-up share of the steps"})
    cmi_weight: float = field(default=D.CMI_WEIGHT, metadata={"help": "lambda of the CMI term (cmi, mcmi)"})
    separation_weight: float = field(default=0.0, metadata={"help": "beta of the separation term"})
    space: str = field(default=D.SPACE, metadata={"help": "feature (f_x) or output (P_x)"})
    temperature: float = field(default=D.TEMPERATURE, metadata={"help": "T of the CMI distributions"})
    pooling: str = field(default=D.POOLING, metadata={"help": "h_x: auto, pooler, cls, mean"})
    centroid_mode: str = field(default=D.CENTROID_MODE, metadata={"help": "fixed, epoch or ema"})
    ema_momentum: float = field(default=D.EMA_MOMENTUM, metadata={"help": "momentum of the ema centroids"})
    student_layers: str = field(default="0,2,4", metadata={"help": "teacher layers the student keeps"})
    student_model: str | None = field(default=None, metadata={"help": "a separate student model id instead of make_student"})
    kd_alpha: float = field(default=0.5, metadata={"help": "alpha of the distillation loss"})
    kd_temperature: float = field(default=4.0, metadata={"help": "T of the distillation loss"})
    bf16: bool = field(default=False, metadata={
        "help": "bf16 autocast in training (a CPU with AVX-512 BF16, or a GPU); evaluation stays fp32; part of the key"})

    def __post_init__(self):
        from ..data.tasks import get_task
        from ..method.fpdc import MODES
        from ..method.markov import POOLINGS

        _check_types(self)
        for name in ("seed", "data_seed"):  # numpy seeds lie in [0, 2**32 - 1]
            if not 0 <= getattr(self, name) <= 2**32 - 1:
                raise ValueError(f"--{name} must be an integer in [0, 2**32 - 1], got {getattr(self, name)}")
        if self.method not in METHODS:
            raise ValueError(f"--method must be one of {', '.join(METHODS)}, got {self.method!r}")
        task = get_task(self.task)  # unknown names raise, listing the known tasks
        if task.is_regression:
            raise ValueError(f"{self.task} is a regression task; CMI fine-tuning and distillation need class labels")
        self.task = task.hub_config  # sst2, SST-2 and sst name one task and give one key
        if self.eval_on not in ("dev", "heldout"):
            raise ValueError(f"--eval_on must be 'dev' or 'heldout', got {self.eval_on!r}")
        for name in ("cmi_weight", "separation_weight"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"--{name} must be a finite number >= 0, got {value}")
            if value > D.LAMBDA_WARN_ABOVE:
                warnings.warn(f"--{name} {value:g} is above {D.LAMBDA_WARN_ABOVE:g}: the CMI term will dominate "
                              "cross-entropy; the kit's measured default is " + str(D.CMI_WEIGHT), stacklevel=2)
        for name in ("epochs", "learning_rate", "temperature", "kd_temperature"):
            value = getattr(self, name)
            if not math.isfinite(value) or value <= 0:
                raise ValueError(f"--{name} must be a finite number > 0, got {value}")
        for name in ("batch_size", "max_length"):
            if getattr(self, name) <= 0:
                raise ValueError(f"--{name} must be > 0, got {getattr(self, name)}")
        for name in ("max_train_samples", "max_eval_samples"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ValueError(f"--{name} must be > 0 (or omitted for all rows), got {value}")
        if not (isinstance(self.warmup_ratio, (int, float)) and 0.0 <= self.warmup_ratio < 1.0):
            raise ValueError(f"--warmup_ratio is the share of the steps spent warming up: it must lie in [0, 1), "
                             f"got {self.warmup_ratio}")
        if not math.isfinite(self.weight_decay) or self.weight_decay < 0:
            raise ValueError(f"--weight_decay must be a finite number >= 0, got {self.weight_decay}")
        if not 0.0 < self.heldout_fraction < 1.0:
            raise ValueError(f"--heldout_fraction must lie in (0, 1), got {self.heldout_fraction}")
        if not 0.0 <= self.kd_alpha <= 1.0:
            raise ValueError(f"--kd_alpha must lie in [0, 1], got {self.kd_alpha}")
        if not 0.0 <= self.ema_momentum < 1.0:
            raise ValueError(f"--ema_momentum must lie in [0, 1), got {self.ema_momentum}")
        if self.space not in ("feature", "output"):
            raise ValueError(f"--space must be 'feature' or 'output', got {self.space!r}")
        if self.centroid_mode not in MODES:
            raise ValueError(f"--centroid_mode must be one of {', '.join(MODES)}, got {self.centroid_mode!r}")
        if self.pooling not in POOLINGS:
            raise ValueError(f"--pooling must be one of {', '.join(POOLINGS)}, got {self.pooling!r}")

    def params(self) -> dict[str, Any]:
        """The parameters that matter for this method (hashed into the key).

        A ``kd_mcmi`` student keeps its teacher's CMI settings: another teacher is another run.
        ``bf16`` appears only when on, so full-precision runs keep their keys.
        """
        p = asdict(self)
        if not p["bf16"]:
            p.pop("bf16")
        if self.method in ("ce", "student", "kd_ce"):
            for k in CMI_FIELDS:
                p.pop(k)
        if self.method in ("ce", "cmi", "mcmi"):
            for k in KD_FIELDS:
                p.pop(k)
        if self.method == "student":
            for k in ("kd_alpha", "kd_temperature"):
                p.pop(k)
        return p

    def ignored(self) -> tuple[str, ...]:
        """The fields this run's method does not use (they are left out of its key)."""
        return ignored_fields(self.method)

    @property
    def key(self) -> str:
        """Hash of :meth:`params` alone: names the run within a suite whatever the data."""
        return run_key(self.params())

    def data_fingerprint(self, glue_dir: str | None = None) -> dict[str, Any]:
        """:func:`~cmi_toolkit.data.loading.glue_fingerprint` of the data this run reads."""
        from ..data.loading import glue_fingerprint

        return glue_fingerprint(self.task, glue_dir, self.max_train_samples, self.max_eval_samples, self.data_seed)

    def store_key(self, glue_dir: str | None = None, fingerprint: dict[str, Any] | None = None) -> str:
        """The record's key: hash of :meth:`params` and the data fingerprint's digest."""
        fingerprint = fingerprint or self.data_fingerprint(glue_dir)
        return run_key({**self.params(), "data": fingerprint["digest"]})

    def teacher(self) -> RunConfig:
        """The teacher run of a ``kd_*`` run."""
        method = {"kd_ce": "ce", "kd_mcmi": "mcmi"}[self.method]
        return dataclasses.replace(self, method=method)


def dependencies(cfg: RunConfig) -> list[RunConfig]:
    """The runs :func:`execute` makes (or reads) before ``cfg``: the teacher of a ``kd_*`` run, the CE twin of a
    ``cmi`` / ``mcmi`` run (for its mechanism check). Their own dependencies come from calling this again."""
    if cfg.method in ("kd_ce", "kd_mcmi"):
        return [cfg.teacher()]
    if cfg.method in ("cmi", "mcmi"):
        return [dataclasses.replace(cfg, method="ce")]
    return []


def field_type_problem(name: str, value: Any) -> str | None:
    """Why ``value`` is not of the type of RunConfig field ``name`` (None if it is): integers for ints,
    numbers for floats, strings for strings, true/false for flags, null only where the field allows it."""
    import typing

    hint = typing.get_type_hints(RunConfig)[name]
    args = typing.get_args(hint)
    base = next((a for a in args if a is not type(None)), hint)
    if value is None:
        return None if type(None) in args else "null is not allowed here"
    ok = {bool: isinstance(value, bool),
          int: isinstance(value, int) and not isinstance(value, bool),
          float: isinstance(value, (int, float)) and not isinstance(value, bool),
          str: isinstance(value, str)}.get(base, True)
    kind = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}.get(base, "")
    return None if ok else f"expected {kind}, got {value!r}"


def _check_types(cfg: RunConfig) -> None:
    """Every field of the type it is declared with (NumPy scalars become Python numbers first, so that the
    key hashes 3, not "3")."""
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if hasattr(value, "item") and type(value).__module__ == "numpy":
            setattr(cfg, f.name, value.item())
        problem = field_type_problem(f.name, getattr(cfg, f.name))
        if problem:
            raise ValueError(f"--{f.name}: {problem}")


def ignored_fields(method: str) -> tuple[str, ...]:
    """Fields of :class:`RunConfig` that ``method`` does not use (what :meth:`RunConfig.params` leaves out)."""
    out: list[str] = []
    if method in ("ce", "student", "kd_ce"):
        out += CMI_FIELDS
    if method in ("ce", "cmi", "mcmi"):
        out += KD_FIELDS
    if method == "student":
        out += ["kd_alpha", "kd_temperature"]
    return tuple(out)
