"""Every exercise's solution passes its self-check, and a typical wrong answer is rejected."""

import importlib.util
import json

import pytest

from cmi_toolkit.exercises import EXERCISES, check

from .conftest import REPO


def _solutions():
    spec = importlib.util.spec_from_file_location("solutions", REPO / "notebooks" / "solutions" / "solutions.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", sorted(EXERCISES))
def test_solution_passes_and_wrong_answer_fails(name, capsys):
    sol = _solutions()
    assert check(name, getattr(sol, name)) is True
    assert "✓" in capsys.readouterr().out
    assert check(name, sol.WRONG[name]) is False
    assert "Hint:" in capsys.readouterr().out


def test_unattempted_and_crashing_answers_do_not_raise(capsys):
    def todo(*a):
        raise NotImplementedError

    assert check("plugin_cmi", todo) is False and "not attempted yet" in capsys.readouterr().out
    assert check("plugin_cmi", lambda *a: 1 / 0) is False and "ZeroDivisionError" in capsys.readouterr().out


def test_every_notebook_has_an_exercise_that_writes_a_piece_of_the_method():
    notebooks = {p.name[:2]: p for p in (REPO / "notebooks").glob("[0-9][0-9]_*.ipynb")}
    for name, ex in EXERCISES.items():
        text = "".join("".join(c["source"]) for c in json.loads(notebooks[ex.notebook].read_text())["cells"])
        assert f'check("{name}", ' in text, f"notebook {ex.notebook} lacks the self-check of {name}"
        assert f"def {name}(" in text and "raise NotImplementedError" in text
    assert {ex.notebook for ex in EXERCISES.values()} == set(notebooks)
