import csv
import subprocess
import sys

import yaml

from cmi_toolkit.cli import main
from cmi_toolkit.runs.suites import load_suite, suite_runs

from .glue_fixtures import write_task


def test_suites_parse_and_expand():
    for name in ("cpu", "paper", "glue5"):
        spec = load_suite(name)
        runs = suite_runs(spec)
        assert len(runs) == len(spec["tasks"]) * len(spec["seeds"]) * (len(spec["finetune_methods"]) + len(spec["distill_methods"]))
        assert len({r.key for r in runs}) == len(runs)
    cpu = load_suite("cpu")
    assert suite_runs(cpu)[0].model == "minilm-l6" and set(cpu["tasks"]) == {"sst2", "mrpc", "rte", "wnli"}
    glue5 = load_suite("glue5")
    runs = suite_runs(glue5)
    assert set(glue5["tasks"]) == {"sst2", "mrpc", "rte", "cola", "wnli"} and len(glue5["seeds"]) >= 5
    teacher = next(r for r in runs if r.method == "mcmi")
    student = next(r for r in runs if r.method == "kd_mcmi")
    assert (teacher.space, teacher.centroid_mode) == ("output", "fixed") == (student.space, student.centroid_mode)
    assert student.teacher().key == teacher.key  # the student's teacher is the suite's teacher run
    assert next(r for r in runs if r.method == "cmi").space == "feature"  # the teacher section touches no other method


def test_train_help_lists_dataclass_options():
    out = subprocess.run([sys.executable, "-m", "cmi_toolkit.cli", "train", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "--cmi_weight" in out.stdout and "--centroid_mode" in out.stdout


def test_reproduce_and_report_on_fixture(tmp_path, tiny_model_dir, capsys):
    write_task(tmp_path / "glue", "wnli", n=16)
    suite = tmp_path / "suite.yaml"
    suite.write_text(yaml.safe_dump({
        "suite": "fixture", "seeds": [0], "finetune_methods": ["ce", "cmi"],
        "distill_methods": ["student", "kd_ce", "kd_mcmi"],
        "common": {"model": str(tiny_model_dir), "epochs": 1, "batch_size": 8, "max_train_samples": None,
                   "student_layers": "0,1", "temperature": 0.5},
        "tasks": {"wnli": {}}}))
    results, figures = tmp_path / "results", tmp_path / "figures"
    argv = ["reproduce", "--suite", str(suite), "--results_dir", str(results), "--figures_dir", str(figures),
            "--glue_dir", str(tmp_path / "glue")]
    assert main(argv) == 0
    assert len(list((results / "runs").glob("*.json"))) == 6  # 5 methods + the MCMI teacher
    rows = list(csv.DictReader((results / "summary_fixture.csv").open()))
    assert {r["method"] for r in rows} == {"ce", "cmi", "mcmi", "student", "kd_ce", "kd_mcmi"}
    kd = next(r for r in rows if r["method"] == "kd_mcmi")
    student = next(r for r in rows if r["method"] == "student")
    # a pair is compared unless one side is flagged degenerate (then it is excluded, and says so)
    assert (kd["seed_wins"] in ("0/1", "1/1") and kd["diff_mean"] != "") or kd["flagged"] or student["flagged"]
    assert (figures / "glue_summary_fixture.html").read_text().count("<html") == 1
    assert (figures / "plotly.min.js").is_file() and "cdn.plot.ly" not in (figures / "glue_summary_fixture.html").read_text()
    capsys.readouterr()
    mtimes = {p: p.stat().st_mtime_ns for p in (results / "runs").glob("*.json")}
    assert main(argv) == 0  # the rerun skips finished runs
    assert {p: p.stat().st_mtime_ns for p in (results / "runs").glob("*.json")} == mtimes
    assert "| wnli (accuracy) |" in capsys.readouterr().out


def test_cli_reports_bad_input_cleanly(tmp_path, capsys):
    (tmp_path / "SST-2").mkdir()
    (tmp_path / "SST-2" / "train.tsv").write_text("sentence\tlabel\nfine\t7\n")
    (tmp_path / "SST-2" / "dev.tsv").write_text("sentence\tlabel\nfine\t1\n")
    assert main(["measure", "--glue_dir", str(tmp_path)]) == 2
    assert "line 2: unknown label '7'" in capsys.readouterr().err
    assert main(["report", "--results_dir", str(tmp_path / "none")]) == 2


def test_train_takes_suite_defaults(tmp_path, tiny_model_dir, capsys):
    write_task(tmp_path / "glue", "wnli", n=8)
    argv = ["train", "--suite", "cpu", "--task", "wnli", "--method", "cmi", "--model", str(tiny_model_dir),
            "--epochs", "1", "--glue_dir", str(tmp_path / "glue"), "--results_dir", str(tmp_path / "r")]
    assert main(argv) == 0
    import json

    records = [json.loads(p.read_text()) for p in (tmp_path / "r" / "runs").glob("*.json")]
    record = next(r for r in records if r["params"]["method"] == "cmi")
    assert {r["params"]["method"] for r in records} == {"cmi", "ce"}  # the CE twin of the mechanism check
    cpu = load_suite("cpu")["common"]
    assert record["params"]["batch_size"] == cpu["batch_size"] and record["params"]["learning_rate"] == cpu["learning_rate"]
    assert record["params"]["epochs"] == 1  # the flag wins over the suite
    assert record["params"]["task"] == "wnli" and record["suite"] is None


def test_papermill_executor_shares_keys_with_the_package(tmp_path, tiny_model_dir):
    write_task(tmp_path / "glue", "wnli", n=16)
    suite = tmp_path / "suite.yaml"
    suite.write_text(yaml.safe_dump({
        "suite": "fixture", "seeds": [0], "finetune_methods": ["ce", "cmi"], "distill_methods": [],
        "common": {"model": str(tiny_model_dir), "epochs": 1, "batch_size": 8, "max_train_samples": None,
                   "temperature": 0.5},
        "tasks": {"wnli": {}}}))
    results = tmp_path / "results"
    argv = ["reproduce", "--suite", str(suite), "--results_dir", str(results), "--glue_dir", str(tmp_path / "glue"),
            "--executor", "papermill", "--figures_dir", str(tmp_path / "figures")]
    assert main(argv) == 0
    assert (results / "notebooks" / "wnli_seed0.ipynb").is_file()
    keys = {p.stem for p in (results / "runs").glob("*.json")}
    assert keys == {cfg.store_key(str(tmp_path / "glue")) for cfg in suite_runs(load_suite(suite))}
    mtimes = {p: p.stat().st_mtime_ns for p in (results / "runs").glob("*.json")}
    assert main(argv[:-4] + ["--figures_dir", str(tmp_path / "figures")]) == 0  # package executor: all runs skipped
    assert {p: p.stat().st_mtime_ns for p in (results / "runs").glob("*.json")} == mtimes
