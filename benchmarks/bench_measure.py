"""Cost of ``measure`` (accuracy + CMI/Gamma/NCMI in both spaces) relative to a plain evaluation pass.

Same model, same SST-2 dev set (872 sentences), same length-sorted dynamically padded batches.
The plain pass only computes logits and accuracy. The two are interleaved over repetitions;
the table gives median times and the median ratio. Target: <= 1.10.

    CMI_TOOLKIT_GLUE_DIR=../shared/data/glue python benchmarks/bench_measure.py
"""

from __future__ import annotations

import argparse

import torch
from _common import median, save_record, sst2, threads, timed

from cmi_toolkit.data.loading import make_dataloader, tokenize_glue
from cmi_toolkit.data.models import load_classifier, load_tokenizer
from cmi_toolkit.method.measure import measure


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=4)
    args = ap.parse_args()
    tok = load_tokenizer("minilm-l6")
    dev = tokenize_glue(sst2("validation"), tok, "sst2")
    model = load_classifier("minilm-l6", num_labels=2).eval()
    loader = make_dataloader(dev, tok, batch_size=64)

    @torch.no_grad()
    def plain():
        correct = 0
        for b in loader:
            y = b.pop("labels")
            b.pop("idx")
            correct += int((model(**b).logits.argmax(-1) == y).sum())
        return correct / len(dev)

    def full():
        return measure(model, loader, task="sst2", progress=False)

    plain(), full()  # warm-up
    tp, tm, ratios = [], [], []
    for rep in range(args.repeats):
        if rep % 2:
            a, m = timed(plain), timed(full)
        else:
            m, a = timed(full), timed(plain)
        tp.append(a)
        tm.append(m)
        ratios.append(m / a)
    print(f"measure() vs plain evaluation (MiniLM-L6, SST-2 dev {len(dev)} rows, batch 64, {threads()} threads, "
          f"{args.repeats} interleaved repetitions)")
    print(f"{'pass':26s} {'median s':>9s}")
    print(f"{'plain eval (accuracy)':26s} {median(tp):9.3f}")
    print(f"{'measure (acc + CMI x2)':26s} {median(tm):9.3f}")
    print(f"median ratio measure/plain: {median(ratios):.3f}   (target <= 1.10)")
    save_record("measure", f"measure() (accuracy + CMI, separation, NCMI in both spaces) vs a plain evaluation pass "
                f"(SST-2 dev, {len(dev)} rows, batch 64, {args.repeats} interleaved repetitions)",
                {"median_ratio": median(ratios), "plain_s": median(tp), "measure_s": median(tm)},
                ("median_ratio", "<=", 1.10))


if __name__ == "__main__":
    main()
