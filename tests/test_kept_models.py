"""A trained model is a first-class output: keep it, score it on any labelled file, find its run by what it is."""

from __future__ import annotations

import json

import pytest

from cmi_toolkit.cli import main
from cmi_toolkit.cli import training as cli_training

from .test_cli_errors import _one_line_error
from .test_training import _easy_sst2


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_model_dir):
    """CE and CMI trained with the CLI on a learnable SST-2 fixture, both models kept (the README's workflow)."""
    root = tmp_path_factory.mktemp("kept")
    glue = _easy_sst2(root / "glue", n=32)
    store = root / "r"
    keys = {}
    for method in ("ce", "cmi"):
        argv = ["train", "--model", str(tiny_model_dir), "--glue_dir", str(glue), "--results_dir", str(store),
                "--method", method, "--max_train_samples", "all", "--epochs", "2", "--batch_size", "8",
                "--learning_rate", "3e-3", "--warmup_ratio", "0", "--keep_model"]
        if method == "cmi":
            argv += ["--cmi_weight", "0.05", "--temperature", "0.5"]
        assert main(argv) == 0
        (path,) = [p for p in (store / "runs").glob("*.json") if json.loads(p.read_text())["params"]["method"] == method]
        keys[method] = path.stem
    # the user's own labelled file: the dev rows as CSV with label names
    rows = (glue / "SST-2" / "dev.tsv").read_text().splitlines()[1:]
    csv = root / "mine.csv"
    csv.write_text("text,label\n" + "\n".join(f'"{r.split(chr(9))[0]}",{"positive" if r.endswith("1") else "negative"}'
                                               for r in rows) + "\n")
    return {"root": root, "glue": glue, "store": store, "keys": keys, "csv": csv}


def test_kept_models_score_a_file_as_their_records_say(trained, capsys):
    store, keys = trained["store"], trained["keys"]
    for key in keys.values():
        folder = store / "models" / key
        card = json.loads((folder / "card.json").read_text())
        assert card["key"] == key and card["kept_by"] == "request" and (folder / "tokenizer.json").is_file()
    out = trained["root"] / "eval.json"
    capsys.readouterr()
    assert main(["evaluate", "--model", f"{keys['cmi']},{keys['ce']}", "--data", str(trained["csv"]), "--task", "sst2",
                 "--text_columns", "text", "--results_dir", str(store), "--output", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "bootstrap interval over examples" in printed and "McNemar" in printed
    result = json.loads(out.read_text())
    for entry, method in zip(result["models"], ("cmi", "ce"), strict=True):
        record = json.loads((store / "runs" / f"{keys[method]}.json").read_text())
        for metric in ("accuracy", "feature_cmi", "output_cmi"):
            assert entry[metric] == record["metrics"][metric], (method, metric)  # the same dev rows, bit for bit
        assert entry["predictions"]["pred"] == record["predictions"]["pred"]
    assert result["comparison"]["metric"] == "accuracy"


def test_predict_writes_labels_and_probabilities(trained):
    rows = trained["root"] / "unlabelled.jsonl"
    rows.write_text('{"sentence": "the film was great indeed"}\n{"sentence": "the film was awful indeed"}\n')
    out = trained["root"] / "pred.tsv"
    assert main(["predict", "--model", trained["keys"]["ce"], "--data", str(rows), "--results_dir",
                 str(trained["store"]), "--output", str(out)]) == 0
    lines = out.read_text().splitlines()
    assert lines[0] == "idx\tprediction\tp_negative\tp_positive" and len(lines) == 3
    assert all(abs(sum(map(float, line.split("\t")[2:])) - 1) < 1e-5 for line in lines[1:])


@pytest.mark.parametrize("content, extra, expected", [
    ("text,label\nthe film was good,maybe\n", ["--text_columns", "text"], "line 2: unknown label 'maybe'"),
    ("words,label\nthe film was good,positive\n", [], "no text column(s) ['sentence']"),
    ("sentence,label\nthe film was good,entailment\n", [], "unknown label 'entailment'"),
    ("sentence\nthe film was good\n", [], "no label column 'label'"),
])
def test_a_file_that_does_not_fit_is_one_named_line(trained, capsys, tmp_path, content, extra, expected):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    line = _one_line_error(capsys, ["evaluate", "--model", trained["keys"]["ce"], "--data", str(path),
                                    "--results_dir", str(trained["store"]), *extra])
    assert str(path) in line and expected in line


def test_another_tasks_model_is_refused(trained, capsys):
    line = _one_line_error(capsys, ["evaluate", "--model", trained["keys"]["ce"], "--task", "mnli", "--data",
                                    str(trained["csv"]), "--results_dir", str(trained["store"])])
    assert "head has 2 labels, the task has 3" in line


def test_runs_finds_a_run_by_its_fields_and_prunes_nothing_requested(trained, capsys):
    capsys.readouterr()
    assert main(["runs", "--results_dir", str(trained["store"]), "--method", "cmi", "--cmi_weight", "0.05"]) == 0
    out = capsys.readouterr().out
    assert trained["keys"]["cmi"] in out and trained["keys"]["ce"] not in out and "kept" in out
    assert main(["runs", "--results_dir", str(trained["store"]), "--method", "cmi", "--keys"]) == 0
    assert capsys.readouterr().out.strip() == trained["keys"]["cmi"]
    assert main(["runs", "--results_dir", str(trained["store"]), "--method", "cmi", "--seed", "1"]) == 0
    assert "0 run(s)" in capsys.readouterr().out
    orphan = trained["store"] / "models" / "0123456789abcdef"
    orphan.mkdir()
    assert main(["runs", "--results_dir", str(trained["store"]), "--prune_models"]) == 0
    out = capsys.readouterr().out
    assert "1 kept model(s) removed" in out and not orphan.exists()
    assert all((trained["store"] / "models" / k).is_dir() for k in trained["keys"].values())  # kept on request


def test_preset_lab_gives_the_notebooks_key(monkeypatch, capsys):
    from cmi_toolkit.course import lab

    seen = {}

    def fake_execute(cfg, store, **kw):
        seen["cfg"] = cfg
        raise SystemExit(0)

    monkeypatch.setattr("cmi_toolkit.runs.execute.execute", fake_execute)
    with pytest.raises(SystemExit):
        cli_training._run_one(["--preset", "lab", "--method", "cmi"], ("ce", "cmi"))
    assert seen["cfg"].key == lab.lab_config(0.1).key
    assert "lab" in cli_training._preset_names() and "cpu_verdict" in cli_training._preset_names()


def test_a_missing_teacher_model_is_trained_again_and_used_only_when_identical(tmp_path, tiny_model_dir):
    """A fresh clone has the records but no models: a student's CE teacher is re-created, checked against its record."""
    import shutil

    from cmi_toolkit.runs.config import RunConfig
    from cmi_toolkit.runs.execute import execute
    from cmi_toolkit.runs.store import ResultStore

    glue = _easy_sst2(tmp_path / "glue", n=24)
    store = ResultStore(tmp_path / "r")
    common = dict(task="sst2", model=str(tiny_model_dir), max_train_samples=None, epochs=1, batch_size=8,
                  learning_rate=3e-3, warmup_ratio=0.0, student_layers="0")
    teacher = execute(RunConfig(**common, method="ce"), store, glue_dir=str(glue), progress=False)
    shutil.rmtree(store.root / "models")  # as in a fresh clone: models are never committed
    before = json.loads(store.path(teacher["key"]).read_text())
    student = execute(RunConfig(**common, method="kd_ce"), store, glue_dir=str(glue), progress=False)
    folder = store.root / "models" / teacher["key"]
    assert (folder / "config.json").is_file() and "re-created" in json.loads((folder / "card.json").read_text())["kept_by"]
    assert json.loads(store.path(teacher["key"]).read_text()) == before  # the record is left as it was
    assert student["params"]["method"] == "kd_ce" and not list((store.root / "checkpoints").glob(".recreate-*"))
    # another CPU's rounding: accuracy identical, a CMI off by 1e-6 of its value: used, and its card says so
    shutil.rmtree(folder)
    record = json.loads(store.path(teacher["key"]).read_text())
    record["metrics"]["feature_cmi"] *= 1 + 1e-6
    store.save(teacher["key"], record)
    store.path(student["key"]).unlink()
    execute(RunConfig(**common, method="kd_ce"), store, glue_dir=str(glue), progress=False)
    assert "feature_cmi within 1.0e-06" in json.loads((folder / "card.json").read_text())["kept_by"]
    # a re-trained model that scores otherwise than its record is not used: the student cannot run
    for metric, change in (("feature_cmi", 1e-2), ("accuracy", 0.5)):
        shutil.rmtree(folder, ignore_errors=True)
        record = json.loads(store.path(teacher["key"]).read_text())
        record["metrics"][metric] += change
        store.save(teacher["key"], record)
        store.path(student["key"]).unlink(missing_ok=True)
        with pytest.raises(FileNotFoundError, match="saved model of run"):
            execute(RunConfig(**common, method="kd_ce"), store, glue_dir=str(glue), progress=False)
        assert not folder.exists()


def test_re_creating_a_cmi_run_reuses_its_kept_ce_twin_instead_of_training_it_again(tmp_path, tiny_model_dir,
                                                                                    monkeypatch):
    import shutil

    from cmi_toolkit.runs import execute as experiments
    from cmi_toolkit.runs.config import RunConfig
    from cmi_toolkit.runs.execute import _kept_model, execute
    from cmi_toolkit.runs.store import ResultStore

    glue = str(_easy_sst2(tmp_path / "glue", n=24))
    store = ResultStore(tmp_path / "r")
    common = dict(task="sst2", model=str(tiny_model_dir), max_train_samples=None, epochs=1, batch_size=8)
    cmi = execute(RunConfig(**common, method="cmi"), store, glue_dir=glue, progress=False, keep_model=True)
    twin = store.root / "models" / RunConfig(**common, method="ce").store_key(glue)
    shutil.rmtree(store.root / "models" / cmi["key"])  # the CMI model is gone, its CE twin's is kept
    trained = []
    real = experiments.train_and_measure
    monkeypatch.setattr(experiments, "train_and_measure", lambda cfg, **kw: trained.append(cfg.method) or real(cfg, **kw))
    folder = _kept_model(RunConfig(**common, method="cmi"), store, glue, False, None)
    assert (folder / "config.json").is_file() and trained == ["cmi"]  # the twin was lent, not trained again
    assert (twin / "config.json").is_file()  # and it is still there after the scratch store went
    assert not list((store.root / "checkpoints").glob(".recreate-*"))


@pytest.mark.parametrize("recorded, bf16, here, blocked", [
    ({"cpu_capability": "AVX512", "cpu_bf16": True}, True, {"cpu_capability": "AVX2", "cpu_bf16": False}, "AVX512"),
    ({"cpu_capability": "AMX", "cpu_bf16": True}, True, {"cpu_capability": "AVX512", "cpu_bf16": True}, "AMX"),
    # fp32 on another instruction set: trained again, then checked to rounding (accuracy identical)
    ({"cpu_capability": "AVX512", "cpu_bf16": True}, False, {"cpu_capability": "AVX2", "cpu_bf16": False}, None),
    ({"cpu_capability": "AVX2", "cpu_bf16": False}, False, {"cpu_capability": "AVX2", "cpu_bf16": False}, None),
    ({}, True, {"cpu_capability": "AVX2", "cpu_bf16": False}, "emulated"),  # an older bf16 record: native bf16
    ({}, True, {"cpu_capability": "AVX512", "cpu_bf16": True}, None),
    ({}, False, {"cpu_capability": "AVX2", "cpu_bf16": False}, None),  # an older fp32 record: nothing to go on
    ({"cpu_capability": "AVX2", "cpu_bf16": False}, True, {"cpu_capability": "AVX2", "cpu_bf16": False}, None),
])
def test_a_record_from_another_kind_of_cpu_is_not_trained_again(monkeypatch, recorded, bf16, here, blocked):
    """bf16 on kernels of another instruction set, or emulated bf16, cannot follow a record's training path."""
    import cmi_toolkit.runs.provenance as prov

    monkeypatch.setattr(prov, "cpu_features", lambda: here)
    why = prov.recreation_blocker({"provenance": {"device": "cpu", **recorded}}, bf16)
    assert (why is None) if blocked is None else (blocked in why)


def test_a_blocked_re_creation_trains_nothing_and_the_student_is_told_why(tmp_path, tiny_model_dir, monkeypatch, capsys):
    import shutil

    import cmi_toolkit.runs.execute as experiments
    import cmi_toolkit.runs.provenance as prov
    from cmi_toolkit.runs.config import RunConfig
    from cmi_toolkit.runs.execute import execute
    from cmi_toolkit.runs.store import ResultStore

    glue = _easy_sst2(tmp_path / "glue", n=24)
    store = ResultStore(tmp_path / "r")
    common = dict(task="sst2", model=str(tiny_model_dir), max_train_samples=None, epochs=1, batch_size=8,
                  learning_rate=3e-3, warmup_ratio=0.0, student_layers="0", bf16=True)
    teacher = execute(RunConfig(**common, method="ce"), store, glue_dir=str(glue), progress=False)
    assert teacher["provenance"]["cpu_capability"] == prov.cpu_features()["cpu_capability"]
    shutil.rmtree(store.root / "models")
    record = json.loads(store.path(teacher["key"]).read_text())
    record["provenance"]["cpu_capability"] = "AVX512_SOMEWHERE_ELSE"
    store.save(teacher["key"], record)
    trained = []
    original = experiments.train_and_measure
    monkeypatch.setattr(experiments, "train_and_measure", lambda cfg, **kw: trained.append(cfg.method) or original(cfg, **kw))
    with pytest.raises(FileNotFoundError, match="saved model of run"):
        execute(RunConfig(**common, method="kd_ce"), store, glue_dir=str(glue), progress=False)
    assert trained == []  # neither the teacher again nor the student
    assert "AVX512_SOMEWHERE_ELSE" in capsys.readouterr().err
