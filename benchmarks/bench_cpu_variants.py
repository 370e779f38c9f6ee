"""Runs per hour of the lab preset on this CPU: fp32 against bf16 autocast, torch.compile and thread layouts.

Every variant trains the lab preset's CMI-minimised run (SST-2, 2,000 examples, batch 32, the kit's
defaults) through the kit's own Trainer for ``--steps`` timed optimiser steps after ``--warmup`` steps,
in a fresh process; variants are interleaved over ``--rounds`` rounds (order reversed every other
round) so a busy machine slows them alike. Runs per hour = 3600 / (seconds per step x steps per
run), with the run's 189 steps (3 epochs of 63); two 1-thread processes side by side count both.

It also measures the GEMM peak (1024 x 384 x 1536, the MiniLM FFN's shape) in fp32 and bf16 and
states the share of the bf16 peak a training step reaches: achieved = 6 x (non-embedding
parameters) x (tokens per step) / (seconds per step), the usual forward + backward estimate.

torch.compile (``bf16+compile``, not in the default list): with dynamic padding every new batch length
compiles again; on this CPU 6 steps of the lab preset took 279 s against about 2 s uncompiled, so it is
not a variant worth timing here (``--variants "fp32;bf16+compile"`` measures it).

    CMI_TOOLKIT_GLUE_DIR=../shared/data/glue python benchmarks/bench_cpu_variants.py
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

VARIANTS = {
    "fp32": {"bf16": False, "compile": False, "threads": 2, "procs": 1},
    "bf16": {"bf16": True, "compile": False, "threads": 2, "procs": 1},
    "bf16+compile": {"bf16": True, "compile": True, "threads": 2, "procs": 1},
    "fp32 2 procs x 1 thread": {"bf16": False, "compile": False, "threads": 1, "procs": 2},
    "bf16 2 procs x 1 thread": {"bf16": True, "compile": False, "threads": 1, "procs": 2},
}
STEPS_PER_RUN = 189  # 3 epochs of 2,000 examples at batch 32 (63 steps each)


def gemm_peak(dtype, reps: int = 30) -> float:
    import torch

    a = torch.randn(1024, 384, dtype=dtype)
    b = torch.randn(384, 1536, dtype=dtype)
    for _ in range(5):
        a @ b
    t0 = time.perf_counter()
    for _ in range(reps):
        a @ b
    return 2 * 1024 * 384 * 1536 * reps / (time.perf_counter() - t0) / 1e9


def worker(variant: str, steps: int, warmup: int) -> dict:
    import tempfile

    import torch
    from transformers import TrainerCallback

    spec = VARIANTS[variant]
    torch.set_num_threads(spec["threads"])
    from cmi_toolkit import defaults as D
    from cmi_toolkit.data.models import load_tokenizer
    from cmi_toolkit.runs.config import RunConfig
    from cmi_toolkit.runs.execute import prepare_data, train_model

    preset = {k: v for k, v in D.LAB_PRESET.items() if k in ("task", "max_train_samples", "batch_size")}
    cfg = RunConfig(**preset, method="cmi", bf16=spec["bf16"])
    tok = load_tokenizer(cfg.model)
    _, train, _ = prepare_data(cfg, tok)
    marks: dict[str, float] = {}
    tokens: list[int] = []

    class Clock(TrainerCallback):
        def on_step_begin(self, args, state, control, **kw):
            if state.global_step == warmup:
                marks["start"] = time.perf_counter()

        def on_step_end(self, args, state, control, **kw):
            if state.global_step == warmup + steps:
                marks["end"] = time.perf_counter()

    from cmi_toolkit.method import trainers as training

    orig = training.CMITrainer.compute_loss

    def counting(self, model, inputs, *a, **k):
        tokens.append(int(inputs["input_ids"].numel()))
        return orig(self, model, inputs, *a, **k)

    training.CMITrainer.compute_loss = counting
    model, trainer = train_model(cfg, train, tok, tempfile.mkdtemp(), progress=False, max_steps=warmup + steps,
                                 save_checkpoints=False, callbacks=[Clock()], torch_compile=spec["compile"])
    per_step = (marks["end"] - marks["start"]) / steps
    params = sum(p.numel() for n, p in model.named_parameters() if "embeddings" not in n)
    tok_per_step = statistics.mean(tokens[warmup:warmup + steps])
    return {"s_per_step": per_step, "tokens_per_step": tok_per_step, "gflops": 6 * params * tok_per_step / per_step / 1e9}


def run_variant(variant: str, steps: int, warmup: int) -> dict:
    spec = VARIANTS[variant]
    cmd = [sys.executable, __file__, "--worker", variant, "--steps", str(steps), "--warmup", str(warmup)]
    env = {**os.environ, "OMP_NUM_THREADS": str(spec["threads"]), "TOKENIZERS_PARALLELISM": "false"}
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
             for _ in range(spec["procs"])]
    results = []
    for p in procs:
        out, err = p.communicate()
        if p.returncode != 0:
            return {"error": (err.strip().splitlines() or ["failed"])[-1][:120]}
        results.append(json.loads(out.strip().splitlines()[-1]))
    per_step = max(r["s_per_step"] for r in results)
    return {"s_per_step": per_step, "runs_per_hour": spec["procs"] * 3600 / (per_step * STEPS_PER_RUN),
            "gflops": sum(r["gflops"] for r in results), "tokens_per_step": results[0]["tokens_per_step"]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=30, help="timed steps per variant and round")
    ap.add_argument("--warmup", type=int, default=6, help="untimed steps first (compilation happens here)")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--variants", default=";".join(v for v in VARIANTS if v != "bf16+compile"),
                    help="semicolon-separated variant names (bf16+compile: see the module docstring)")
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.steps, args.warmup)))
        return
    import torch
    from _common import record_key, save_record

    names = [v.strip() for v in args.variants.split(";")]
    peak32, peak16 = gemm_peak(torch.float32), gemm_peak(torch.bfloat16)
    found: dict[str, list[dict]] = {n: [] for n in names}
    for r in range(args.rounds):
        for name in names if r % 2 == 0 else names[::-1]:
            found[name].append(run_variant(name, args.steps, args.warmup))
            print(f"round {r + 1} {name}: {found[name][-1]}", file=sys.stderr, flush=True)
    base = statistics.median(x["runs_per_hour"] for x in found["fp32"] if "runs_per_hour" in x)
    print(f"\nGEMM 1024x384x1536 on {torch.get_num_threads()} threads: fp32 {peak32:.0f} GFLOP/s, bf16 {peak16:.0f} "
          f"GFLOP/s ({peak16 / peak32:.2f}x)\n")
    print("| variant | s / step | runs / hour (lab preset) | × fp32 | achieved GFLOP/s | share of bf16 GEMM peak |")
    print("|---|---|---|---|---|---|")
    for name in names:
        ok = [x for x in found[name] if "runs_per_hour" in x]
        if not ok:
            print(f"| {name} | failed: {found[name][0].get('error')} | | | | |")
            continue
        rph = statistics.median(x["runs_per_hour"] for x in ok)
        gf = statistics.median(x["gflops"] for x in ok)
        print(f"| {name} | {statistics.median(x['s_per_step'] for x in ok):.3f} | {rph:.1f} | {rph / base:.2f} | "
              f"{gf:.0f} | {100 * gf / peak16:.0f} % |")
    rates = {name: statistics.median(x["runs_per_hour"] for x in found[name] if "runs_per_hour" in x)
             for name in names if any("runs_per_hour" in x for x in found[name])}
    results = {"gemm_fp32_gflops": peak32, "gemm_bf16_gflops": peak16, "fp32_runs_per_hour": base,
               "best_x_fp32": max(r / base for r in rates.values())}
    results.update({f"{record_key(name)}_x_fp32": rate / base for name, rate in rates.items() if name != "fp32"})
    save_record("cpu_variants", f"lab-preset runs per hour against fp32 ({', '.join(names)}; {args.rounds} interleaved "
                f"rounds of {args.steps} timed steps after {args.warmup})", results, ("best_x_fp32", ">=", 1.5))
    print(f"\nmedian of {args.rounds} interleaved rounds, {args.steps} timed steps each after {args.warmup}; "
          f"tokens per step about {statistics.mean(x['tokens_per_step'] for x in found['fp32'] if 'tokens_per_step' in x):.0f}; "
          f"{Path('/proc/cpuinfo').exists() and os.cpu_count()} logical CPUs")


if __name__ == "__main__":
    main()
