"""The rendered course: executed modules only (an unexecuted one would pass for an empty page)."""

from __future__ import annotations

import shutil

import pytest

from cmi_toolkit.course import render_course

from .conftest import REPO


def test_a_module_that_was_not_executed_is_refused_by_name(tmp_path):
    shutil.copy(REPO / "notebooks" / "06_reproduce_glue.ipynb", tmp_path)  # committed: no outputs
    with pytest.raises(ValueError, match=r"06_reproduce_glue\.ipynb: no cell has an output"):
        render_course(tmp_path, tmp_path / "course")
    with pytest.raises(FileNotFoundError, match="make course"):
        render_course(tmp_path / "empty", tmp_path / "course")
