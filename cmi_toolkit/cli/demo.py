"""``cmi-toolkit demo``: the quickest look at the method, offline, in a few minutes."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from .. import defaults as D
from .common import _parser


@dataclass
class DemoArgs:
    task: str = field(default="sst2", metadata={"help": "GLUE task"})
    glue_dir: str | None = field(default=None, metadata={"help": "GLUE folder; default $CMI_TOOLKIT_GLUE_DIR, else the hub"})
    model: str = field(default=D.MODEL, metadata={"help": "alias, local folder or hub id"})
    max_train_samples: int = field(default=2000, metadata={"help": "training subset (the CPU suite's SST-2 size)"})
    epochs: float = field(default=3.0, metadata={"help": "training epochs"})
    seed: int = field(default=0, metadata={"help": "training seed"})
    output_dir: str = field(default="runs/demo", metadata={"help": "result store of the demo"})


def cmd_demo(argv: list[str]) -> int:
    """CE vs CMI-minimised fine-tuning of the offline model on a real GLUE task (a few minutes)."""
    from ..runs.config import RunConfig
    from ..runs.execute import execute
    from ..runs.store import ResultStore
    from ..runs.suites import load_suite

    (args,) = _parser(DemoArgs).parse_args_into_dataclasses(argv)
    common = load_suite("cpu")["common"]
    store = ResultStore(args.output_dir)
    t0 = time.perf_counter()
    rows = []
    for method in ("ce", "cmi"):
        cfg = RunConfig(**{**common, "task": args.task, "model": args.model, "method": method, "seed": args.seed,
                           "max_train_samples": args.max_train_samples, "epochs": args.epochs})
        print(f"== {method}: {'cross-entropy' if method == 'ce' else 'CE + lambda * CMI'} on {cfg.task}, "
              f"{cfg.max_train_samples} training examples, {cfg.epochs:g} epochs")
        rec = execute(cfg, store, glue_dir=args.glue_dir)
        rows.append((method, rec))
    metric = rows[0][1]["headline_metric"]
    print(f"\n{'method':8s} {metric:>10s} {'feat CMI':>10s} {'feat NCMI':>10s} {'out CMI':>10s} {'train s':>8s}")
    for method, rec in rows:
        m = rec["metrics"]
        print(f"{method:8s} {m[metric]:10.4f} {m['feature_cmi']:10.4f} {m['feature_ncmi']:10.4f} "
              f"{m['output_cmi']:10.4f} {rec['timings']['train_s']:8.1f}")
    p = rows[1][1]["params"]
    print(f"(lambda={p['cmi_weight']}, space={p['space']}, T={p['temperature']}, centroids={p['centroid_mode']}; "
          f"{rows[0][1]['eval_samples']} dev examples; records in {store.runs}; {time.perf_counter() - t0:.0f} s)")
    return 0
