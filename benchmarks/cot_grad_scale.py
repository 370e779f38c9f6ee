"""How much of the rationale task's gradient may reach the CPU student's shared encoder? (the cpu preset's choice)

Trains the e-SNLI encoder student for STEPS steps of 32 rows (bf16 autocast, one thread, AdamW 1e-4, 6 % warm-up)
and prints its label accuracy on 400 held-out *training* rows (rows 9000-9399 of the training pool; the test split is
never read) every 20 steps, for a variant given on the command line:

    lo               label-only (no decoder)
    dss_clip         DSS, gradient clipped at norm 1 (the Trainer's default)
    dss_noclip       DSS, no clipping
    dss_gs<g>        DSS, a share g of the rationale gradient reaches the encoder (e.g. dss_gs0.1)

    OMP_NUM_THREADS=1 python benchmarks/cot_grad_scale.py dss_gs0.1 80

The output committed in results/cot/pilot/grad_scale.txt chose the cpu preset's rationale_grad_scale = 0.1.
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
    predict_labels,
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
heldout = encode_student(ds["train"].select(range(9000, 9400)), tok, "pair", 128, 64, False)
collate = StudentCollator(tok.pad_token_id)
label_only = variant.startswith("lo")
scale = float(variant.split("gs")[1]) if "gs" in variant else 1.0
student = CoTStudent(path, StudentConfig(kind="pair", num_labels=3, decoder_layers=0 if label_only else 2,
                                         rationale_grad_scale=scale))
opt = torch.optim.AdamW(student.parameters(), 1e-4, weight_decay=0.01)
schedule = get_linear_schedule_with_warmup(opt, int(0.06 * steps), steps)
clip = 1e9 if "noclip" in variant else 1.0
t0, log = time.time(), []
for i in range(steps):
    student.train()
    batch = collate([train[j] for j in range(i * 32, (i + 1) * 32)])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        terms = student_terms(student, batch, 0.5, 0.0, label_only)
    terms["total"].backward()
    norm = torch.nn.utils.clip_grad_norm_(student.parameters(), clip)
    opt.step()
    schedule.step()
    opt.zero_grad()
    log.append((float(terms["ce_label"]), float(terms.get("ce_rationale", 0)), float(norm)))
    if (i + 1) % 20 == 0:
        pred, _ = predict_labels(student, heldout, collate)
        acc = np.mean(np.array(pred) == np.array(heldout["labels"]))
        print(variant, i + 1, f"acc {acc:.3f}", "ce_label {:.3f} ce_rat {:.3f} gradnorm {:.2f}".format(*tuple(np.mean(log[-20:], 0))),
              "%.0fs" % (time.time() - t0), flush=True)
