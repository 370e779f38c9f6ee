"""Does the CPU student's rationale decoder read its input? Its learning rate against the rest (the cpu preset's choice).

Trains the e-SNLI encoder student (rationale_grad_scale 0.1) for STEPS steps of 32 rows (bf16, one thread, AdamW
1e-4, 6 % warm-up) with the decoder at the same learning rate (``base``) or 10x (``declr10``) or 30x (``declr30``),
and prints, half-way and at the end, on 300 held-out *training* rows (rows 9000-9299; the test split is never read):
label accuracy, how many of the first 50 greedy rationales differ, and their ROUGE-L against PaLM's.

    OMP_NUM_THREADS=1 python benchmarks/cot_decoder_lr.py declr10 120

Its output committed in results/cot/pilot/decoder_lr.txt chose the cpu preset's decoder_lr_scale = 10: at 1 the
decoder wrote one rationale for every input.
"""

import sys
import time
import warnings

import numpy as np
import torch
from transformers import AutoTokenizer, get_linear_schedule_with_warmup

from cmi_toolkit.cot.data import load_cot
from cmi_toolkit.cot.student import (
    CoTStudent,
    StudentCollator,
    StudentConfig,
    encode_student,
    greedy_rationales,
    predict_labels,
    rouge_l,
    student_terms,
)
from cmi_toolkit.data.models import resolve_model

warnings.simplefilter("ignore")
torch.set_num_threads(1)
torch.manual_seed(0)
variant, steps = sys.argv[1], int(sys.argv[2])
ds = load_cot("esnli")
path = resolve_model("minilm-l6")
tok = AutoTokenizer.from_pretrained(path)
train = encode_student(ds["train"].select(range(steps * 32)), tok, "pair", 128, 64)
held_rows = ds["train"].select(range(9000, 9300))
heldout = encode_student(held_rows, tok, "pair", 128, 64)
collate = StudentCollator(tok.pad_token_id)
student = CoTStudent(path, StudentConfig(kind="pair", num_labels=3, decoder_layers=2, rationale_grad_scale=0.1))
scale = {"declr10": 10.0, "declr30": 30.0}.get(variant, 1.0)
decoder = [p for n, p in student.named_parameters() if n.startswith("decoder.")]
rest = [p for n, p in student.named_parameters() if not n.startswith("decoder.")]
opt = torch.optim.AdamW([{"params": rest, "lr": 1e-4}, {"params": decoder, "lr": 1e-4 * scale}], weight_decay=0.01)
schedule = get_linear_schedule_with_warmup(opt, int(0.06 * steps), steps)
t0 = time.time()
for i in range(steps):
    student.train()
    batch = collate([train[j] for j in range(i * 32, (i + 1) * 32)])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        terms = student_terms(student, batch, 0.5, 0.0, False)
    terms["total"].backward()
    torch.nn.utils.clip_grad_norm_(student.parameters(), 1.0)
    opt.step()
    schedule.step()
    opt.zero_grad()
    if (i + 1) % (steps // 2) == 0:
        pred, _ = predict_labels(student, heldout, collate)
        acc = np.mean(np.array(pred) == np.array(heldout["labels"]))
        gen = greedy_rationales(student, heldout.select(range(50)), collate, tok, 40)
        score = rouge_l(gen, list(held_rows["rationale"][:50]))
        print(variant, i + 1, f"acc {acc:.3f}", f"ce_rat {float(terms['ce_rationale']):.3f}",
              f"distinct {len(set(gen))}/50", f"rougeL {score:.3f}", f"{time.time() - t0:.0f}s", "|", gen[0], "|", gen[1],
              flush=True)
