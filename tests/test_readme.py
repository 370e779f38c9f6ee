"""The README's result tables are the report's output on the committed records, never typed."""

import pytest

from cmi_toolkit.readme import BLOCK, render, update

from .conftest import REPO


def test_readme_tables_equal_the_records():
    text = (REPO / "README.md").read_text()
    specs = [m.group("spec") for m in BLOCK.finditer(text)]
    assert {"glue cpu", "glue cpu5", "glue cpu5kd", "verdict cpu5", "verdict cpu5kd", "verdict cpu", "lab",
            "cot cqa gpu2ep"} <= set(specs)
    assert update(REPO / "README.md", check=True) == [], "run `cmi-toolkit readme` and commit the README"


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
