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


def test_the_committed_course_copy_shows_every_module_from_its_default_run():
    """docs/course (built by `make course`, linked from the README): an index linking every module, each page with
    its figures inline, every exercise check's message, nothing fetched from a network and no smoke run."""
    import re

    from cmi_toolkit.course import MATHJAX_CDN
    from cmi_toolkit.notebook import SMOKE_BANNER

    from .conftest import REPO

    pages = REPO / "docs" / "course"
    modules = sorted(p.stem for p in (REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    index = (pages / "index.html").read_text(encoding="utf-8")
    assert [m for m in modules if f'href="{m}.html"' not in index] == [], "run `make course`"
    assert "docs/course/index.html" in (REPO / "README.md").read_text(encoding="utf-8")
    assert "Rendered on " in index  # the machine the modules ran on
    for module in modules:
        page = (pages / f"{module}.html").read_text(encoding="utf-8")
        source = (REPO / "notebooks" / f"{module}.py").read_text(encoding="utf-8")
        checks = len(re.findall(r"^check\(\"", source, re.M))
        assert page.count("not attempted yet") == checks, f"{module}: each exercise check shows its message"
        assert "data:image/png;base64" in page, f"{module}: no figure on its page"
        assert not re.search(r"<pre>\s*" + re.escape(SMOKE_BANNER), page), f"{module}: rendered from a smoke run"
        remote = re.findall(r"<(?:script|link|img)[^>]+(?:src|href)=\"(https?://[^\"]+)", page)
        assert all(url.startswith(MATHJAX_CDN) for url in remote), f"{module}: needs a network for {remote}"
