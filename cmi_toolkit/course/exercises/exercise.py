"""What an exercise is (:class:`Exercise`: its reference, inputs, hint and typical :class:`Mistake` s), what a
check returns (:class:`Checked`), and how two answers are compared: any numeric form (float, tensor, NumPy,
tuple or list) within 1e-6 absolute plus 1e-6 relative.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch


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
