"""torchrun worker: a few CMI training steps on gloo; writes its centroids and weights checksum."""

import hashlib
import json
import sys
from pathlib import Path

import torch.distributed as dist

from cmi_toolkit.data.models import load_tokenizer
from cmi_toolkit.runs.config import RunConfig
from cmi_toolkit.runs.execute import prepare_data, train_model

model_dir, glue, out = sys.argv[1], sys.argv[2], Path(sys.argv[3])
cfg = RunConfig(task="sst2", model=model_dir, method="cmi", max_train_samples=None, epochs=2, batch_size=8,
                learning_rate=1e-3, warmup_ratio=0.0, cmi_weight=0.5, temperature=0.5, centroid_mode="ema")
tok = load_tokenizer(model_dir)
_, train, _ = prepare_data(cfg, tok, glue)
model, trainer = train_model(cfg, train, tok, out / "ckpt", progress=False, save_checkpoints=False)
rank = dist.get_rank()
weights = hashlib.sha256(b"".join(p.detach().cpu().numpy().tobytes() for p in model.parameters())).hexdigest()
out.mkdir(parents=True, exist_ok=True)
(out / f"rank{rank}.json").write_text(json.dumps({
    "world_size": dist.get_world_size(), "global_step": trainer.state.global_step,
    "centroids": trainer.centroids.centroids.tolist(), "weights": weights}))
