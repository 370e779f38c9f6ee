"""Self-checks for the notebooks' exercises: the student writes a piece of the method, the kit checks it.

Each exercise names a function the student writes. :func:`check` tries it on inputs that ``hypothesis``
generates (unbalanced classes, a class with one row, two to five classes, peaked and flat distributions,
extreme temperatures), each against the kit's own implementation, and prints either "✓ right" or "✗ not yet"
with the input it failed on, the two values and a hint. The hint is chosen by the mistake: the answer is
compared with each typical wrong version of the exercise (e.g. "averaged per class instead of per example")
and, when it behaves like one, that mistake is named; otherwise a general hint is shown. It never raises, so a
notebook with an exercise still runs to the end headless (an unattempted exercise says so), and what it returns
shows nothing in a notebook (no stray ``True``). Solutions live apart, in ``notebooks/solutions/solutions.py``;
the test suite runs them through these checks and checks that every typical mistake below is rejected with its
own hint.
"""

from __future__ import annotations

from collections.abc import Callable

from .catalogue import EXERCISES
from .exercise import Checked, Exercise, _clone, _close, _show


def _counterexample(fn: Callable, ex: Exercise, examples: int) -> tuple | None:
    """An input from ``ex.inputs`` on which ``fn`` disagrees with the kit (None: none found); its errors propagate."""
    from hypothesis import HealthCheck, Phase, given, settings

    found: list[tuple] = []

    @settings(max_examples=examples, derandomize=True, database=None, deadline=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(ex.inputs())
    def agrees(args):
        want = ex.reference(*_clone(args))  # the kit's answer first: an error there is not the student's
        if not _close(fn(*_clone(args)), want):
            found.append(args)
            raise AssertionError

    try:
        agrees()
    except AssertionError:
        if found:
            return found[0]
        raise
    return None


def _samples(ex: Exercise, k: int) -> list[tuple]:
    """``k`` inputs of the exercise's strategy, the same every time."""
    from hypothesis import HealthCheck, Phase, given, settings

    out: list[tuple] = []

    @settings(max_examples=k, derandomize=True, database=None, deadline=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(ex.inputs())
    def collect(args):
        out.append(args)

    collect()
    return out


def diagnose(fn: Callable, ex: Exercise, args: tuple, k: int = 8) -> str | None:
    """The typical mistake whose answers ``fn`` gives, on ``args`` and on ``k`` more inputs (None: none fits)."""
    inputs = [args, *_samples(ex, k)]
    for name, mistake in ex.mistakes.items():
        try:
            if all(_close(fn(*_clone(a)), mistake.fn(*_clone(a))) for a in inputs):
                return name
        except Exception:  # noqa: BLE001, S112 - a mistake that cannot run on these inputs does not fit
            continue
    return None


def check(name: str, fn: Callable | None, quiet: bool = False, examples: int = 30) -> Checked:
    """Check the student's ``fn`` for exercise ``name`` on ``examples`` generated inputs; print the verdict.

    Returns a :class:`Checked`, true when right; a wrong answer's message names the input it failed on, both
    values, and the hint of the mistake it makes (or the general hint).
    """
    ex = EXERCISES[name]
    say = (lambda msg: None) if quiet else print
    if fn is None:
        say(f"… {name}: not attempted yet ({ex.task})")
        return Checked(False)
    try:
        bad = _counterexample(fn, ex, examples)
    except NotImplementedError:
        say(f"… {name}: not attempted yet ({ex.task})")
        return Checked(False)
    except Exception as exc:  # noqa: BLE001 - a student's bug is feedback, not a crash
        say(f"✗ {name}: your function raised {type(exc).__name__}: {exc}. Hint: {ex.hint}")
        return Checked(False, "raised")
    if bad is None:
        say(f"✓ {name}: right: it matches the kit's implementation on {examples} generated inputs "
            "(unbalanced classes and edge cases included).")
        return Checked(True)
    mistake = diagnose(fn, ex, bad)
    where = ex.describe(bad)
    try:
        yours = _show(fn(*_clone(bad)))
    except Exception as exc:  # noqa: BLE001
        yours = f"{type(exc).__name__}"
    say(f"✗ {name}: not yet: on {where or 'one of the generated inputs'} yours gives {yours}, the kit "
        f"{_show(ex.reference(*_clone(bad)))}. Hint: {ex.mistakes[mistake].hint if mistake else ex.hint}")
    return Checked(False, mistake)
