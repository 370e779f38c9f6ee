"""Atomic checkpoints and resumption that really continues where it stopped."""

import json
import os

import pytest
import torch
from transformers import Trainer, TrainerCallback

from cmi_toolkit.method.trainers import checkpoint_problem, last_complete_checkpoint
from cmi_toolkit.runs.execute import prepare_data, train_model

from .test_training import Recorder, _cfg, _easy_sst2


class StopAt(TrainerCallback):
    """Interrupts training (as Ctrl-C would) when the global step reaches ``step``."""

    def __init__(self, step):
        self.step = step

    def on_step_end(self, args, state, control, **kw):
        if state.global_step == self.step:
            raise KeyboardInterrupt


def _weights(model):
    return torch.cat([p.detach().flatten().cpu() for p in model.parameters()])


@pytest.mark.parametrize("mode", ["ema", "epoch"])
def test_resume_continues_from_the_interrupted_step(tmp_path, tiny_model_dir, tokenizer, mode):
    """Interrupt at step 5 (checkpoint at step 4), resume: it starts at step 4 and ends where an
    uninterrupted run ends (weights and centroids within tolerance)."""
    glue = _easy_sst2(tmp_path / "glue", n=32)
    cfg = _cfg(tiny_model_dir, method="cmi", centroid_mode=mode, epochs=3)  # 4 steps an epoch, 12 in all
    _, train, _ = prepare_data(cfg, tokenizer, str(glue))
    straight, t_straight = train_model(cfg, train, tokenizer, tmp_path / "straight", progress=False, save_steps=4,
                                       logging_steps=1)
    out = tmp_path / "interrupted"
    with pytest.raises(KeyboardInterrupt):
        train_model(cfg, train, tokenizer, out, progress=False, save_steps=4, callbacks=[StopAt(6)], logging_steps=1)
    assert last_complete_checkpoint(out).endswith("checkpoint-4")
    rec = Recorder()
    resumed, t_resumed = train_model(cfg, train, tokenizer, out, progress=False, save_steps=4, callbacks=[rec],
                                     logging_steps=1)
    assert t_resumed.resumed_from_step == 4
    steps = [e["step"] for e in t_resumed.state.log_history if "loss" in e]
    assert min(e.get("epoch", 99) for e in rec.logs) > 1.0 and steps[-1] == 12
    assert t_resumed.state.global_step == t_straight.state.global_step == 12
    assert torch.allclose(_weights(resumed), _weights(straight), atol=1e-4)
    assert torch.allclose(t_resumed.centroids.centroids, t_straight.centroids.centroids, atol=1e-4)
    if mode == "epoch":
        assert t_resumed.centroids.passes == t_straight.centroids.passes == 3  # no extra pass on resumption


def test_interrupted_save_leaves_no_partial_checkpoint(tmp_path, tiny_model_dir, tokenizer, monkeypatch):
    """A kill while a checkpoint is written (after the weights, before the optimiser) leaves no checkpoint-N."""
    glue = _easy_sst2(tmp_path / "glue", n=16)
    cfg = _cfg(tiny_model_dir, method="cmi", epochs=2)
    _, train, _ = prepare_data(cfg, tokenizer, str(glue))
    original = Trainer._save_optimizer_and_scheduler

    def killed(self, output_dir):
        raise KeyboardInterrupt  # SIGTERM's effect: the process stops in the middle of the save

    monkeypatch.setattr(Trainer, "_save_optimizer_and_scheduler", killed)
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        train_model(cfg, train, tokenizer, out, progress=False)
    assert not list(out.glob("checkpoint-*"))  # only the staging folder saw the partial write
    monkeypatch.setattr(Trainer, "_save_optimizer_and_scheduler", original)
    _, trainer = train_model(cfg, train, tokenizer, out, progress=False)  # a rerun starts cleanly
    assert trainer.resumed_from_step is None and trainer.state.global_step == 4
    assert [p.name for p in out.glob("checkpoint-*")] == ["checkpoint-4"]
    assert checkpoint_problem(out / "checkpoint-4") is None and (out / "checkpoint-4" / "centroids.pt").is_file()


def test_incomplete_and_truncated_checkpoints_are_skipped(tmp_path, tiny_model_dir, tokenizer, capsys):
    glue = _easy_sst2(tmp_path / "glue", n=16)
    cfg = _cfg(tiny_model_dir, method="cmi", epochs=2)
    _, train, _ = prepare_data(cfg, tokenizer, str(glue))
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        train_model(cfg, train, tokenizer, out, progress=False, callbacks=[StopAt(3)])
    assert last_complete_checkpoint(out).endswith("checkpoint-2")
    # older code left checkpoint folders holding only config.json; a copy can truncate the weights
    (out / "checkpoint-9").mkdir()
    (out / "checkpoint-9" / "config.json").write_text("{}")
    import shutil

    shutil.copytree(out / "checkpoint-2", out / "checkpoint-7")
    weights = out / "checkpoint-7" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    # a whole archive (manifest sizes updated) whose optimiser state only a full unpickle would build: code
    shutil.copytree(out / "checkpoint-2", out / "checkpoint-8")
    torch.save({"state": _RunsCode(str(tmp_path / "ran"))}, out / "checkpoint-8" / "optimizer.pt")
    manifest = json.loads((out / "checkpoint-8" / "manifest.json").read_text())
    manifest["files"]["optimizer.pt"] = (out / "checkpoint-8" / "optimizer.pt").stat().st_size
    (out / "checkpoint-8" / "manifest.json").write_text(json.dumps(manifest))
    capsys.readouterr()
    _, trainer = train_model(cfg, train, tokenizer, out, progress=False)
    err = capsys.readouterr().err
    assert "skipping incomplete checkpoint" in err and "checkpoint-9" in err and "truncated" in err
    assert "checkpoint-8 (optimizer.pt does not load as weights only" in err
    assert not (tmp_path / "ran").exists()
    assert trainer.resumed_from_step == 2 and trainer.state.global_step == 4


class _RunsCode:
    """Unpickling this runs code (it would create ``path``): what a hostile checkpoint could carry."""

    def __init__(self, path: str):
        self.path = path

    def __reduce__(self):
        return (os.makedirs, (self.path,))
