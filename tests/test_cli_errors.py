"""Every user mistake gives one line naming the file (and line) and the fix, exit code 2; --debug shows the traceback."""

import json
import shutil

import pytest

from cmi_toolkit import cli
from cmi_toolkit.cli import main

from .glue_fixtures import write_task
from .test_training import _easy_sst2


def _one_line_error(capsys, argv, code=2):
    assert main(argv) == code
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, err
    return lines[0]


@pytest.fixture()
def glue(tmp_path):
    return _easy_sst2(tmp_path / "glue", n=16)


def _train(model, glue, tmp_path, *extra):
    return ["train", "--model", str(model), "--glue_dir", str(glue), "--results_dir", str(tmp_path / "r"),
            "--max_train_samples", "8", "--epochs", "1", "--batch_size", "8", *extra]


def test_unknown_task_lists_the_known_ones(capsys, tmp_path, glue):
    line = _one_line_error(capsys, ["train", "--task", "nosuchtask", "--results_dir", str(tmp_path / "r")])
    assert "unknown GLUE task 'nosuchtask'" in line and "sst2 (SST-2)" in line and "cola (CoLA)" in line


@pytest.mark.parametrize("value", ["nan", "inf", "-0.5"])
def test_bad_lambda_is_refused_before_training(capsys, tmp_path, glue, tiny_model_dir, value):
    line = _one_line_error(capsys, _train(tiny_model_dir, glue, tmp_path, "--method", "cmi", "--cmi_weight", value))
    assert "--cmi_weight must be a finite number >= 0" in line and value in line
    assert not (tmp_path / "r").exists()  # nothing recorded, no empty checkpoint folder


def test_huge_lambda_warns_in_one_line(capsys, tmp_path, glue, tiny_model_dir):
    assert main(_train(tiny_model_dir, glue, tmp_path, "--method", "cmi", "--cmi_weight", "1e6")) == 0
    err = capsys.readouterr().err
    assert "warning: --cmi_weight 1e+06 is above 10" in err and "Traceback" not in err


def test_zero_epochs_is_refused(capsys, tmp_path, glue, tiny_model_dir):
    line = _one_line_error(capsys, _train(tiny_model_dir, glue, tmp_path, "--epochs", "0"))
    assert "--epochs must be a finite number > 0, got 0" in line


def test_subset_larger_than_data_warns(capsys, tmp_path, glue, tiny_model_dir):
    argv = _train(tiny_model_dir, glue, tmp_path, "--method", "ce")
    argv[argv.index("--max_train_samples") + 1] = "500"
    assert main(argv) == 0
    assert "warning: asked for 500 rows but the split has 16" in capsys.readouterr().err


def test_broken_model_config_names_the_file(capsys, tmp_path, glue, tiny_model_dir):
    model = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model)
    (model / "config.json").write_text('{"model_type": "bert",\n  "hidden_size": 32,,\n}')
    line = _one_line_error(capsys, _train(model, glue, tmp_path))
    assert f"{model / 'config.json'}, line 2: not valid JSON" in line


def test_broken_suite_yaml_and_missing_suite_value(capsys, tmp_path, glue):
    suite = tmp_path / "suite.yaml"
    suite.write_text("seeds: [0, 1\ntasks: {sst2: {}}\n")
    line = _one_line_error(capsys, ["train", "--suite", str(suite), "--results_dir", str(tmp_path / "r")])
    assert str(suite) in line and "not valid YAML" in line
    line = _one_line_error(capsys, ["train", "--suite"])
    assert "--suite needs a value" in line
    line = _one_line_error(capsys, ["report", "--suite", "nosuchsuite", "--results_dir", str(tmp_path)])
    assert "no run records here" in line or "no suite 'nosuchsuite'" in line


def test_unwritable_results_folder_is_found_before_training(capsys, tmp_path, glue, tiny_model_dir):
    (tmp_path / "blocker").write_text("")
    argv = _train(tiny_model_dir, glue, tmp_path)
    argv[argv.index("--results_dir") + 1] = str(tmp_path / "blocker" / "r")
    line = _one_line_error(capsys, argv)
    assert "results folder is not writable" in line and "--results_dir" in line


def test_bad_glue_bytes_and_labels_name_file_and_line(capsys, tmp_path):
    folder = tmp_path / "SST-2"
    folder.mkdir()
    (folder / "dev.tsv").write_text("sentence\tlabel\nfine\t1\n")
    (folder / "train.tsv").write_bytes(b"sentence\tlabel\nfine\t1\ncaf\xe9\t0\n")
    line = _one_line_error(capsys, ["measure", "--glue_dir", str(tmp_path)])
    assert f"{folder / 'train.tsv'}, line 3: byte" in line and "not UTF-8" in line
    (folder / "train.tsv").write_text("sentence\tlabel\nfine\t1\nodd\t²\n", encoding="utf-8")
    line = _one_line_error(capsys, ["measure", "--glue_dir", str(tmp_path)])
    assert f"{folder / 'train.tsv'}, line 3: unknown label '²'" in line


def _cot_copy(tmp_path):
    from .test_cot import _shared_cot

    src = _shared_cot()
    if src is None:
        pytest.skip("CoT data not found")
    dst = tmp_path / "cot"
    (dst / "cqa" / "llm").mkdir(parents=True)
    for f in ("cqa_train.json", "cqa_test.json"):
        shutil.copy(src / "cqa" / f, dst / "cqa" / f)
    for f in (src / "cqa" / "llm").glob("*.json"):
        shutil.copy(f, dst / "cqa" / "llm" / f.name)
    return dst


def test_cot_stray_file_and_empty_seeds(capsys, tmp_path):
    cot = _cot_copy(tmp_path)
    (cot / "cqa" / "llm" / "train_CoT_old.json").write_text("[]")
    line = _one_line_error(capsys, ["cot", "--cot_dir", str(cot), "--results_dir", str(tmp_path / "r")])
    assert "train_CoT_old.json: not a numbered LLM file" in line
    line = _one_line_error(capsys, ["cot", "--seeds", "", "--cot_dir", str(cot)])
    assert "--seeds" in line
    line = _one_line_error(capsys, ["cot", "--seeds", "0,x", "--cot_dir", str(cot)])
    assert "--seeds '0,x'" in line and "integer" in line


def test_cot_non_utf8_names_file_and_line(capsys, tmp_path):
    cot = _cot_copy(tmp_path)
    path = cot / "cqa" / "cqa_test.json"
    lines = path.read_bytes().split(b"\n")
    lines[4] = lines[4].replace(b"a", b"\xff", 1)
    path.write_bytes(b"\n".join(lines))
    line = _one_line_error(capsys, ["cot", "--cot_dir", str(cot), "--results_dir", str(tmp_path / "r")])
    assert f"{path}, line 5: byte" in line


def test_ctrl_c_says_how_to_resume(capsys, monkeypatch):
    def interrupted(argv):
        raise KeyboardInterrupt

    monkeypatch.setitem(cli.COMMANDS, "tasks", interrupted)
    assert main(["tasks"]) == 130
    assert "interrupted; run the same command again to resume" in capsys.readouterr().err


def test_debug_shows_the_traceback(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="unknown GLUE task"):
        main(["train", "--task", "nosuchtask", "--debug", "--results_dir", str(tmp_path)])
    monkeypatch.setenv("CMI_TOOLKIT_DEBUG", "1")
    with pytest.raises(ValueError, match="unknown GLUE task"):
        main(["train", "--task", "nosuchtask", "--results_dir", str(tmp_path)])


def test_report_without_records_is_one_line(capsys, tmp_path):
    line = _one_line_error(capsys, ["report", "--results_dir", str(tmp_path / "none")])
    assert "no run records here" in line


def test_method_is_checked_per_command(capsys, tmp_path):
    line = _one_line_error(capsys, ["distill", "--method", "ce", "--results_dir", str(tmp_path)])
    assert "--method must be one of kd_ce, kd_mcmi here" in line
    write_task(tmp_path / "g", "rte", n=8)
    line = _one_line_error(capsys, ["train", "--method", "bogus", "--task", "rte", "--results_dir", str(tmp_path)])
    assert "--method must be one of" in line


def test_record_json_is_readable(tmp_path, glue, tiny_model_dir, capsys):
    assert main(_train(tiny_model_dir, glue, tmp_path, "--method", "ce")) == 0
    out = capsys.readouterr().out
    assert json.loads(out[out.index("{"):])["train_steps"] == 1


def test_all_rows_on_the_command_line(tmp_path, glue, tiny_model_dir, capsys):
    argv = _train(tiny_model_dir, glue, tmp_path, "--method", "ce")
    argv[argv.index("--max_train_samples") + 1] = "all"
    assert main(argv) == 0
    record = json.loads(next((tmp_path / "r" / "runs").glob("*.json")).read_text())
    assert record["params"]["max_train_samples"] is None and record["train_samples"] == 16
