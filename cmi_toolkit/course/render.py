"""The course readable with its outputs: executed modules rendered to static HTML, with an index page.

The committed notebooks carry no outputs (so a diff shows only what changed in the course). To read the course
as d2l.ai or LLMs-from-scratch are read, with tables, figures and exercise checks, ``make course`` executes
every module headless (papermill, default mode) and :func:`render_course` converts the executed copies with
nbconvert into ``<out>/<module>.html`` plus ``<out>/index.html``; the committed copy is ``docs/course/``, linked
from the README. Figures appear as the PNG that
:func:`cmi_toolkit.plotting.show_figure` stores beside each plotly figure (a page that runs no JavaScript still shows
them); widgets appear as their static figure, as under papermill. Nothing needs a network: the formulas are typeset
by a copy of MathJax 2.7 beside the pages (``<out>/mathjax/``, the files of the PyPI package
```jupyter-server-mathjax`` that the pages load, :data:`MATHJAX_PARTS`), and the template's scripts that would fetch
widget or diagram code from a CDN are dropped (:func:`offline_page`).
"""

from __future__ import annotations

import html
import os
import re
from pathlib import Path

import nbformat

__all__ = ["render_course", "module_title", "offline_page", "offline_course", "copy_mathjax", "MATHJAX_PARTS",
           "MATHJAX_SRC"]

#: the template's <script> that loads require.js from a CDN (dropped: the pages show figures as PNG, no widget code)
REQUIRE_JS = re.compile(r'<script src="https?://[^"]*require(\.min)?\.js"[^>]*></script>\s*')
#: the template's MathJax from its CDN, replaced by the local copy :data:`MATHJAX_SRC`
MATHJAX_CDN = re.compile(r'<script src="https?://[^"]*mathjax[^"]*"[^>]*>\s*</script>')
MATHJAX_SRC = "mathjax/MathJax.js?config=TeX-AMS-MML_HTMLorMML-full,Safe"
#: what a page needs of jupyter-server-mathjax's ``static/`` folder (files and whole folders, about 2.3 MB): the
#: loader, its combined config, the HTML-CSS output with its STIX-Web font data and web fonts, the operator tables
#: and the menu extensions (found by loading every module in Chromium and listing its requests)
MATHJAX_PARTS = ("LICENSE", "MathJax.js", "config", "extensions/Safe.js", "extensions/MathMenu.js",
                 "extensions/MathZoom.js", "jax/output/HTML-CSS", "jax/element/mml/optable",
                 "fonts/HTML-CSS/STIX-Web/woff")
#: the web font of the bundled MathJax (the package ships STIX-Web, not MathJax's TeX fonts), with no image fonts
MATHJAX_FONTS = ('<script type="text/x-mathjax-config">MathJax.Hub.Config({"HTML-CSS": {availableFonts: ["STIX-Web"], '
                 'preferredFont: "STIX-Web", webFont: "STIX-Web", imageFont: null}});</script>\n')
#: an inline <script> that fetches code from a CDN (the widget manager of unpkg.com; mermaid, for diagrams the
#: course has none of): dropped
REMOTE_SCRIPT = re.compile(r'<script(?: type="module")?>(?:(?!</script>).)*?https?://(?:unpkg\.com|cdnjs\.cloudflare\.com)'
                           r'(?:(?!</script>).)*</script>\s*', re.S)


def offline_page(body: str) -> str:
    """A rendered page that asks no network for anything: MathJax from the copy beside it, no widget manager or
    diagram code from a CDN (the widgets' static figures are in the page already)."""
    body = REQUIRE_JS.sub("", body)
    body = MATHJAX_CDN.sub(MATHJAX_FONTS + f'<script src="{MATHJAX_SRC}"></script>', body)
    return REMOTE_SCRIPT.sub("", body)


def copy_mathjax(out: str | os.PathLike) -> Path:
    """Copy :data:`MATHJAX_FILES` of the installed ``jupyter-server-mathjax`` into ``<out>/mathjax``."""
    import shutil

    try:
        import jupyter_server_mathjax
    except ImportError as err:  # pragma: no cover - a dependency of the notebooks extra
        raise ImportError("rendering the course needs jupyter-server-mathjax (pip install -e \".[notebooks]\")") from err
    static = Path(jupyter_server_mathjax.__file__).parent / "static"
    target = Path(out) / "mathjax"
    for name in MATHJAX_PARTS:
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        if (static / name).is_dir():
            shutil.copytree(static / name, target / name, dirs_exist_ok=True)
        else:
            shutil.copyfile(static / name, target / name)
    return target


def offline_course(out: str | os.PathLike) -> list[Path]:
    """Make an already rendered course folder offline in place: every module page through :func:`offline_page`,
    MathJax copied beside them. Returns the pages rewritten."""
    out = Path(out)
    pages = sorted(out.glob("[0-9][0-9]_*.html"))
    for page in pages:
        page.write_text(offline_page(page.read_text(encoding="utf-8")), encoding="utf-8")
    copy_mathjax(out)
    return pages


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
    copy_mathjax(out)
    exporter = HTMLExporter(template_name="lab")
    exporter.exclude_input_prompt = exporter.exclude_output_prompt = True
    pages, links = [], []
    for path in modules:
        nb = nbformat.read(path, as_version=4)
        if not any(c.get("outputs") for c in nb.cells if c.cell_type == "code"):
            raise ValueError(f"{path}: no cell has an output (not executed); execute it with papermill first")
        body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": module_title(nb, path.stem)}})
        body = offline_page(body)  # MathJax from the copy beside the pages, nothing from a CDN
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
