"""Every exercise's solution passes its self-check; every typical mistake is rejected with its own hint."""

import importlib.util
import json

import pytest
import torch

from cmi_toolkit.course.exercises import EXERCISES, check

from .conftest import REPO


def _solutions():
    spec = importlib.util.spec_from_file_location("solutions", REPO / "notebooks" / "solutions" / "solutions.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", sorted(EXERCISES))
def test_solution_passes_and_the_solutions_wrong_answer_fails(name, capsys):
    sol = _solutions()
    assert bool(check(name, getattr(sol, name))) is True
    assert "✓" in capsys.readouterr().out
    assert bool(check(name, sol.WRONG[name])) is False
    assert "Hint:" in capsys.readouterr().out


MISTAKES = [(name, mistake) for name, ex in sorted(EXERCISES.items()) for mistake in ex.mistakes]


@pytest.mark.parametrize("name, mistake", MISTAKES, ids=[f"{n}-{m}" for n, m in MISTAKES])
def test_each_typical_mistake_is_rejected_with_its_own_hint(name, mistake, capsys):
    ex = EXERCISES[name]
    result = check(name, ex.mistakes[mistake].fn)
    out = capsys.readouterr().out
    assert not result and result.mistake == mistake, out
    assert ex.mistakes[mistake].hint in out and "yours gives" in out


def test_answers_right_only_on_balanced_classes_are_caught(capsys):
    """The two wrong answers that balanced inputs let through: a per-class mean (00), uniform weights (02)."""
    assert check("plugin_cmi", EXERCISES["plugin_cmi"].mistakes["per_class_mean"].fn).mistake == "per_class_mean"
    assert "average per example" in capsys.readouterr().out
    assert check("separation", EXERCISES["separation"].mistakes["uniform_weights"].fn).mistake == "uniform_weights"
    out = capsys.readouterr().out
    assert "weighed the other classes equally" in out and "classes with" in out  # names the unbalanced input


def test_a_check_shows_its_message_and_no_bare_true_in_a_notebook_cell():
    from IPython.core.interactiveshell import InteractiveShell
    from IPython.utils.capture import capture_output

    shell = InteractiveShell.instance()
    shell.run_cell("from cmi_toolkit.course.exercises import check\n"
                   "def infonce_bound(s):\n    import math, torch\n"
                   "    return math.log(s.shape[0]) + (s.diagonal() - torch.logsumexp(s, 1)).mean()")
    with capture_output() as cap:
        shell.run_cell('check("infonce_bound", infonce_bound)')
    assert "✓ infonce_bound" in cap.stdout
    assert "True" not in cap.stdout and "Checked" not in cap.stdout and not cap.outputs


def test_unattempted_and_crashing_answers_do_not_raise(capsys):
    def todo(*a):
        raise NotImplementedError

    assert not check("plugin_cmi", todo) and "not attempted yet" in capsys.readouterr().out
    assert not check("plugin_cmi", lambda *a: 1 / 0) and "ZeroDivisionError" in capsys.readouterr().out


def test_every_notebook_has_an_exercise_that_writes_a_piece_of_the_method():
    notebooks = {p.name[:2]: p for p in (REPO / "notebooks").glob("[0-9][0-9]_*.ipynb")}
    for name, ex in EXERCISES.items():
        text = "".join("".join(c["source"]) for c in json.loads(notebooks[ex.notebook].read_text())["cells"])
        assert f'check("{name}", ' in text, f"notebook {ex.notebook} lacks the self-check of {name}"
        assert f"def {name}(" in text and "raise NotImplementedError" in text
    assert {ex.notebook for ex in EXERCISES.values()} == set(notebooks)


FORMS = {
    "numpy": lambda v: v.numpy() if isinstance(v, torch.Tensor) else v,
    "list": lambda v: v.tolist() if isinstance(v, torch.Tensor) else v,
    "unit_dim": lambda v: v.unsqueeze(-1) if isinstance(v, torch.Tensor) else v,
    "float32": lambda v: v.float() if isinstance(v, torch.Tensor) else v,
}


@pytest.mark.parametrize("form", sorted(FORMS))
@pytest.mark.parametrize("name", sorted(EXERCISES))
def test_a_correct_answer_is_accepted_in_any_numeric_form(name, form, capsys):
    """The kit's own answer re-expressed (numpy, a Python list, an extra unit dimension, float32) is still right."""
    ex = EXERCISES[name]

    def answer(*args):
        out = ex.reference(*args)
        return tuple(FORMS[form](v) for v in out) if isinstance(out, tuple) else FORMS[form](out)

    assert bool(check(name, answer, examples=3)) is True, capsys.readouterr().out


def test_holm_from_numpy_or_statsmodels_is_accepted(capsys):
    import numpy as np
    from statsmodels.stats.multitest import multipletests

    def holm_numpy(p):
        p = np.asarray(p, dtype=float)
        order = np.argsort(p)
        adjusted = np.maximum.accumulate((len(p) - np.arange(len(p))) * p[order])
        out = np.empty_like(p)
        out[order] = np.minimum(adjusted, 1.0)
        return out

    assert bool(check("holm", holm_numpy, examples=10)) is True, capsys.readouterr().out
    assert bool(check("holm", lambda p: multipletests(np.asarray(p, dtype=float), method="holm")[1],
                      examples=10)) is True, capsys.readouterr().out


def test_a_wrong_answer_is_shown_by_value(capsys):
    check("plugin_cmi", EXERCISES["plugin_cmi"].mistakes["per_class_mean"].fn, examples=10)
    out = capsys.readouterr().out
    assert "yours gives" in out and "shape" not in out.split("yours gives")[1].split(",")[0]  # a number, not a shape
