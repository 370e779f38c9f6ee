"""The README's result tables are the report's output on the committed records, never typed."""

import pytest

from cmi_toolkit.readme import BLOCK, render, update

from .conftest import REPO


def test_every_generated_page_equals_the_records():
    """README.md, every docs/*.md page, their HTML twins and the index: `cmi-toolkit readme --check` finds nothing
    stale (one call, as CI makes it)."""
    from cmi_toolkit.pages import update_pages

    text = "".join(p.read_text() for p in (REPO / "docs").glob("*.md"))
    specs = [m.group("spec") for m in BLOCK.finditer(text)]
    assert {"glue cpu", "glue cpu5", "glue cpu5kd", "verdict cpu5", "verdict cpu5kd", "verdict cpu", "lab",
            "cot cqa gpu2ep", "verdict cpu_verdict", "answer cot_verdict", "equivalence bf16eq"} <= set(specs)
    assert "<!-- table: exercises -->" in (REPO / "notebooks" / "README.md").read_text()  # the instructor's guide
    assert update_pages(check=True) == [], "run `cmi-toolkit readme` and commit README.md, docs/ and notebooks/README.md"


def test_the_readme_is_short_and_answers_first():
    """At most 250 lines; within the first screenful after the title: what the kit found (both generated answers
    follow right after) and how to run it."""
    lines = (REPO / "README.md").read_text().splitlines()
    assert len(lines) <= 250, f"README.md has {len(lines)} lines: move detail to a page under docs/"
    first_screen = "\n".join(lines[:45])
    assert "## What the kit found" in first_screen and "<!-- table: answer cpu_verdict -->" in first_screen
    assert "<!-- table: answer cot_verdict -->" in "\n".join(lines[:60]) and "## Two commands" in "\n".join(lines[:60])


def _tiny_site(root):
    (root / "docs").mkdir(parents=True)
    (root / "README.md").write_text("# kit\n\nSee [results](docs/results.md).\n")
    (root / "docs" / "results.md").write_text("# Results\n\n[back](../README.md) · [usage](usage.md#data-and-models)\n\n"
                                              "| a | b |\n|---|---|\n| 1 | 2 |\n")
    (root / "docs" / "usage.md").write_text("# Usage\n\n## Data and models\n\ntext\n")


def test_a_stale_html_twin_or_index_is_caught_and_rewritten(tmp_path):
    from cmi_toolkit.pages import update_pages

    _tiny_site(tmp_path)
    assert update_pages(check=True, root=tmp_path) == ["docs/results.html", "docs/usage.html", "docs/index.html",
                                                        "docs/pages.css"]
    assert not (tmp_path / "docs" / "results.html").exists()  # check writes nothing
    update_pages(root=tmp_path)
    assert update_pages(check=True, root=tmp_path) == []
    html = (tmp_path / "docs" / "results.html").read_text()
    assert 'href="usage.html#data-and-models"' in html and 'href="index.html"' in html and "<table>" in html
    assert 'id="data-and-models"' in (tmp_path / "docs" / "usage.html").read_text()
    (tmp_path / "docs" / "usage.md").write_text("# Usage\n\n## Data and models\n\nnew text\n")
    assert update_pages(check=True, root=tmp_path) == ["docs/usage.html"]
    index = (tmp_path / "docs" / "index.html").read_text()
    assert 'href="results.html">Results<' in index and 'href="usage.html">Usage<' in index


def _links(path):
    import re

    text = re.sub(r"```.*?```", "", path.read_text(encoding="utf-8"), flags=re.DOTALL)
    return re.findall(r"\]\(([^)\s]+)\)", text)


def test_every_link_of_the_readme_and_the_pages_resolves():
    """Relative links point to files that exist, and an anchor to a heading of its page (GitHub's slugs)."""
    from cmi_toolkit.pages import doc_pages, slug

    for page in doc_pages():
        for link in _links(page):
            assert not link.startswith(("http://", "https://")), f"{page.name} links {link}: the pages work offline"
            path, _, anchor = link.partition("#")
            target = (page.parent / path).resolve() if path else page
            assert target.exists(), f"{page.relative_to(REPO)} links {link}, which does not exist"
            if anchor and target.suffix == ".md":
                heads = [slug(h.lstrip("#").strip()) for h in target.read_text().splitlines() if h.startswith("#")]
                assert anchor in heads, f"{page.relative_to(REPO)} links {link}: no such heading"


def test_a_typed_number_is_caught(tmp_path):
    readme = tmp_path / "README.md"
    block = render("cot cqa gpu2ep")
    readme.write_text(f"x\n<!-- table: cot cqa gpu2ep -->\n{block.replace('14.11', '19.99', 1)}\n<!-- /table -->\n")
    assert update(readme, check=True) == ["cot cqa gpu2ep"]
    update(readme)
    assert "14.11" in readme.read_text() and "19.99" not in readme.read_text()


def test_a_block_never_closed_is_named_not_passed(tmp_path):
    from cmi_toolkit.readme import update

    page = tmp_path / "README.md"
    page.write_text("intro\n<!-- table: lab -->\n| stale |\n\nmore text\n")
    with pytest.raises(ValueError, match=r"README.md, line 2: generated block is never closed"):
        update(page, check=True)
    page.write_text("<!-- table: lab -->\n| a |\n<!-- table: lab -->\n| b |\n<!-- /table -->\n")
    with pytest.raises(ValueError, match=r"line 1: generated block is not closed before the next one opens \(line 3\)"):
        update(page, check=True)
