"""The package's house: layers that import only downwards, and no import circle.

Every import counts, the ones inside functions too (a lazy import is still a dependency a reader must know of).
The layers, lowest first, are those of the "Package layout" in docs/development.md and of each package's ``__init__`` docstring.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "cmi_toolkit"

#: lowest first; a module may import its own layer and the layers before it
LAYERS = [
    ("base", ["cmi_toolkit", "cmi_toolkit.defaults", "cmi_toolkit.progress", "cmi_toolkit.files",
              "cmi_toolkit.plotting"]),
    ("data", ["cmi_toolkit.data"]),
    ("method", ["cmi_toolkit.method"]),
    ("runs", ["cmi_toolkit.runs"]),
    ("evidence", ["cmi_toolkit.evidence"]),
    ("cot", ["cmi_toolkit.cot"]),
    ("course", ["cmi_toolkit.course"]),
    ("readme", ["cmi_toolkit.readme", "cmi_toolkit.pages"]),
    ("cli", ["cmi_toolkit.cli"]),
]


def module_name(path: Path, root: Path = PKG) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules(root: Path = PKG) -> dict[str, Path]:
    return {module_name(p, root): p for p in sorted(root.rglob("*.py"))}


def layer_of(module: str) -> int:
    """Index of the layer holding ``module`` (the longest matching prefix wins)."""
    best, index = -1, None
    for i, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best:
                best, index = len(prefix), i
    if index is None:
        raise AssertionError(f"{module} is in no layer: add it to LAYERS and to the package layout of docs/development.md")
    return index


def imports_of(module: str, path: Path, known: set[str]) -> set[str]:
    """The package's modules that ``module`` imports anywhere in its file (``from . import x`` names module x)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "cmi_toolkit"}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "cmi_toolkit":
                continue
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                found.add(sub if sub in known else target)
    return {m for m in found if m in known and m != module}


def graph(root: Path = PKG) -> dict[str, set[str]]:
    mods = modules(root)
    return {m: imports_of(m, p, set(mods)) for m, p in mods.items()}


def upward_imports(g: dict[str, set[str]]) -> list[str]:
    return sorted(f"{m} ({LAYERS[layer_of(m)][0]}) imports {t} ({LAYERS[layer_of(t)][0]})"
                  for m, targets in g.items() for t in targets if layer_of(t) > layer_of(m))


def circles(g: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in g[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(g):
        if v not in index:
            visit(v)
    return out


def test_every_module_sits_in_a_layer():
    for m in modules():
        layer_of(m)


def test_no_module_imports_a_layer_above_its_own():
    assert upward_imports(graph()) == []


def test_no_import_circle():
    assert circles(graph()) == []


@pytest.mark.parametrize("kind", ["upward", "circle"])
def test_the_checks_see_a_broken_house(tmp_path, kind):
    """The two checks fail on a copy of the package with one bad import added."""
    import shutil

    root = tmp_path / "cmi_toolkit"
    shutil.copytree(PKG, root, ignore=shutil.ignore_patterns("__pycache__"))
    if kind == "upward":
        target = root / "method" / "fpdc.py"
        target.write_text(target.read_text(encoding="utf-8") + "\n\ndef _bad():\n    from ..cli import main\n",
                          encoding="utf-8")
        assert upward_imports(graph(root)) == ["cmi_toolkit.method.fpdc (method) imports cmi_toolkit.cli.main (cli)"]
    else:
        target = root / "method" / "markov.py"
        target.write_text(target.read_text(encoding="utf-8") + "\n\ndef _bad():\n    from .measure import measure\n",
                          encoding="utf-8")
        assert ["cmi_toolkit.method.markov", "cmi_toolkit.method.measure"] in circles(graph(root))


def test_each_layer_says_what_it_is_and_what_it_may_import():
    for _, prefixes in LAYERS[1:]:
        for prefix in prefixes:
            path = PKG / Path(*prefix.split(".")[1:])
            init = path / "__init__.py" if path.is_dir() else path.with_suffix(".py")
            doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8"))) or ""
            assert len(doc) > 200 and "import" in doc, f"{init}: its docstring should say what the layer is and what it may import"


def test_the_layout_table_lists_every_module_in_its_layer():
    readme = (PKG.parent / "docs" / "development.md").read_text(encoding="utf-8")
    table = readme.split("## Package layout", 1)[1].split("\n\n", 2)[2].split("\n\n", 1)[0]
    rows = {line.split("|")[1].strip().strip("`/"): line.split("|")[2] for line in table.splitlines()[2:]}
    for module, path in modules().items():
        parts = module.split(".")
        if path.name in ("__init__.py", "__main__.py"):
            continue
        name = LAYERS[layer_of(module)][0]
        row = rows.get(name) or rows["base" if name == "base" else "top"]
        leaf = parts[1] if name in ("readme", "cli") else parts[2] if len(parts) > 3 else parts[-1]
        assert f"`{leaf}`" in row or f"`{leaf}/`" in row, f"docs/development.md's package layout lacks {module} in the {name} row"
