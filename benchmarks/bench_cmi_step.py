"""Cost of the CMI term in a training step of the offline MiniLM, relative to cross-entropy alone.

Same Trainer class, same SST-2 batches (32 sentences, dynamic padding): a step is
forward + backward + optimiser step (+ the EMA centroid update for CMI). The two variants are
interleaved batch by batch (alternating which goes first) over several repetitions; the table
gives the median step time of each and the median of the per-batch ratios. Target: <= 1.03.

    CMI_TOOLKIT_GLUE_DIR=../shared/data/glue python benchmarks/bench_cmi_step.py
"""

from __future__ import annotations

import argparse
import copy

import torch
from _common import median, save_record, sst2, threads, timed
from transformers import DataCollatorWithPadding, TrainingArguments

from cmi_toolkit.data.loading import make_dataloader, tokenize_glue
from cmi_toolkit.data.models import load_classifier, load_tokenizer
from cmi_toolkit.method.losses import CMILossConfig
from cmi_toolkit.method.trainers import CMITrainer


def make_trainer(model, tok, data, cmi: CMILossConfig, mode: str):
    args = TrainingArguments(output_dir="/tmp/bench_cmi_step", report_to=[], per_device_train_batch_size=32,
                             disable_tqdm=True, use_cpu=not torch.cuda.is_available())
    t = CMITrainer(model=model, args=args, train_dataset=data, processing_class=tok,
                   data_collator=DataCollatorWithPadding(tok), cmi=cmi, centroid_mode=mode)
    t.create_optimizer()
    t.current_gradient_accumulation_steps = 1  # set by train(); training_step reads it
    return t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batches", type=int, default=12)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--mode", default="ema", help="centroid mode of the CMI variant")
    args = ap.parse_args()
    torch.manual_seed(0)
    tok = load_tokenizer("minilm-l6")
    data = tokenize_glue(sst2("train", n=32 * args.batches), tok, "sst2")
    batches = list(make_dataloader(data, tok, batch_size=32, shuffle=True, seed=0))
    base = load_classifier("minilm-l6", num_labels=2)
    ce = make_trainer(copy.deepcopy(base), tok, data, CMILossConfig(weight=0.0), args.mode)
    cmi = make_trainer(copy.deepcopy(base), tok, data, CMILossConfig(weight=0.1, temperature=0.1), args.mode)
    cmi.centroids.fit(cmi.view, make_dataloader(data, tok, batch_size=64), progress=False)

    def step(trainer, batch):
        def run():
            inputs = {k: v for k, v in batch.items() if k != "idx"}
            trainer.training_step(trainer.model, inputs)
            trainer.optimizer.step()
            trainer.optimizer.zero_grad()
            for probs, labels in trainer._pending:
                trainer.centroids.observe(probs, labels)
            trainer._pending.clear()
        return run

    for b in batches[:2]:  # warm-up
        timed(step(ce, b)), timed(step(cmi, b))
    t_ce, t_cmi, ratios = [], [], []
    for rep in range(args.repeats):
        for i, b in enumerate(batches):
            if (rep + i) % 2:
                a, c = timed(step(ce, b)), timed(step(cmi, b))
            else:
                c, a = timed(step(cmi, b)), timed(step(ce, b))
            t_ce.append(a)
            t_cmi.append(c)
            ratios.append(c / a)
    print(f"CMI term cost per training step (MiniLM-L6, SST-2 batches of 32, {threads()} threads, "
          f"{len(ratios)} interleaved pairs, centroids={args.mode})")
    print(f"{'variant':28s} {'median step s':>14s}")
    print(f"{'CE alone':28s} {median(t_ce):14.4f}")
    print(f"{'CE + 0.1 * CMI (feature)':28s} {median(t_cmi):14.4f}")
    print(f"median per-batch ratio CMI/CE: {median(ratios):.3f}   (target <= 1.03)")
    save_record("cmi_step", f"training step with the CMI term vs CE alone (MiniLM-L6, SST-2 batches of 32, "
                f"{args.mode} centroids, {len(ratios)} interleaved pairs)",
                {"median_ratio": median(ratios), "ce_step_s": median(t_ce), "cmi_step_s": median(t_cmi)},
                ("median_ratio", "<=", 1.03))


if __name__ == "__main__":
    main()
