"""Training throughput: this kit vs the Hugging Face run_glue default configuration.

run_glue's default pads every example to max_seq_length=128 and samples batches at random;
the kit pads each batch to its longest row and groups rows of similar length
(LengthGroupedSampler). Same model (offline MiniLM), same SST-2 training rows, same batch size
(32); a step is forward + backward + optimiser step. Blocks of steps of the two set-ups are
interleaved; the table gives samples per second and the ratio. Target: >= 4x.

    CMI_TOOLKIT_GLUE_DIR=../shared/data/glue python benchmarks/bench_throughput.py
"""

from __future__ import annotations

import argparse
import itertools

import torch
from _common import save_record, sst2, threads, timed
from torch.utils.data import DataLoader
from transformers import DataCollatorWithPadding

from cmi_toolkit.data.loading import make_dataloader, tokenize_glue
from cmi_toolkit.data.models import load_classifier, load_tokenizer


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=6, help="steps per block")
    ap.add_argument("--blocks", type=int, default=3, help="interleaved blocks per set-up")
    args = ap.parse_args()
    torch.manual_seed(0)
    tok = load_tokenizer("minilm-l6")
    rows = sst2("train", n=32 * args.steps * args.blocks * 2)
    dynamic = tokenize_glue(rows, tok, "sst2")
    kit_loader = make_dataloader(dynamic, tok, batch_size=32, shuffle=True, group_by_length=True, seed=0)
    padded = rows.map(lambda b: tok(b["sentence"], padding="max_length", max_length=128, truncation=True),
                      batched=True, remove_columns=["sentence", "idx"])
    padded = padded.with_format("torch")
    glue_loader = DataLoader(padded, batch_size=32, shuffle=True, collate_fn=DataCollatorWithPadding(tok),
                             generator=torch.Generator().manual_seed(0))
    model = load_classifier("minilm-l6", num_labels=2)
    opt = torch.optim.AdamW(model.parameters(), lr=2e-5)

    def run_block(batches):
        n = 0
        for b in batches:
            b = {k: v for k, v in b.items() if k not in ("idx", "length")}
            loss = model(**b).loss
            loss.backward()
            opt.step()
            opt.zero_grad()
            n += len(b["labels"])
        return n

    kit_iter, glue_iter = iter(kit_loader), iter(glue_loader)
    run_block(list(itertools.islice(kit_iter, 1)))  # warm-up
    totals = {"kit": [0, 0.0, 0], "run_glue": [0, 0.0, 0]}
    for _ in range(args.blocks):
        for name, it in (("run_glue", glue_iter), ("kit", kit_iter)):
            batches = list(itertools.islice(it, args.steps))
            tokens = sum(int(b["attention_mask"].numel()) for b in batches)
            n = [0]
            t = timed(lambda batches=batches, n=n: n.__setitem__(0, run_block(batches)))
            totals[name][0] += n[0]
            totals[name][1] += t
            totals[name][2] += tokens
    print(f"Training throughput, MiniLM-L6 on SST-2 train rows, batch 32, {threads()} threads, "
          f"{args.blocks} interleaved blocks of {args.steps} steps")
    print(f"{'set-up':44s} {'samples/s':>10s} {'padded tokens/sample':>21s}")
    sps = {}
    for name, label in (("run_glue", "run_glue default (pad to 128, random batches)"),
                        ("kit", "cmi_toolkit (dynamic padding, length groups)")):
        n, t, tokens = totals[name]
        sps[name] = n / t
        print(f"{label:44s} {sps[name]:10.1f} {tokens / n:21.1f}")
    print(f"speed-up: {sps['kit'] / sps['run_glue']:.2f}x   (target >= 4x)")
    save_record("throughput", f"training throughput vs the run_glue default (pad to 128, random batches), SST-2, batch 32, "
                f"{args.blocks} interleaved blocks of {args.steps} steps",
                {"speedup": sps["kit"] / sps["run_glue"], "kit_samples_per_s": sps["kit"],
                 "run_glue_samples_per_s": sps["run_glue"], "kit_padded_tokens_per_sample": totals["kit"][2] / totals["kit"][0],
                 "run_glue_padded_tokens_per_sample": totals["run_glue"][2] / totals["run_glue"][0]},
                ("speedup", ">=", 4.0))


if __name__ == "__main__":
    main()
