"""The rendered course: executed modules only (an unexecuted one would pass for an empty page)."""

from __future__ import annotations

import shutil

import pytest

from cmi_toolkit.course.render import render_course

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

    from cmi_toolkit.course.notebook import SMOKE_BANNER
    from cmi_toolkit.course.render import MATHJAX_PARTS, MATHJAX_SRC

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
        remote = re.findall(r"https?://(?:cdnjs|unpkg|cdn\.)[^\"' ]+", page)
        assert not remote, f"{module}: needs a network for {remote[:2]}"
        assert f'src="{MATHJAX_SRC}"' in page, f"{module}: its formulas need the MathJax copy beside it"
        boxes = re.findall(r"\b\w*Warning: [^<\n]{0,80}", page)  # a warning printed into an output, not a name in code
        assert not boxes, f"{module}: its rendered page shows warning boxes: {boxes[:2]}"
        assert "Traceback (most recent call last)" not in page, f"{module}: its rendered page shows a traceback"
        machine = re.findall(r"(?:/root/|/home/|/work/|/tmp/)[^\s<\"']{0,60}", page)
        assert not machine, f"{module}: its rendered page names this machine's folders: {machine[:2]}"
    assert all((pages / "mathjax" / part).exists() for part in MATHJAX_PARTS)


def test_a_module_renders_to_the_same_bytes_each_time(tmp_path):
    """nbconvert names widget outputs by random uuids; the pages rename them, so `make course` rewrites no page
    whose notebook did not change (and an element and the script that finds it still share their name)."""
    import nbformat

    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("explorer")
    cell.outputs = [nbformat.v4.new_output("display_data", data={
        "application/vnd.jupyter.widget-view+json": {"model_id": "60106e24", "version_major": 2, "version_minor": 0},
        "text/plain": "LambdaExplorer()"})]
    nb.cells = [nbformat.v4.new_markdown_cell("# 00 · A module"), cell]
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"version_major": 2, "version_minor": 0,
        "state": {"60106e24": {"model_name": "LayoutModel", "model_module": "@jupyter-widgets/base",
                               "model_module_version": "2.0.0", "state": {}}}}}
    executed = tmp_path / "executed"
    executed.mkdir()
    nbformat.write(nb, executed / "00_module.ipynb")
    first, second = (render_course(executed, tmp_path / name)[0].read_text(encoding="utf-8") for name in "ab")
    assert first == second
    assert "getElementById('00_module-1')" in first and 'id="00_module-1"' in first
