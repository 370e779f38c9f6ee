"""Every exercise of the course by name, gathered from the modules' files (two per course module)."""

from __future__ import annotations

from . import module00, module01, module02, module03, module04, module05, module06
from .exercise import Exercise

EXERCISES: dict[str, Exercise] = {
    name: exercise
    for module in (module00, module01, module02, module03, module04, module05, module06)
    for name, exercise in module.EXERCISES.items()
}

__all__ = ["EXERCISES"]
