"""Running the course leaves a clone clean: what JupyterLab writes when it saves a notebook (outputs, execution
counts, the kernel's version fields, cell timings) is no change to git once `make setup` has set
the notebook filter, and the jupytext twin it writes beside it is byte for byte the committed one."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import REPO

MODULE = "04_teacher_student_kd"


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=repo, check=True,
                          capture_output=True, text=True).stdout


def _save_as_jupyterlab_does(notebook: Path) -> None:
    """A student ran every cell and JupyterLab saved: outputs, counts, kernel fields and cell metadata added; the
    jupytext contents manager then writes the twin with the folder's jupytext.toml."""
    nb = json.loads(notebook.read_text())
    nb["metadata"]["kernelspec"] = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
    nb["metadata"]["language_info"] = {"name": "python", "version": "3.11.2", "mimetype": "text/x-python",
                                       "codemirror_mode": {"name": "ipython", "version": 3},
                                       "file_extension": ".py", "pygments_lexer": "ipython3"}
    for i, cell in enumerate(c for c in nb["cells"] if c["cell_type"] == "code"):
        cell["execution_count"] = i + 1
        cell["outputs"] = [{"output_type": "stream", "name": "stdout", "text": ["a student's output\n"]}]
        cell["metadata"]["execution"] = {"iopub.execute_input": "2026-12-03T13:00:00.000Z"}
        cell["metadata"]["scrolled"] = True
    notebook.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
    subprocess.run([str(Path(sys.executable).parent / "jupytext"), "--to", "py:percent", notebook.name, "-q"],
                   cwd=notebook.parent, check=True, capture_output=True)


def test_a_notebook_saved_in_jupyterlab_leaves_the_clone_clean(tmp_path):
    if shutil.which("git") is None or shutil.which("make") is None:
        pytest.skip("needs git and make")
    repo = tmp_path / "clone"
    (repo / "notebooks").mkdir(parents=True)
    shutil.copy(REPO / ".gitattributes", repo / ".gitattributes")
    for name in ("jupytext.toml", f"{MODULE}.ipynb", f"{MODULE}.py"):
        shutil.copy(REPO / "notebooks" / name, repo / "notebooks" / name)
    _git(repo, "init", "-q")
    _git(repo, "add", ".")
    _git(repo, "commit", "-qm", "course")
    _save_as_jupyterlab_does(repo / "notebooks" / f"{MODULE}.ipynb")
    assert _git(repo, "status", "--porcelain").strip() == "M notebooks/04_teacher_student_kd.ipynb"  # no filter yet
    # the Makefile's own target, for this clone, with the interpreter running the tests
    subprocess.run(["make", "-s", "-f", str(REPO / "Makefile"), "-o", f"{sys.prefix}/.installed", "git-filters",
                    f"VENV={sys.prefix}"], cwd=repo, check=True, capture_output=True)
    _git(repo, "diff", "--exit-code")  # outputs and kernel fields are no change to git; the twin did not change
    _git(repo, "add", "-A")  # (git status lists a file whose size changed until it is added: git's own shortcut)
    assert _git(repo, "status", "--porcelain") == ""  # nothing to commit


def test_the_committed_notebooks_are_what_the_filter_makes_of_them(tmp_path):
    """Each committed notebook is a fixed point of the Makefile's nbstripout filter: a clone that sets the filter
    sees no change in a notebook nobody touched (and a commit never rewrites one)."""
    import re
    import shlex

    flags = re.search(r"^NBSTRIPOUT_FLAGS := (.+)$", (REPO / "Makefile").read_text(), re.M).group(1)
    notebooks = sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    for notebook in notebooks:
        shutil.copy(notebook, tmp_path / notebook.name)
    subprocess.run([sys.executable, "-m", "nbstripout", *shlex.split(flags), *(str(tmp_path / n.name) for n in notebooks)],
                   check=True)
    for notebook in notebooks:
        assert (tmp_path / notebook.name).read_bytes() == notebook.read_bytes(), f"{notebook.name}: run `make notebooks-sync`"


def test_a_records_git_state_does_not_wait_for_the_notebook_filter(tmp_path):
    """Provenance reads `git status` of the checkout: with the filter set, that must not start nbstripout once per
    notebook (seconds each on a busy machine, past git_state's timeout, which would record no commit)."""
    from cmi_toolkit.runs.provenance import git_state

    repo = tmp_path / "clone"
    (repo / "notebooks").mkdir(parents=True)
    shutil.copy(REPO / ".gitattributes", repo / ".gitattributes")
    shutil.copy(REPO / "notebooks" / f"{MODULE}.ipynb", repo / "notebooks" / f"{MODULE}.ipynb")
    _git(repo, "init", "-q")
    _git(repo, "add", ".")
    _git(repo, "commit", "-qm", "course")
    _git(repo, "config", "filter.nbstripout.clean", "sleep 30; cat")  # a filter far slower than the timeout
    (repo / "notebooks" / f"{MODULE}.ipynb").touch()  # its stat changed: git looks at the content again
    state = git_state(repo)
    assert state["commit"] == _git(repo, "rev-parse", "HEAD").strip() and state["dirty"] is False
