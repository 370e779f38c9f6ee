import json
import os
import subprocess
import sys

import pytest
import torch
from transformers import TrainerCallback

from cmi_toolkit.files import atomic_write_text
from cmi_toolkit.runs.config import RunConfig
from cmi_toolkit.runs.execute import execute, prepare_data, train_model
from cmi_toolkit.runs.store import CorruptResultError, ResultStore, run_key

from .conftest import REPO
from .glue_fixtures import write_task


def _easy_sst2(root, n=48):
    """SST-2 layout where the label is spelled out by one word: learnable in a few steps."""
    folder = root / "SST-2"
    folder.mkdir(parents=True, exist_ok=True)
    words = {0: ["awful", "bad", "boring"], 1: ["great", "good", "lovely"]}
    for name, count in (("train.tsv", n), ("dev.tsv", 16)):
        lines = ["sentence\tlabel"] + [f"the film was {words[i % 2][i % 3]} indeed\t{i % 2}" for i in range(count)]
        (folder / name).write_text("\n".join(lines) + "\n")
    return root


def _cfg(model_dir, **kw):
    base = dict(task="sst2", model=str(model_dir), max_train_samples=None, epochs=2, batch_size=8,
                learning_rate=3e-3, warmup_ratio=0.0, cmi_weight=0.05, temperature=0.5, student_layers="0,2")
    return RunConfig(**{**base, **kw})


class Recorder(TrainerCallback):
    def __init__(self):
        self.logs = []

    def on_log(self, args, state, control, logs=None, **kw):
        self.logs.append(dict(logs or {}))


@pytest.mark.parametrize("mode", ["fixed", "epoch", "ema"])
def test_cmi_trainer_learns_and_logs_terms(tmp_path, tiny_model_dir, tokenizer, mode):
    glue = _easy_sst2(tmp_path / "glue")
    cfg = _cfg(tiny_model_dir, method="cmi", centroid_mode=mode, epochs=8)
    task, train, dev = prepare_data(cfg, tokenizer, str(glue))
    rec = Recorder()
    model, trainer = train_model(cfg, train, tokenizer, tmp_path / "out", progress=False, callbacks=[rec],
                                 save_checkpoints=False, logging_steps=2)
    losses = [entry for entry in rec.logs if "loss" in entry]
    assert losses and {"ce", "cmi"} <= set(losses[0])
    assert losses[-1]["ce"] < losses[0]["ce"]
    est = trainer.centroids
    assert est.passes == {"fixed": 1, "epoch": 8, "ema": 1}[mode]
    assert torch.allclose(est.centroids.sum(-1), torch.ones(2), atol=1e-4)
    if mode == "ema":
        assert int(est.seen.sum()) > len(train)  # streaming updates after the starting pass
    from cmi_toolkit.method.measure import measure

    assert measure(model, dev, tokenizer, task="sst2", progress=False).accuracy == 1.0


def test_ce_trainer_has_no_centroid_work(tmp_path, tiny_model_dir, tokenizer):
    glue = _easy_sst2(tmp_path / "glue")
    cfg = _cfg(tiny_model_dir, method="ce")
    _, train, _ = prepare_data(cfg, tokenizer, str(glue))
    _, trainer = train_model(cfg, train, tokenizer, tmp_path / "out", progress=False, save_checkpoints=False)
    assert not trainer.active and trainer.centroids.passes == 0


def test_execute_records_skips_and_distils(tmp_path, tiny_model_dir, monkeypatch):
    glue = _easy_sst2(tmp_path / "glue")
    store = ResultStore(tmp_path / "results")
    rec = execute(_cfg(tiny_model_dir, method="kd_mcmi"), store, glue_dir=str(glue), progress=False)
    teacher_key = _cfg(tiny_model_dir, method="mcmi").store_key(str(glue))
    assert store.load(teacher_key) is not None and (store.root / "models" / teacher_key / "config.json").is_file()
    assert rec["params"]["method"] == "kd_mcmi" and rec["num_parameters"] < store.load(teacher_key)["num_parameters"]
    assert set(rec["metrics"]) >= {"accuracy", "feature_cmi", "output_ncmi"} and rec["provenance"]["package_version"]
    assert not (store.root / "checkpoints" / rec["key"]).exists()

    import cmi_toolkit.runs.execute as ex

    monkeypatch.setattr(ex, "train_model", lambda *a, **k: pytest.fail("a finished run was retrained"))
    assert execute(_cfg(tiny_model_dir, method="kd_mcmi"), store, glue_dir=str(glue)) == rec


def test_interrupted_run_resumes_from_checkpoint(tmp_path, tiny_model_dir, tokenizer):
    glue = _easy_sst2(tmp_path / "glue", n=32)
    cfg = _cfg(tiny_model_dir, method="cmi", centroid_mode="fixed", epochs=2)
    _, train, _ = prepare_data(cfg, tokenizer, str(glue))

    class Crash(TrainerCallback):
        def on_epoch_begin(self, args, state, control, **kw):
            if state.epoch and state.epoch >= 1:
                raise KeyboardInterrupt

    out = tmp_path / "ckpt"
    with pytest.raises(KeyboardInterrupt):
        train_model(cfg, train, tokenizer, out, progress=False, callbacks=[Crash()])
    saved = list(out.glob("checkpoint-*"))
    assert len(saved) == 1 and (saved[0] / "centroids.pt").is_file()
    first_centroids = torch.load(saved[0] / "centroids.pt")["centroids"]
    rec = Recorder()
    _, trainer = train_model(cfg, train, tokenizer, out, progress=False, callbacks=[rec])
    assert trainer.state.global_step == 8  # 32 rows / 8 per batch * 2 epochs, counted across the restart
    assert min(e.get("epoch", 9) for e in rec.logs) > 1.0  # the resumed run logged only the second epoch
    assert torch.equal(trainer.centroids.centroids.cpu(), first_centroids)  # fixed centroids restored, not recomputed


def test_result_store_atomic_and_corrupt(tmp_path):
    store = ResultStore(tmp_path)
    key = run_key({"a": 1, "b": [1, 2]})
    assert key == run_key({"b": [1, 2], "a": 1}) and key != run_key({"a": 2, "b": [1, 2]})
    record = {"params": {"task": "sst2", "method": "ce", "seed": 0},
              "metrics": {"accuracy": 0.5, "feature_cmi": 0.1, "output_cmi": 0.2}}
    store.save(key, record)
    assert store.load(key)["metrics"]["accuracy"] == 0.5
    assert not list(tmp_path.rglob("*.tmp"))
    store.path("bad").write_text('{"params": {"a": 1}, "metr')
    with pytest.raises(CorruptResultError, match="left untouched"):
        store.load("bad")
    assert store.path("bad").read_text().endswith("metr")
    with pytest.raises(CorruptResultError):
        store.all_records()

    target = tmp_path / "x.json"
    atomic_write_text(target, "old")
    with pytest.raises(TypeError):
        atomic_write_text(target, 123)  # nothing half-written replaces the old file
    assert target.read_text() == "old"


@pytest.mark.distributed
def test_two_process_ddp_training_agrees(tmp_path, tiny_model_dir):
    glue = _easy_sst2(tmp_path / "glue", n=32)
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    from .test_fpdc import _free_port

    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(_free_port()),
           str(REPO / "tests" / "ddp_train_worker.py"), str(tiny_model_dir), str(glue), str(tmp_path / "out")]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r0 = json.loads((tmp_path / "out" / "rank0.json").read_text())
    r1 = json.loads((tmp_path / "out" / "rank1.json").read_text())
    assert r0["world_size"] == r1["world_size"] == 2
    assert r0["centroids"] == r1["centroids"] and r0["weights"] == r1["weights"]
    assert r0["global_step"] == 2 * 2  # 32 rows, 8 per device, 2 devices: 2 steps an epoch, 2 epochs


def test_fixture_tasks_train_end_to_end(tmp_path, tiny_model_dir):
    """Every classification layout goes through a CMI run (MNLI's 3 classes, RTE string labels)."""
    for task in ("rte", "mnli"):
        write_task(tmp_path / "glue", task, n=12)
        rec = execute(_cfg(tiny_model_dir, task=task, method="cmi", epochs=1), ResultStore(tmp_path / "r"),
                      glue_dir=str(tmp_path / "glue"), progress=False)
        assert len(rec["metrics"]["feature_per_class_cmi"]) == (3 if task == "mnli" else 2)


def test_regression_task_is_refused_clearly():
    with pytest.raises(ValueError, match="regression"):
        RunConfig(task="stsb")


@pytest.mark.distributed
def test_cli_train_under_torchrun_writes_one_record(tmp_path, tiny_model_dir):
    from .test_fpdc import _free_port

    write_task(tmp_path / "glue", "rte", n=32)
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(_free_port()),
           "-m", "cmi_toolkit.cli", "train", "--task", "rte", "--method", "cmi", "--model", str(tiny_model_dir),
           "--glue_dir", str(tmp_path / "glue"), "--results_dir", str(tmp_path / "res"), "--epochs", "1",
           "--batch_size", "4", "--max_train_samples", "32"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    records = [json.loads(p.read_text()) for p in (tmp_path / "res" / "runs").glob("*.json")]
    assert sorted(r["params"]["method"] for r in records) == ["ce", "cmi"]  # the run and its CE twin, once each
    assert proc.stdout.count('"key"') == 1
    cmi = next(r for r in records if r["params"]["method"] == "cmi")
    assert cmi["train_steps"] == 4  # 32 rows / (4 per process * 2 processes)
    assert cmi["checks"]["mechanism"]["passed"] in (True, False)
