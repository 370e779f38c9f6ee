"""The careless-or-hostile-user probes: one representative of each kind, so the promises stay kept.

Every file the kit reads but did not write is checked against a declared schema (a violation is one line naming
the file and the fix, exit 2); checkpoints are used only when every file the resume needs is whole; a results
folder is safe to share between processes; a run has exactly one key; the data a record names is the data read;
CoT rows parse in linear time; options mean what they say; notebook parameters are checked at the top.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import shutil
import time
from pathlib import Path

import pytest

from cmi_toolkit.runs.config import RunConfig
from cmi_toolkit.runs.execute import execute, prepare_data, train_model
from cmi_toolkit.runs.store import CorruptResultError, ResultStore, legacy_run_key

from .test_cli_errors import _one_line_error, _train
from .test_training import _easy_sst2

RECORD = {"params": {"task": "sst2", "method": "ce", "seed": 0}, "suite": "s",
          "metrics": {"accuracy": 0.5, "feature_cmi": 0.1, "output_cmi": 0.1}}


@pytest.fixture()
def glue(tmp_path):
    return _easy_sst2(tmp_path / "glue", n=16)


# ------------------------------------------------------------------------------------------- model folders

def _copy_model(src: Path, dst: Path, drop: tuple[str, ...] = ()) -> Path:
    shutil.copytree(src, dst)
    for name in drop:
        (dst / name).unlink(missing_ok=True)
    return dst


def test_model_folder_without_tokenizer_is_refused_before_training(capsys, tmp_path, glue, tiny_model_dir):
    bare = _copy_model(tiny_model_dir, tmp_path / "bare", drop=("tokenizer.json", "vocab.txt", "tokenizer_config.json",
                                                                "special_tokens_map.json"))
    line = _one_line_error(capsys, _train(bare, glue, tmp_path, "--method", "ce"))
    assert str(bare) in line and "no tokenizer files" in line and "[UNK]" in line
    assert not (tmp_path / "r" / "runs").is_dir() or not list((tmp_path / "r" / "runs").glob("*.json"))


@pytest.mark.parametrize("damage", ["config_list", "truncated_weights", "id2label_list", "label2id_names"])
def test_damaged_model_folder_is_one_line(capsys, tmp_path, glue, tiny_model_dir, damage):
    folder = _copy_model(tiny_model_dir, tmp_path / "m")
    if damage == "config_list":
        (folder / "config.json").write_text("[]")
        expected = "config.json: holds a JSON list"
    elif damage in ("id2label_list", "label2id_names"):
        config = json.loads((folder / "config.json").read_text())
        if damage == "id2label_list":
            config["id2label"] = ["negative", "positive"]
            expected = "config.json: id2label is a JSON list, not a mapping"
        else:
            config["label2id"] = {"negative": "neg", "positive": "pos"}
            expected = "config.json: label2id maps 'negative' to 'neg', but class ids are integers"
        (folder / "config.json").write_text(json.dumps(config))
    else:
        weights = folder / "model.safetensors"
        weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
        expected = "model.safetensors is truncated"
    line = _one_line_error(capsys, _train(folder, glue, tmp_path, "--method", "ce"))
    assert expected in line


@pytest.mark.parametrize("command,how", [("train", "auto_map"), ("evaluate", "unknown_type")])
def test_code_in_a_model_folder_never_runs_even_with_yes_on_stdin(tmp_path, glue, tiny_model_dir, how, command):
    """A folder whose config points at its own Python (which would write a file) is refused in one line, before
    transformers could ask on stdin whether to run it; `yes` piped in changes nothing."""
    import os
    import subprocess
    import sys

    folder = _copy_model(tiny_model_dir, tmp_path / "hostile")
    marker = tmp_path / "code_ran"
    (folder / "evil.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\n"
                                    "from transformers import BertConfig\nclass EvilConfig(BertConfig):\n"
                                    "    model_type = 'evil'\n")
    config = json.loads((folder / "config.json").read_text())
    if how == "auto_map":
        config["auto_map"] = {"AutoConfig": "evil.EvilConfig", "AutoModelForSequenceClassification": "evil.EvilConfig"}
    else:
        config["model_type"] = "evil"
    (folder / "config.json").write_text(json.dumps(config))
    args = ([command, "--model", str(folder), "--task", "sst2", "--glue_dir", str(glue), "--results_dir",
             str(tmp_path / "r"), "--max_train_samples", "8", "--max_eval_samples", "8", "--epochs", "1"]
            if command == "train" else [command, "--model", str(folder), "--task", "sst2", "--glue_dir", str(glue)])
    out = subprocess.run([sys.executable, "-m", "cmi_toolkit.cli", *args], input="y\n" * 50, text=True,
                         capture_output=True, timeout=300, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert not marker.exists()
    assert out.returncode == 2, out.stderr[-2000:]
    errors = [x for x in out.stderr.splitlines() if x.startswith("error:")]
    assert len(errors) == 1 and str(folder) in errors[0] and "never runs" in errors[0], out.stderr[-2000:]
    assert "Traceback" not in out.stderr and "custom code" not in out.stderr + out.stdout


@pytest.mark.parametrize("how", ["same", "link", "folder"])
def test_an_output_that_names_an_input_is_refused_and_the_input_kept(capsys, tmp_path, tiny_model_dir, how):
    data = tmp_path / "rows.tsv"
    data.write_text("sentence\nhello there\n")
    before = data.read_bytes()
    output = {"same": data, "link": tmp_path / "out.tsv", "folder": tmp_path}[how]
    if how == "link":
        output.symlink_to(data)
    line = _one_line_error(capsys, ["predict", "--model", str(tiny_model_dir), "--task", "sst2", "--data", str(data),
                                    "--output", str(output)])
    assert ("is a folder" if how == "folder" else "would replace the input") in line
    assert data.read_bytes() == before


def test_measuring_a_classifier_whose_head_does_not_fit_is_refused(tiny_model_dir):
    from cmi_toolkit.data.models import load_classifier

    with pytest.raises(ValueError, match="head has 2 labels, the task has 3"):
        load_classifier(str(tiny_model_dir), num_labels=3, trained_head=True)
    assert load_classifier(str(tiny_model_dir), num_labels=2, trained_head=True).config.num_labels == 2


# ---------------------------------------------------------------------------------------------- checkpoints

def test_checkpoint_missing_centroids_or_with_truncated_optimizer_is_skipped(tmp_path, glue, tiny_model_dir,
                                                                            tokenizer, capsys):
    from cmi_toolkit.method.trainers import last_complete_checkpoint

    cfg = RunConfig(task="sst2", method="cmi", model=str(tiny_model_dir), max_train_samples=16, epochs=2,
                    batch_size=8, bf16=False)
    _, train, _ = prepare_data(cfg, tokenizer, str(glue))
    out = tmp_path / "out"
    train_model(cfg, train, tokenizer, out, progress=False)
    (out / "checkpoint-4").rename(out / "checkpoint-2")  # an older complete one ...
    train_model(cfg, train, tokenizer, out / "again", progress=False)
    shutil.copytree(out / "again" / "checkpoint-4", out / "checkpoint-4")  # ... and a newer one, then damaged
    (out / "checkpoint-4" / "centroids.pt").unlink()
    (out / "checkpoint-4" / "manifest.json").unlink()  # as a checkpoint of older code: the required files decide
    assert last_complete_checkpoint(out, required=("centroids.pt",)).endswith("checkpoint-2")
    assert "skipping incomplete checkpoint" in capsys.readouterr().err
    shutil.rmtree(out / "checkpoint-4")
    shutil.copytree(out / "again" / "checkpoint-4", out / "checkpoint-4")
    opt = out / "checkpoint-4" / "optimizer.pt"
    opt.write_bytes(opt.read_bytes()[:1000])
    assert last_complete_checkpoint(out, required=("centroids.pt",)).endswith("checkpoint-2")
    assert "optimizer.pt is truncated" in capsys.readouterr().err


# --------------------------------------------------------------------------------------- shared results folder

def _claimer(root: str, key: str, suites: list[str], barrier) -> None:
    store = ResultStore(root)
    barrier.wait()
    for suite in suites:
        store.claim(key, suite)
        store.save(f"{suite}-own", {**RECORD, "suite": suite})


def test_two_processes_keep_every_claim_and_every_record(tmp_path):
    store = ResultStore(tmp_path)
    store.save("k", RECORD)
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(2)
    groups = [[f"a{i}" for i in range(30)], [f"b{i}" for i in range(30)]]
    procs = [ctx.Process(target=_claimer, args=(str(tmp_path), "k", g, barrier)) for g in groups]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    record = store.load("k")
    assert sorted(record["also_suites"]) == sorted(groups[0] + groups[1])  # 60 of 60 claims kept
    assert len(list(store.runs.glob("*-own.json"))) == 60


def _executor(root: str, glue: str, model: str, barrier, out) -> None:
    cfg = RunConfig(task="sst2", method="ce", model=model, max_train_samples=16, epochs=1, batch_size=8)
    barrier.wait()
    record = execute(cfg, ResultStore(root), glue_dir=glue, progress=False)
    out.put(record["provenance"]["started"])


def test_two_identical_commands_train_one_run_once(tmp_path, glue, tiny_model_dir):
    ctx = mp.get_context("spawn")
    barrier, out = ctx.Barrier(2), ctx.Queue()
    procs = [ctx.Process(target=_executor, args=(str(tmp_path / "r"), str(glue), str(tiny_model_dir), barrier, out))
             for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(300)
        assert p.exitcode == 0
    started = {out.get(timeout=5), out.get(timeout=5)}
    assert len(started) == 1  # the second process waited and returned the first one's record
    assert len(list((tmp_path / "r" / "runs").glob("*.json"))) == 1


# -------------------------------------------------------------------------------------------------- records

@pytest.mark.parametrize("change, expected", [
    (lambda r: r["params"].update(seed="0"), "params.seed"),
    (lambda r: r.update(params=None), "params:"),
    (lambda r: r.update(metrics="abc"), "metrics:"),
    (lambda r: r["metrics"].pop("feature_cmi"), "metrics.feature_cmi: missing"),
    (lambda r: r.update(checks="oops"), "checks:"),
])
def test_malformed_record_is_named_not_dropped(tmp_path, change, expected):
    record = json.loads(json.dumps(RECORD))
    change(record)
    store = ResultStore(tmp_path)
    store.save("bad", record)
    with pytest.raises(CorruptResultError, match=expected) as info:
        store.load("bad")
    assert "bad.json" in str(info.value)
    with pytest.raises(CorruptResultError):
        store.select({}, "s")  # the report of its suite stops on it instead of leaving the run out


def test_damage_in_another_suites_record_does_not_block_a_report(tmp_path):
    store = ResultStore(tmp_path)
    store.save("other", {**RECORD, "suite": "other", "metrics": "abc"})
    assert store.select({}, "s") == ([], 1)


# ------------------------------------------------------------------------------------------------ one key

def test_one_run_has_one_key_across_entry_points():
    import numpy as np

    from cmi_toolkit.cli.common import _parser
    from cmi_toolkit.cli.training import StoreArgs
    from cmi_toolkit.course import lab

    assert RunConfig(epochs=3).key == RunConfig(epochs=3.0).key
    assert RunConfig(seed=np.int64(1), epochs=np.float32(3)).key == RunConfig(seed=1, epochs=3).key
    assert RunConfig(kd_temperature=4, method="kd_ce").key == RunConfig(kd_temperature=4.0, method="kd_ce").key
    cli_cfg, _ = _parser((RunConfig, StoreArgs)).parse_args_into_dataclasses(
        ["--method", "ce", "--epochs", "3", "--max_train_samples", "2000"])
    assert cli_cfg.epochs == 3.0 and isinstance(cli_cfg.epochs, float)
    lab_cfg = lab.lab_config(0.0)
    assert lab_cfg.epochs == 3 and isinstance(lab_cfg.epochs, int)
    assert {k: v for k, v in cli_cfg.params().items()} == lab_cfg.params() and cli_cfg.key == lab_cfg.key
    from cmi_toolkit.runs.suites import arm_runs, load_suite

    (_, suite_cfg, _), = arm_runs(load_suite("cpu5"), ["sst2"], [0], ["ce"])  # epochs: 3 in its YAML
    assert suite_cfg.key == lab_cfg.key


def test_a_record_filed_under_its_old_key_is_recognised_not_retrained(tmp_path, glue, tiny_model_dir, monkeypatch):
    import cmi_toolkit.runs.execute as ex

    cfg = RunConfig(task="sst2", method="ce", model=str(tiny_model_dir), max_train_samples=16, epochs=1.0, batch_size=8)
    fingerprint = cfg.data_fingerprint(str(glue))
    old = legacy_run_key({**cfg.params(), "data": fingerprint["digest"]})
    assert old != cfg.store_key(fingerprint=fingerprint)  # "1.0" was hashed as spelled
    store = ResultStore(tmp_path)
    store.save(old, {**RECORD, "key": old, "params": cfg.params(), "data": fingerprint, "suite": None})
    monkeypatch.setattr(ex, "_execute_locked", lambda *a, **k: pytest.fail("trained a run that is recorded"))
    record = execute(cfg, store, glue_dir=str(glue), suite="s2")
    assert record["key"] == old and store.load(old)["also_suites"] == ["s2"]
    assert len(list(store.runs.glob("*.json"))) == 1


# --------------------------------------------------------------------------------------- data read vs keyed

def test_a_data_file_changed_after_keying_fails_the_run_by_name(tmp_path, glue, tokenizer):
    from cmi_toolkit.data.loading import DataChangedError

    cfg = RunConfig(task="sst2", method="ce", max_train_samples=16)
    fingerprint = cfg.data_fingerprint(str(glue))
    dev = Path(glue) / "SST-2" / "dev.tsv"
    dev.write_text(dev.read_text().replace("\t1\n", "\t0\n", 1))
    with pytest.raises(DataChangedError, match="dev.tsv: the file changed"):
        prepare_data(cfg, tokenizer, str(glue), fingerprint=fingerprint)
    prepare_data(cfg, tokenizer, str(glue), fingerprint=cfg.data_fingerprint(str(glue)))  # keyed anew: fine


def test_glue_rows_split_on_newlines_only(tmp_path):
    from cmi_toolkit.data.loading import GlueFormatError, read_glue_split

    path = tmp_path / "train.tsv"
    path.write_text("sentence\tlabel\na line\u2028with a separator and a \x0c form feed\t1\r\nplain\t0\n",
                    encoding="utf-8")
    ds = read_glue_split("sst2", path)
    assert len(ds) == 2 and "\u2028" in ds[0]["sentence"] and ds[1]["sentence"] == "plain"
    path.write_text("x" * 1_000_000)
    with pytest.raises(GlueFormatError, match="one line .* and no data rows"):
        read_glue_split("sst2", path)


# ------------------------------------------------------------------------------------------------ CoT rows

def test_adversarial_cot_row_parses_in_linear_time():
    from cmi_toolkit.cot import teacher_answer

    row = "The answer is (" * 70_000  # ~1 MB, never closed
    start = time.perf_counter()
    assert teacher_answer("svamp", row) == ""
    assert time.perf_counter() - start < 1.0
    assert teacher_answer("svamp", "So the answer is (10 * 45).") == "10 * 45"


def test_cot_row_of_the_wrong_type_is_one_named_line(tmp_path):
    from cmi_toolkit.cot.data import CoTFormatError, CQARow, _check_row

    with pytest.raises(CoTFormatError, match="example 3: question: input should be a valid string"):
        _check_row(CQARow, {"question": 7, "answer": "a", "choices": list("abcde")}, "cqa_train.json, example 3")


# ------------------------------------------------------------------------------------------- options, folders

@pytest.mark.parametrize("extra, expected", [
    (["--seed", "1.5"], "--seed: invalid int value: '1.5'"),
    (["--seed", "-1"], "--seed must be an integer in [0, 2**32 - 1], got -1"),
    (["--data_seed", "4294967296"], "--data_seed must be an integer in [0, 2**32 - 1]"),
    (["--cmi_weight", "abc"], "invalid float value: 'abc'"),
    (["--learning_rate", "-1e-5"], "--learning_rate must be a finite number > 0, got -1e-05"),
    (["--method", "ce", "--cmi_weight", "5"], "--cmi_weight has no effect with --method ce"),
    (["--warmup_ratio", "1.0"], "--warmup_ratio is the share of the steps"),
    (["--max_length", "100000"], "max_length 100000 exceeds the 512 positions"),
])
def test_option_mistakes_are_one_line(capsys, tmp_path, glue, extra, expected):
    argv = ["train", "--glue_dir", str(glue), "--results_dir", str(tmp_path / "r"), "--max_train_samples", "8", *extra]
    assert expected in _one_line_error(capsys, argv)


@pytest.mark.parametrize("folder", ["/", ""])
def test_results_folder_at_root_or_empty_is_refused(capsys, folder):
    assert "--results_dir" in _one_line_error(capsys, ["train", "--results_dir", folder])


def test_warmup_ratio_is_a_ratio(tmp_path, glue, tiny_model_dir, tokenizer):
    cfg = RunConfig(task="sst2", method="ce", model=str(tiny_model_dir), max_train_samples=16, epochs=1,
                    batch_size=8, warmup_ratio=0.5)
    _, train, _ = prepare_data(cfg, tokenizer, str(glue))
    _, trainer = train_model(cfg, train, tokenizer, tmp_path / "o", progress=False, save_checkpoints=False)
    assert trainer.args.get_warmup_steps(40) == 20  # half of the steps, not 0.5 of a step or 5 steps


def test_full_disk_is_caught_before_training(tmp_path, monkeypatch):
    import os

    from cmi_toolkit.runs.store import StoreError

    real = os.fdopen

    class Full:
        def __init__(self, fd, *a, **k):
            self.fh = real(fd, *a, **k)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.fh.close()

        def write(self, data):
            raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fdopen", Full)
    with pytest.raises(StoreError, match="No space left on device"):
        ResultStore(tmp_path).check_writable()


# --------------------------------------------------------------------------------------------- suite files

@pytest.mark.parametrize("text, expected", [
    ("seeds: [0]\nseeds: [1]\ntasks: {sst2: {}}\ncommon: {}\n", "key 'seeds' appears twice"),
    ("seeds: [0]\ntasks: {sst2: {}}\ncommon: {}\nsede: 1\n", "sede: unknown key"),
    ("seeds: [0]\ntasks: {sst2: {}}\ncommon: {epochs: one}\n", "common.epochs: expected a number, got 'one'"),
    ("seeds: 0\ntasks: {sst2: {}}\ncommon: {}\n", "seeds: input should be a valid list"),
    ("seeds: [0]\ntasks: [sst2]\ncommon: {}\n", "tasks: input should be a valid dictionary"),
    ("seeds: &a [0, *a]\ntasks: {sst2: {}}\ncommon: {}\n", "seeds"),
    # a value out of its range is named by file and key, never as a command-line option
    ("seeds: [0]\ntasks: {sst2: {}}\ncommon: {epochs: -1}\n", "common.epochs: must be a finite number > 0, got -1"),
    ("seeds: [0]\ntasks: {sst2: {warmup_ratio: 2.0}}\ncommon: {}\n", "tasks.sst2.warmup_ratio: is the share"),
    ("seeds: [0]\ntasks: {sst2: {}}\ncommon: {cmi_weight: -1}\n", "common.cmi_weight: must be a finite number >= 0"),
])
def test_malformed_suite_file_is_one_named_line(capsys, tmp_path, text, expected):
    path = tmp_path / "suite.yaml"
    path.write_text("suite: x\n" + text)
    line = _one_line_error(capsys, ["reproduce", "--suite", str(path), "--results_dir", str(tmp_path / "r")])
    assert str(path) in line and expected in line


# ------------------------------------------------------------------------------------------ notebook inputs

def test_notebook_parameters_are_checked():
    from cmi_toolkit.course import lab
    from cmi_toolkit.course.notebook import P, ParameterError, check_parameters

    ns = {"smoke": "False", "seed": "3", "cmi_weight": 0.1, "lambdas": [0, 0.1]}
    check_parameters(ns, smoke=P(bool), seed=P(int, low=0), cmi_weight=P(float, low=0), lambdas=P(list, low=0))
    assert ns["smoke"] is False and ns["seed"] == 3  # papermill -r passes text: "False" is False, not True
    for bad in ({"smoke": "notabool"}, {"cmi_weight": -5}, {"cmi_weight": float("nan")}, {"lambdas": [0, -1]}):
        with pytest.raises(ParameterError, match=next(iter(bad))):
            check_parameters({**ns, **bad}, **{k: {"smoke": P(bool), "lambdas": P(list, low=0)}.get(k, P(float, low=0))
                                               for k in bad})
    rule = P(dict, choices=("epochs", "batch_size"))  # a dict of settings: its keys are checked by name
    assert rule.check("demo", {"epochs": 1}) == {"epochs": 1}
    with pytest.raises(ParameterError, match=r"demo has 'epoch', but it needs a dict of settings \(keys among 'epochs'"):
        rule.check("demo", {"epoch": 1})
    with pytest.raises(ParameterError, match="demo = 3, but it needs a dict"):
        rule.check("demo", 3)
    for lam in (-5, float("nan"), float("-inf")):
        with pytest.raises(ValueError, match="CMI weight must be a finite number >= 0"):
            lab.lab_config(lam)


def test_a_notebook_run_with_a_bad_parameter_stops_with_one_line(tmp_path):
    import papermill as pm

    from cmi_toolkit.runs.suites import NOTEBOOK_DIR

    with pytest.raises(pm.PapermillExecutionError) as info:
        pm.execute_notebook(str(NOTEBOOK_DIR / "06_reproduce_glue.ipynb"), str(tmp_path / "out.ipynb"),
                            parameters={"smoke": "notabool", "output_dir": str(tmp_path / "o")},
                            cwd=str(NOTEBOOK_DIR), progress_bar=False, kernel_name="python3")
    assert info.value.ename == "ParameterError" and "smoke = 'notabool'" in info.value.evalue
    out = json.loads((tmp_path / "out.ipynb").read_text())
    shown = [o for c in out["cells"] for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert shown and shown[0]["traceback"] == [f"ParameterError: {info.value.evalue}"]


@pytest.mark.parametrize("command", ["evaluate", "predict"])
def test_max_length_beyond_the_models_positions_is_one_line(capsys, tmp_path, tiny_model_dir, command):
    data = tmp_path / "rows.tsv"
    data.write_text("sentence\tlabel\nhello there\t1\n")
    extra = ["--output", str(tmp_path / "p.tsv")] if command == "predict" else []
    line = _one_line_error(capsys, [command, "--model", str(tiny_model_dir), "--task", "sst2", "--data", str(data),
                                    "--max_length", "4096", *extra])
    assert "--max_length 4096 exceeds the 128 positions" in line and "pass --max_length 128 or less" in line


@pytest.mark.parametrize("text,expected", [
    ("lambda: [0.1]\n", "unknown key 'lambda'"),
    ("cmi_weight: 0.1\n", "cmi_weight must be a non-empty list of values, got 0.1"),
    ("cmi_weight: []\n", "cmi_weight must be a non-empty list of values, got []"),
    ("[1, 2]\n", "a grid is a YAML mapping"),
])
def test_a_bad_search_grid_is_one_line_before_optuna_starts(capsys, tmp_path, text, expected):
    grid = tmp_path / "grid.yaml"
    grid.write_text(text)
    line = _one_line_error(capsys, ["search", "--task", "sst2", "--grid", str(grid), "--results_dir", str(tmp_path / "r")])
    assert str(grid) in line and expected in line


@pytest.mark.parametrize("value", [1.5, -3.0, float("nan")])
def test_an_impossible_metric_is_refused_where_a_record_is_read(tmp_path, value):
    store = ResultStore(tmp_path)
    store.save("k", {**RECORD, "metrics": {**RECORD["metrics"], "accuracy": value}})
    with pytest.raises(CorruptResultError, match=r"k.json: metrics.accuracy: .* is outside its range \[0, 1\]"):
        store.load("k")


def test_a_deleted_or_edited_record_never_leaves_a_complete_looking_table(tmp_path):
    """The committed cpu5 suite copied: one record deleted shows as 'no record' (table and plan line); one whose
    parameters were edited is named, not silently ignored."""
    from cmi_toolkit.evidence.report import report
    from cmi_toolkit.runs.store import run_key
    from cmi_toolkit.runs.suites import load_suite, suite_records

    from .conftest import REPO

    spec = load_suite("cpu5")
    shutil.copytree(REPO / "results" / "runs", tmp_path / "runs")
    store = ResultStore(tmp_path)
    records, _ = suite_records(store, spec)
    victim = next(r for r in records if r["params"]["task"] == "sst2" and r["params"]["method"] == "cmi"
                  and r["params"]["seed"] == 2)
    def files_of(record):  # a run may be filed twice (its suite's copy and another suite's)
        return [p for p in (tmp_path / "runs").glob("*.json") if json.loads(p.read_text())["params"] == record["params"]]

    for path in files_of(victim):
        path.unlink()
    paths = report(store, spec, out_dir=tmp_path / "out")
    text = paths["md"].read_text()
    assert "seed 2: no record" in text and "**Planned runs with no record** (1)" in text
    edited = next(r for r in records if r["params"]["task"] == "sst2" and r["params"]["method"] == "ce"
                  and r["params"]["seed"] == 1)
    path = next(p for p in files_of(edited) if "cpu5" in (json.loads(p.read_text()).get("suite"),
                                                          *json.loads(p.read_text()).get("also_suites", [])))
    path.write_text(json.dumps({**edited, "params": {**edited["params"], "epochs": 7}}))
    if path.stem != run_key(edited["params"]):  # filed under its pre-canonical key: move it where a new record goes
        path = path.rename(path.with_name(f"{run_key(edited['params'])}.json"))
    with pytest.raises(CorruptResultError, match="its parameters give key .* the record was edited"):
        report(store, spec, out_dir=tmp_path / "out")


def test_float_rounding_around_a_bound_is_not_an_impossible_number(tmp_path):
    store = ResultStore(tmp_path)
    store.save("k", {**RECORD, "metrics": {**RECORD["metrics"], "output_cmi": -5.551115123125783e-17}})
    assert store.load("k")["metrics"]["output_cmi"] < 0


def test_listing_a_folder_that_is_no_store_is_one_line_not_an_empty_list(capsys, tmp_path):
    line = _one_line_error(capsys, ["runs", "--results_dir", str(tmp_path / "typo")])
    assert "typo/runs: no result store here" in line
