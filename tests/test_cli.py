import csv
import subprocess
import sys

import yaml

from cmi_toolkit.cli import main
from cmi_toolkit.reproduce import load_suite, suite_runs

from .glue_fixtures import write_task


def test_suites_parse_and_expand():
    for name in ("cpu", "paper"):
        spec = load_suite(name)
        runs = suite_runs(spec)
        assert len(runs) == len(spec["tasks"]) * len(spec["seeds"]) * 5
        assert len({r.key for r in runs}) == len(runs)
    cpu = load_suite("cpu")
    assert cpu["common"]["model"] == "minilm-l6" and set(cpu["tasks"]) == {"sst2", "mrpc", "rte", "wnli"}


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
    rows = list(csv.DictReader((results / "summary.csv").open()))
    assert {r["method"] for r in rows} == {"ce", "cmi", "mcmi", "student", "kd_ce", "kd_mcmi"}
    kd = next(r for r in rows if r["method"] == "kd_mcmi")
    assert kd["seed_wins"] in ("0/1", "1/1") and kd["diff_mean"] != ""
    assert (figures / "glue_summary.html").read_text().count("<html") == 1
    capsys.readouterr()
    mtimes = {p: p.stat().st_mtime_ns for p in (results / "runs").glob("*.json")}
    assert main(argv) == 0  # the rerun skips finished runs
    assert {p: p.stat().st_mtime_ns for p in (results / "runs").glob("*.json")} == mtimes
    assert "| wnli |" in capsys.readouterr().out


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

    record = json.loads(next((tmp_path / "r" / "runs").glob("*.json")).read_text())
    cpu = load_suite("cpu")["common"]
    assert record["params"]["temperature"] == cpu["temperature"] and record["params"]["centroid_mode"] == cpu["centroid_mode"]
    assert record["params"]["epochs"] == 1  # the flag wins over the suite


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
    assert keys == {cfg.key for cfg in suite_runs(load_suite(suite))}
    mtimes = {p: p.stat().st_mtime_ns for p in (results / "runs").glob("*.json")}
    assert main(argv[:-4] + ["--figures_dir", str(tmp_path / "figures")]) == 0  # package executor: all runs skipped
    assert {p: p.stat().st_mtime_ns for p in (results / "runs").glob("*.json")} == mtimes
