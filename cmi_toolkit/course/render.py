"""The course readable with its outputs: executed modules rendered to static HTML, with an index page.

The committed notebooks carry no outputs (so a diff shows only what changed in the course). To read the course
as d2l.ai or LLMs-from-scratch are read, with tables, figures and exercise checks, ``make course`` executes
every module headless (papermill, default mode) and :func:`render_course` converts the executed copies with
nbconvert into ``<out>/<module>.html`` plus ``<out>/index.html``; the committed copy is ``docs/course/``, linked
from the README. Figures appear as the PNG that
:func:`cmi_toolkit.plotting.show_figure` stores beside each plotly figure (a page that runs no JavaScript still shows
them); widgets appear as their static figure, as under papermill. Text, tables and figures need no network;
formulas are typeset by MathJax from its CDN when the reader is online and show as TeX source otherwise.
"""

from __future__ import annotations

import html
import os
import re
from pathlib import Path

import nbformat

__all__ = ["render_course", "module_title", "MATHJAX_CDN"]

#: the template's <script> that loads require.js from a CDN (dropped: the pages show figures as PNG, no widget code)
REQUIRE_JS = re.compile(r'<script src="https?://[^"]*require(\.min)?\.js"[^>]*></script>\s*')
#: the one remote resource a page names: MathJax typesets the formulas when the reader is online (offline, they
#: show as TeX source; text, tables and figures need nothing from a network)
MATHJAX_CDN = "https://cdnjs.cloudflare.com/ajax/libs/mathjax/"


def module_title(nb: nbformat.NotebookNode, fallback: str) -> str:
    """The first Markdown heading of a notebook (its module title)."""
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    return fallback


STYLE = re.compile(r'<style type="text/css">(.*?)</style>\s*', re.S)
#: the random element ids nbconvert gives widget outputs (uuid4): renamed in page order, so a page renders the same
UUID = re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}\b")


def _stable_ids(body: str, stem: str) -> str:
    """Every uuid4 in ``body`` replaced by ``<stem>-<n>`` (n: order of first appearance; each uuid keeps one name,
    so an element and the script that finds it still match): the same notebook renders to the same bytes."""
    names: dict[str, str] = {}
    return UUID.sub(lambda m: names.setdefault(m.group(0), f"{stem}-{len(names) + 1}"), body)


def _shared_styles(body: str, out: Path) -> str:
    """The page with its inline template styles (the same few hundred kB on every page) moved into one
    ``course-<hash>.css`` beside it, linked from its head."""
    import hashlib

    matches = list(STYLE.finditer(body))
    if not matches:
        return body
    name = f"course-{hashlib.sha256(''.join(m.group(0) for m in matches).encode()).hexdigest()[:12]}.css"
    css = out / name
    if not css.is_file():
        css.write_text("\n".join(m.group(1).strip() for m in matches), encoding="utf-8")
    first = matches[0].start()
    body = STYLE.sub("", body)
    return body[:first] + f'<link rel="stylesheet" href="{name}">\n' + body[first:]


def render_course(executed: str | os.PathLike, out: str | os.PathLike) -> list[Path]:
    """Render every executed module ``<executed>/NN_*.ipynb`` to ``<out>/NN_*.html`` and write ``<out>/index.html``.

    A module that was not executed (no outputs in any code cell) is refused by name: an empty page would
    pass for the course. Returns the pages written, the index last.
    """
    from nbconvert import HTMLExporter

    executed, out = Path(executed), Path(out)
    modules = sorted(executed.glob("[0-9][0-9]_*.ipynb"))
    if not modules:
        raise FileNotFoundError(f"{executed}: no executed modules (NN_*.ipynb); run `make course` to execute them")
    out.mkdir(parents=True, exist_ok=True)
    exporter = HTMLExporter(template_name="lab")
    exporter.exclude_input_prompt = exporter.exclude_output_prompt = True
    pages, links = [], []
    for path in modules:
        nb = nbformat.read(path, as_version=4)
        if not any(c.get("outputs") for c in nb.cells if c.cell_type == "code"):
            raise ValueError(f"{path}: no cell has an output (not executed); execute it with papermill first")
        body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": module_title(nb, path.stem)}})
        body = REQUIRE_JS.sub("", body)  # the pages run no widget code: nothing needs require.js from a CDN
        body = _shared_styles(body, out)
        body = _stable_ids(body, path.stem)
        page = out / f"{path.stem}.html"
        page.write_text(body, encoding="utf-8")
        pages.append(page)
        links.append(f'<li><a href="{html.escape(page.name)}">{html.escape(module_title(nb, path.stem))}</a></li>')
    from datetime import date

    from ..runs.provenance import cpu_features, cpu_model

    machine = f"{cpu_model()} ({cpu_features().get('cpu_capability', '?')}), {os.cpu_count()} cores, {date.today()}"
    index = out / "index.html"
    index.write_text("<!doctype html><html><head><meta charset='utf-8'><title>cmi_toolkit course</title></head>"
                     "<body><h1>cmi_toolkit: the course, executed</h1><p>Each module as it ran headless in its "
                     "default mode, with its tables, figures and exercise checks (unanswered: the checks say "
                     f"so). Rendered on {html.escape(machine)}.</p><ol>" + "".join(links) + "</ol></body></html>\n",
                     encoding="utf-8")
    return [*pages, index]
