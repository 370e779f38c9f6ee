"""The kit's generated pages: README.md and the Markdown pages under ``docs/``, their HTML twins and the offline index.

Each page (and the instructor's guide, ``notebooks/README.md``, which has no HTML twin) holds hand-written text
and generated blocks (``<!-- table: ... -->``, see :mod:`cmi_toolkit.readme`).
:func:`update_pages` regenerates every block of every page from the records, renders each ``docs/*.md`` page to
``docs/<name>.html`` (markdown-it, GitHub-style heading anchors, links to sibling ``.md`` pages turned into their
``.html`` twins, no script and nothing from the network) and writes ``docs/index.html``, which links the course's
modules (``docs/course/``, built by ``make course``) and these pages. With ``check=True`` nothing is written: the
stale blocks and HTML files are listed instead (``cmi-toolkit readme --check``; the tests run it).

Layer: top, beside :mod:`cmi_toolkit.readme`; only :mod:`cmi_toolkit.cli` imports it.
"""

from __future__ import annotations

import html
import re
from pathlib import Path

from . import defaults as D

__all__ = ["PAGES_DIR", "doc_pages", "render_page", "render_index", "update_pages", "slug"]

REPO = D.REPO_ROOT
PAGES_DIR = "docs"

_STYLE = """
body { font: 16px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; max-width: 62rem; margin: 2rem auto;
       padding: 0 1rem; color: #1f2328; }
nav { font-size: 0.9rem; margin-bottom: 1.5rem; }
table { border-collapse: collapse; margin: 1rem 0; font-size: 0.85rem; display: block; overflow-x: auto; }
th, td { border: 1px solid #d0d7de; padding: 0.25rem 0.5rem; vertical-align: top; }
th { background: #f6f8fa; }
code { background: #f6f8fa; padding: 0.1rem 0.25rem; border-radius: 4px; font-size: 0.9em; }
pre { background: #f6f8fa; padding: 0.75rem; overflow-x: auto; }
pre code { padding: 0; }
img { max-width: 100%; }
"""


#: Markdown files with generated blocks but no HTML twin (the instructor's guide sits beside the notebooks)
BLOCK_ONLY = ("notebooks/README.md",)


def doc_pages(root: str | Path = REPO) -> list[Path]:
    """README.md and every Markdown page under ``docs/`` (the course's HTML is built by ``make course``)."""
    root = Path(root)
    return [root / "README.md"] + sorted((root / PAGES_DIR).glob("*.md"))


def slug(text: str) -> str:
    """GitHub's heading anchor: lower case, punctuation dropped, spaces to hyphens (``Data and models`` ->
    ``data-and-models``), so a link written for GitHub works in the HTML twin too."""
    text = re.sub(r"<[^>]+>", "", html.unescape(text)).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def _markdown():
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark", {"html": True}).enable("table")


def _local_href(href: str) -> str:
    """A link of a docs page as its HTML twin sees it: ``x.md`` -> ``x.html``, ``../README.md`` -> the index."""
    if re.match(r"^[a-z]+:", href) or href.startswith("#"):
        return href
    path, _, anchor = href.partition("#")
    if path == "../README.md":
        path = "index.html"
    elif path.endswith(".md") and "/" not in path:
        path = path[:-3] + ".html"
    return path + (f"#{anchor}" if anchor else "")


#: the one style sheet of the pages, written beside them
STYLE_SHEET = "pages.css"


def _page(title: str, body: str) -> str:
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<title>{html.escape(title)}</title>\n<link rel=\"stylesheet\" href=\"{STYLE_SHEET}\">\n</head>\n"
            f"<body>\n{body}</body>\n</html>\n")


def render_page(markdown: str) -> str:
    """The HTML twin of one docs page: its title from the first heading, anchors on every heading, links rewritten
    by :func:`_local_href`, HTML comments (the generated blocks' markers) dropped."""
    text = re.sub(r"<!--.*?-->\n?", "", markdown, flags=re.DOTALL)
    body = _markdown().render(text)
    body = re.sub(r'(href|src)="([^"]*)"', lambda m: f'{m.group(1)}="{html.escape(_local_href(html.unescape(m.group(2))))}"',
                  body)
    body = re.sub(r"<h([1-6])>(.*?)</h\1>", lambda m: f'<h{m.group(1)} id="{slug(m.group(2))}">{m.group(2)}</h{m.group(1)}>',
                  body)
    found = re.search(r"<h1[^>]*>(.*?)</h1>", body)
    title = re.sub(r"<[^>]+>", "", found.group(1)) if found else "cmi_toolkit"
    return _page(f"{html.unescape(title)} · cmi_toolkit", body)


def _first_heading(path: Path) -> str:
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("# "):
            return line[2:].strip()
    return path.stem


def render_index(root: str | Path = REPO) -> str:
    """``docs/index.html``: the course's modules (the rendered pages of ``docs/course/``) and every docs page."""
    root = Path(root)
    docs = root / PAGES_DIR
    modules = sorted(p for p in (docs / "course").glob("[0-9][0-9]_*.html"))
    items = ['<li><a href="course/index.html">the course\'s index</a></li>'] + [
        f'<li><a href="course/{p.name}">{html.escape(p.stem.replace("_", " "))}</a></li>' for p in modules]
    pages = [f'<li><a href="{p.stem}.html">{html.escape(_first_heading(p))}</a></li>'
             for p in sorted(docs.glob("*.md"))]
    body = ("<h1>cmi_toolkit: the course and the kit's pages, offline</h1>\n"
            "<p>Conditional mutual information in language-model fine-tuning, made measurable and teachable. Every page "
            "below opens from this folder with no network; the numbers on them are generated from the committed "
            "records (<code>cmi-toolkit readme</code>).</p>\n"
            "<h2 id=\"the-course\">The course (rendered with its outputs by <code>make course</code>)</h2>\n<ul>\n"
            + "\n".join(items) + "\n</ul>\n<h2 id=\"the-pages\">The kit's pages</h2>\n<ul>\n" + "\n".join(pages)
            + "\n</ul>\n<p><img src=\"../figures/forest_cpu_verdict.png\" alt=\"Forest plot of the GLUE verdict suite "
            "cpu_verdict: each comparison with the interval its verdict uses, and the pooled diamond\"></p>\n")
    return _page("cmi_toolkit: index", body)


def update_pages(check: bool = False, root: str | Path = REPO, only: str | Path | None = None) -> list[str]:
    """Regenerate every page's blocks, the HTML twins and the index; returns what changed (or, with ``check``,
    what is stale) as ``page: block`` and ``docs/<name>.html`` entries. ``only`` limits it to one Markdown file
    (its blocks alone: no HTML is written)."""
    from .files import atomic_write_text
    from .readme import update

    root = Path(root)
    changed: list[str] = []
    pages = [Path(only)] if only is not None else doc_pages(root) + [root / p for p in BLOCK_ONLY
                                                                      if (root / p).is_file()]
    for page in pages:
        name = page.relative_to(root) if page.is_absolute() and page.is_relative_to(root) else page
        changed += [f"{name}: {spec}" for spec in update(page, check=check, root=root)]
    if only is not None:
        return changed
    docs = root / PAGES_DIR
    wanted = {docs / f"{p.stem}.html": p for p in doc_pages(root)[1:]}
    for target, source in wanted.items():
        # in check mode a page with a stale block is listed above already; its twin is compared as the page stands
        _write_if_changed(target, render_page(source.read_text(encoding="utf-8")), check, changed, root,
                          atomic_write_text)
    _write_if_changed(docs / "index.html", render_index(root), check, changed, root, atomic_write_text)
    _write_if_changed(docs / STYLE_SHEET, _STYLE.lstrip(), check, changed, root, atomic_write_text)
    return changed


def _write_if_changed(target: Path, text: str, check: bool, changed: list[str], root: Path, write) -> None:
    old = target.read_text(encoding="utf-8") if target.is_file() else None
    if old != text:
        changed.append(str(target.relative_to(root)))
        if not check:
            write(target, text)
