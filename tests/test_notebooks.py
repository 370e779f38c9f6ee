"""Every notebook runs headless under papermill in smoke mode; we assert on what it computed."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from .conftest import REPO

NOTEBOOKS = sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))
pytestmark = pytest.mark.notebook


def test_notebooks_exist_and_are_stripped():
    names = {p.stem for p in NOTEBOOKS}
    assert {"00_markov_source_view", "01_finetune_with_cmi", "02_measure_cmi", "03_centroids_and_clusters",
            "04_teacher_student_kd", "05_cot_distillation_mi", "06_reproduce_glue"} <= names
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        params = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
        assert len(params) == 1, f"{path.name}: needs exactly one cell tagged 'parameters'"
        assert "smoke" in params[0].source, f"{path.name}: the parameters cell needs a smoke parameter"
        assert "smoke = False" in params[0].source, f"{path.name}: one smoke default for every notebook (False)"
        for line in params[0].source.splitlines():  # the kit's defaults come from cmi_toolkit.defaults, never retyped
            name = line.split("=")[0].strip()
            if name in ("space", "temperature", "cmi_weight", "centroid_mode", "model"):
                assert "D." in line, f"{path.name}: {line!r} restates a default"
        source = "".join(c.source for c in nb.cells)  # the smoke banner: printed directly or by notebook.setup
        assert "smoke: pipeline check, numbers are not meaningful" in source or "setup(smoke," in source
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert not cell.outputs and cell.execution_count is None, f"{path.name}: commit notebooks without outputs"


def test_notebooks_and_their_jupytext_twins_are_in_sync():
    """Each notebook has a py:percent twin (diff-able text); the two hold the same cells."""
    import jupytext

    assert "py:percent" in (REPO / "notebooks" / "jupytext.toml").read_text()
    for path in NOTEBOOKS:
        twin = path.with_suffix(".py")
        assert twin.is_file(), f"{twin.name} missing: run `make notebooks-sync`"
        nb, text = nbformat.read(path, as_version=4), jupytext.read(twin)
        cells = [(c.cell_type, c.source.strip()) for c in nb.cells]
        assert cells == [(c.cell_type, c.source.strip()) for c in text.cells], \
            f"{path.name} and {twin.name} differ: run `make notebooks-sync`"
        assert [c.metadata.get("tags") for c in nb.cells] == [c.metadata.get("tags") for c in text.cells]


def run_notebook(name: str, tmp_path: Path, glue_dir: Path | None, **params) -> dict:
    import papermill as pm

    out = tmp_path / "out"
    parameters = {"smoke": True, "output_dir": str(out), "figures_dir": str(tmp_path / "figures"), **params}
    if glue_dir is not None:
        parameters["glue_dir"] = str(glue_dir)
    pm.execute_notebook(str(REPO / "notebooks" / f"{name}.ipynb"), str(tmp_path / f"{name}.ipynb"),
                        parameters=parameters, cwd=str(REPO / "notebooks"), kernel_name="python3", progress_bar=False)
    assert_no_echoed_values(tmp_path / f"{name}.ipynb")
    return json.loads((out / "metrics.json").read_text())


def assert_no_echoed_values(executed: Path) -> None:
    """Clean output: no cell shows a bare return value (a path, a dict of figure files, True/False, a None)."""
    nb = nbformat.read(executed, as_version=4)
    for i, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []):
            text = "".join(out.get("data", {}).get("text/plain", "")) if out.get("output_type") == "execute_result" else ""
            assert not re.match(r"(\w*Path\(|\{'html'|True$|False$|None$)", text.strip()), \
                f"{executed.name} cell {i} echoes {text.strip()[:80]!r}"


def test_00_markov_source(tmp_path):
    m = run_notebook("00_markov_source_view", tmp_path, None)
    assert m["exact_cmi_tempered"] < m["exact_cmi_bayes"]
    assert m["estimates"]["10000"] == pytest.approx(m["exact_cmi_bayes"], rel=0.05)
    assert m["identity"] == pytest.approx(m["exact_cmi_bayes"], rel=1e-9)  # H(Ŷ|Y) − H(Ŷ|X) = E KL(P_X ‖ Q_Y)
    z = list(m["z_cmi"].values())
    assert z == sorted(z, reverse=True)  # I(X; Z | Y) falls as T grows
    assert 0.5 < m["bayes_accuracy"] <= 1.0
    assert (tmp_path / "figures" / "00_cmi_convergence.html").is_file()


def test_a_notebook_run_writes_its_figures_under_its_output_folder_not_the_committed_ones(tmp_path):
    """Default ``figures_dir``: ``<output_dir>/figures``; the repository's figures/ change only by `make figures`."""
    import papermill as pm

    committed = {p: p.stat().st_mtime_ns for p in (REPO / "figures").glob("00_*")}
    out = tmp_path / "out"
    pm.execute_notebook(str(REPO / "notebooks" / "00_markov_source_view.ipynb"), str(tmp_path / "00.ipynb"),
                        parameters={"smoke": True, "output_dir": str(out)}, cwd=str(REPO / "notebooks"),
                        kernel_name="python3", progress_bar=False)
    assert (out / "figures" / "00_cmi_convergence.html").is_file()
    assert committed and {p: p.stat().st_mtime_ns for p in (REPO / "figures").glob("00_*")} == committed
    assert "figures_dir=../figures" in (REPO / "Makefile").read_text()  # the one way to rewrite them


def test_00_runs_with_any_alphabet_size(tmp_path):
    m = run_notebook("00_markov_source_view", tmp_path, None, alphabet_size=4, length=6, order=1)
    assert m["identity"] == pytest.approx(m["exact_cmi_bayes"], rel=1e-9)
    assert len(m["z_cmi"]) == 7


def test_00_is_deterministic_under_nbval(tmp_path):
    run_notebook("00_markov_source_view", tmp_path, None)
    executed = tmp_path / "00_markov_source_view.ipynb"
    proc = subprocess.run([sys.executable, "-m", "pytest", "--nbval", "-q", "-p", "no:cacheprovider", str(executed)],
                          cwd=REPO / "notebooks", capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert " passed" in proc.stdout


def test_01_lambda_sweep(tmp_path, glue_dir):
    m = run_notebook("01_finetune_with_cmi", tmp_path, glue_dir)
    rows = sorted(m["rows"], key=lambda r: r["lambda"])
    assert [r["lambda"] for r in rows] == [0.0, 0.1, 1.0]
    cmis = [r["cmi"] for r in rows]
    assert cmis[0] > cmis[1] > cmis[2], f"a larger CMI weight should give a lower CMI: {cmis}"
    assert all(0.0 <= r["accuracy"] <= 1.0 for r in rows)
    assert (tmp_path / "figures" / "01_lambda_sweep.html").is_file()
    # under papermill the static figure is stored, never a widget waiting for a front end
    executed = nbformat.read(tmp_path / "01_finetune_with_cmi.ipynb", as_version=4)
    cell = next(c for c in executed.cells if c.cell_type == "code" and "LambdaExplorer(" in c.source)
    mimes = {k for o in cell.outputs for k in o.get("data", {})}
    assert "application/vnd.plotly.v1+json" in mimes
    assert "application/vnd.jupyter.widget-view+json" not in mimes
    from cmi_toolkit.plotting import _chromium

    if _chromium():  # a PNG beside the plotly figure, for GitHub and nbviewer (which run no JavaScript)
        assert "image/png" in mimes


def test_02_measure(tmp_path, glue_dir):
    m = run_notebook("02_measure_cmi", tmp_path, glue_dir)
    assert len(m["history"]) >= 2 and m["history"][0]["step"] == 0
    assert m["before"]["num_samples"] == m["after"]["num_samples"] == 120
    assert m["after"]["feature_cmi"] != m["before"]["feature_cmi"]
    # the prose: "before fine-tuning" is the seeded model the curve starts from, and its head ignores the input
    step0 = m["history"][0]
    assert step0["accuracy"] == m["before"]["accuracy"]
    assert step0["feature_cmi"] == pytest.approx(m["before"]["feature_cmi"], rel=1e-6)
    assert m["before"]["output_cmi"] < 0.01


def test_03_clusters(tmp_path, glue_dir):
    m = run_notebook("03_centroids_and_clusters", tmp_path, glue_dir)
    assert m["cmi"]["feature_cmi"] < m["ce"]["feature_cmi"]
    for model in ("ce", "cmi"):  # the prose: a PCA cross is the mean of its points; CMI is the mean per-example KL
        assert m[model]["centroid_vs_mean_of_points"] < 1e-4
        assert m[model]["mean_kl"] == pytest.approx(m[model]["feature_cmi"], abs=1e-4)
    for name in ("03_fpdc", "03_kl_histograms", "03_clusters_umap"):
        assert (tmp_path / "figures" / f"{name}.html").is_file()
    assert (tmp_path / "figures" / "03_clusters_side_by_side.html").is_file()


def test_04_teacher_student(tmp_path, glue_dir):
    m = run_notebook("04_teacher_student_kd", tmp_path, glue_dir)
    rows = {r["method"]: r for r in m["rows"]}
    assert set(rows) == {"ce", "mcmi", "student", "kd_ce", "kd_mcmi"}
    # it opens on the verdict suite's recorded SST-2 runs (read from the committed store, nothing trained)
    assert not (tmp_path / "out" / "runs").exists() or not list((tmp_path / "out" / "runs").glob("*.json"))
    # the prose: the MCMI teacher is checked against its CE twin; the students learn (well above the majority)
    assert rows["mcmi"]["mechanism"] == "2/2"
    for method in ("student", "kd_ce", "kd_mcmi"):
        assert rows[method]["mean"] > rows[method]["majority"] + 0.15 and not rows[method]["flagged"]
    # the question, paired by seed: MCMI teacher's student minus CE teacher's student over the smoke's 2 seeds
    assert m["question"]["n"] == 2 and m["question"]["low"] <= m["question"]["mean"] <= m["question"]["high"]


def test_05_cot(tmp_path):
    from .test_cot import _shared_cot

    cot = _shared_cot()
    if cot is None or not (cot / "esnli").is_dir():
        pytest.skip("CoT data with e-SNLI not found: set CMI_TOOLKIT_COT_DIR")
    m = run_notebook("05_cot_distillation_mi", tmp_path, None, cot_dir=str(cot), results_dir=str(tmp_path / "runs"))
    from cmi_toolkit.cot import variant_of

    variants = {variant_of(r["params"]): r for r in m["records"]}
    assert set(variants) == {"label_only", "dss"}
    assert "ce_rationale" in variants["dss"]["loss_start"] and "ce_rationale" not in variants["label_only"]["loss_start"]
    for r in m["records"]:  # the encoder student, read against chance and PaLM's answers on the same rows
        assert r["params"]["student"] == "encoder" and r["metrics"]["chance"] == pytest.approx(1 / 3)
        assert 0.6 < r["metrics"]["teacher_accuracy"] < 0.85 and 0.0 <= r["metrics"]["accuracy"] <= 1.0
    # the rationale task learns within the smoke's 5 steps (its CE starts near ln 30,522 = 10.3)
    assert variants["dss"]["loss_end"]["ce_rationale"] < variants["dss"]["loss_start"]["ce_rationale"] - 1.0
    assert m["references"]["chance"] == pytest.approx(1 / 3)
    executed = (tmp_path / "05_cot_distillation_mi.ipynb").read_text()
    assert "smoke: pipeline check, numbers are not meaningful" in executed


def test_06_reproduce_reads_committed_results(tmp_path):
    (tmp_path / "cpu5").mkdir()
    m = run_notebook("06_reproduce_glue", tmp_path / "cpu5", None, results_dir=str(REPO / "results"), suite="cpu5")
    assert m["records"] == 20 and len(m["rows"]) == 4  # 2 tasks x 2 methods x 5 seeds
    fam = {r["task"]: r for r in m["family"]}
    assert set(fam) == {"sst2", "cola"} and all(r["p_holm"] >= r["p"] for r in fam.values())
    checked = [r for r in m["rows"] if r["method"] == "cmi"]
    assert all(r["mechanism"] == "5/5" and not r["verdict"].endswith("†") for r in checked)
    m = run_notebook("06_reproduce_glue", tmp_path, None, results_dir=str(REPO / "results"), suite="cpu")
    assert m["records"] == 72 and len(m["rows"]) == 24
    from cmi_toolkit.evidence.statistics import paired_comparison

    compared = [r for r in m["rows"] if r["diff_mean"] is not None]
    assert compared and all(r["verdict"].removesuffix(" †") in ("better", "worse", "no difference detected")
                            for r in compared)
    assert all(r["verdict"].endswith(" †") for r in compared)  # the committed cpu records predate the checks
    # the verdict is the interval's, never the mean's: a positive mean whose interval straddles 0 is no win
    mrpc = next(r for r in compared if r["task"] == "mrpc" and r["method"] == "cmi")
    assert mrpc["diff_mean"] > 0 and mrpc["diff_low"] < 0 and mrpc["verdict"] == "no difference detected †"
    assert paired_comparison([1.0, 1.1, 0.9], [0, 0, 0])["verdict"] == "better"
    executed = (tmp_path / "06_reproduce_glue.ipynb").read_text()
    assert "predate the degenerate-run and mechanism checks" in executed
    (tmp_path / "verdict").mkdir()
    m = run_notebook("06_reproduce_glue", tmp_path / "verdict", None, results_dir=str(REPO / "results"))
    assert all(r["verdict"] in ("better", "worse", "no difference detected", "too few seeds") for r in m["family"])
    assert "Plan (from the suite file" in (tmp_path / "verdict" / "06_reproduce_glue.ipynb").read_text()


def test_committed_figures_open_without_a_network():
    """Every figure page loads its scripts from files beside it (one shared plotly.min.js), none from the web."""
    import re

    pages = sorted((REPO / "figures").glob("*.html"))
    assert pages
    for page in pages:
        sources = re.findall(r'<script[^>]*\bsrc="([^"]+)"', page.read_text(encoding="utf-8"))
        assert sources, f"{page.name}: no plotly.js at all"
        for src in sources:
            assert not re.match(r"(https?:)?//", src), f"{page.name} loads {src} from the network"
            assert (page.parent / src).is_file(), f"{page.name} needs {src} beside it"


def test_a_notebook_started_from_another_folder_finds_the_kits_results(tmp_path, glue_dir, monkeypatch):
    """The committed stores (the lab cache, results/) and the data beside the checkout are found from the package's
    location, not from the working folder: 03 started in an unrelated folder shows the cached views."""
    import papermill as pm

    from cmi_toolkit.course.notebook import data_dir

    monkeypatch.delenv("CMI_TOOLKIT_GLUE_DIR", raising=False)
    assert data_dir("glue") == str(REPO.parent / "shared" / "data" / "glue")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    pm.execute_notebook(str(REPO / "notebooks" / "03_centroids_and_clusters.ipynb"), str(tmp_path / "03.ipynb"),
                        parameters={"smoke": True, "output_dir": str(tmp_path / "out"), "glue_dir": str(glue_dir)},
                        cwd=str(elsewhere), kernel_name="python3", progress_bar=False)
    assert json.loads((tmp_path / "out" / "metrics.json").read_text())["cmi"]["feature_cmi"] > 0
