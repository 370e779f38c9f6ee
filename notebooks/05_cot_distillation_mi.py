# %% [markdown]
# # 05 · Chain-of-thought distillation that maximises mutual information
#
# *Distilling Step-by-Step* (DSS, Hsieh et al. 2023) trains a small student on two tasks from the same input $x$: the
# **label** and a **rationale** written by a large LLM (PaLM here). The rationale task is a training signal only:
# the student is judged by its labels. Chen et al. (2024) view the two tasks' representations as random variables and
# add a term that **maximises their mutual information**:
#
# $$\mathcal{L} = \alpha\,\mathrm{CE}_{\text{label}} + (1-\alpha)\,\mathrm{CE}_{\text{rationale}} + \beta\,\mathcal{L}_{\text{MI}}$$
#
# **The student on a laptop CPU.** The paper's student is T5, which writes its label as text; on two CPU cores such a
# student must first learn to *generate* through a cross-attention that starts from nothing, and never left chance
# here. The kit's CPU student keeps both tasks on **one pretrained encoder** (the offline MiniLM-L6):
#
# * the **label task** reads the encoder through a classification head: e-SNLI's (premise, hypothesis) pair, 3 classes;
#   CommonsenseQA through a multiple-choice head that scores each (question, choice) pair;
# * the **rationale task** is a 2-layer decoder that reads the *same* encoder states and is teacher-forced on PaLM's
#   rationale (only a share $g = 0.1$ of its gradient reaches the shared encoder: with all of it, the rationale task
#   swamped the encoder and the label task stayed at chance; that share was chosen on held-out training rows).
#
# Two versions of $\mathcal{L}_{\text{MI}}$:
#
# * **released** (`dss_mi`): the released code's heuristic on this student. The decoder's vocabulary distributions are
#   max-pooled over the rationale's positions, read at the label words' pieces, and compared by cross-entropy with the
#   label head's (detached) class distribution. It estimates no mutual information.
# * **variational** (`dss_mi_var`): a learned critic scores every (label representation, rationale representation)
#   pair of the batch, $S_{ij} = \langle g(h_i), k(r_j)\rangle/\tau$, and
#   $\mathcal{L}_{\text{MI}} = -I_{\text{NCE}}$ with $I_{\text{NCE}} = \log B + \frac1B\sum_i [S_{ii} - \log\sum_j e^{S_{ij}}] \le I(H; R)$.

# %% [markdown]
# **Objectives.** You will read the kit's recorded answer to two questions (does the rationale task help the label
# task? does the MI term help?) with its intervals; train a student that learns live and read its loss terms; compare
# what a student writes with what PaLM wrote; write the InfoNCE bound and the released term's summary of a sequence.
#
# **Prerequisites.** notebook 00; what an encoder, a classification head and a decoder are.
#
# **Time on a laptop CPU (2 cores; measured, see `results/course_times.json`).** smoke: under 5 min; default: under
# 15 min (measured 4.1 and 14.4 min with the machine's load at 5.5 and 6.8, beside three other jobs on its 2 cores;
# alone it needs a fraction of that). Two students train live on 1,500 e-SNLI pairs for one epoch; the recorded
# verdict loads at once.
#
# **Where the numbers come from.** The verdict below is the suite `cot_verdict` (`configs/cot_verdict/suite.yaml`:
# its plan was committed before its first run), read from the kit's records (`results/cot`, never written here). The
# live students are a demonstration on a small subset: they learn, but their numbers are not the verdict.
#
# Papers: Hsieh et al. 2023 (arXiv 2305.02301), Chen et al. 2024 (arXiv 2403.03348); van den Oord et al. 2018 (InfoNCE).

# %% tags=["parameters"]
# Parameters (papermill overrides this cell)
smoke = False
dataset = "esnli"          # esnli (pairs, 3 classes) or cqa (5 choices)
suite = "cot_verdict"      # the recorded verdict shown first
cache_dir = None           # the kit's CoT result store (read only); default: the kit's results/cot
live = {"max_train_samples": 1500, "max_eval_samples": 1000, "epochs": 1.0, "heldout_samples": 200,
        "rouge_rows": 20}  # the live students: the cpu preset made small
live_modes = ["label_only", "dss"]
seeds = [0]                # the live students' seeds
cot_dir = None             # default: $CMI_TOOLKIT_COT_DIR, else ../../shared/data/cot
results_dir = "outputs/05_cot_distillation_mi/runs"
output_dir = "outputs/05_cot_distillation_mi"
figures_dir = None         # default: <output_dir>/figures (untracked); `make figures` writes ../figures

# %%
import warnings

import pandas as pd
from IPython.display import Markdown, display

from cmi_toolkit.cot import CoTConfig, load_cot, run_cot_suite, teacher_accuracy, variant_of
from cmi_toolkit.cot.data import CoTDataWarning
from cmi_toolkit.cot.runs import NAMES
from cmi_toolkit.cot.suite import arm_lines, cot_verdict, load_cot_suite
from cmi_toolkit.course.notebook import P, check_parameters, kit_results, save_metrics, setup, smoke_note
from cmi_toolkit.evidence.verdicts import family_table
from cmi_toolkit.evidence.figures import forest_plot, grouped_intervals
from cmi_toolkit.plotting import METHOD_COLOURS, show_figure

# every parameter checked (type, range) before anything runs: a mistake is one line here
check_parameters(globals(), smoke=P(bool), dataset=P(str, choices=("esnli", "cqa")), suite=P(str),
                 cache_dir=P(str, none=True), live=P(dict, choices=tuple(CoTConfig.__dataclass_fields__)),
                 live_modes=P(list, items=str), seeds=P(list, low=0, items=int), cot_dir=P(str, none=True),
                 results_dir=P(str), output_dir=P(str), figures_dir=P(str, none=True))
# smoke banner, output folders, at most 4 torch threads, the CoT folder (argument, env or ../../shared)
output_dir, figures_dir, cot_dir = setup(smoke, output_dir, figures_dir, "cot", cot_dir)
cache_dir = cache_dir or str(kit_results("cot"))
if smoke:
    live = {**live, "max_train_samples": 80, "batch_size": 16, "max_eval_samples": 100, "heldout_samples": 32,
            "rouge_rows": 2}
    smoke_note(live=live)

# %% [markdown]
# ## The data: a pair, its label, PaLM's rationale and a human's explanation
#
# e-SNLI's training pool is its released validation split (9,842 pairs); the test split (9,824) scores each student
# once. Each PaLM completion holds the rationale, then a line `Answer: <label>`: the rationale is the text before that
# line. Four completions of the pool have no such line; the kit names each (file and row) and leaves those rows out of
# training for every student alike.

# %%
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always", CoTDataWarning)
    ds = load_cot(dataset, cot_dir)
example = ds["test"][1]
print(example["input"], "\n\nlabel:", example["label"], "\n\nPaLM's rationale:", example["rationale"])
if "explanation" in ds["test"].column_names:
    print("a human's explanation:", example["explanation"])
print({split: len(part) for split, part in ds.items()}, "|", len(caught), "row(s) named and left out of training")
chance = 1 / len(example["choices"])
teacher = teacher_accuracy(dataset, ds["test"]["teacher_answer"], ds["test"]["label"])
print(f"references on the test split: chance {100 * chance:.1f} %, PaLM's own answers {100 * teacher:.1f} %")

# %% [markdown]
# ## The recorded verdict
#
# Each comparison is paired by seed (each seed's students train on the same rows) and carries two intervals: over
# seeds, and over seeds *and* test examples (a paired bootstrap); the verdict uses the wider one, Holm-adjusted across
# the family. "No difference detected" comes with the smallest effect these seeds could detect.

# %%
spec = load_cot_suite(suite)
verdict = cot_verdict(spec, cot_dir, cache_dir)
recorded = verdict["records"]
if recorded:
    display(Markdown("\n".join(verdict["answers"])))
    print(f"{len(recorded)} of {len(recorded) + len(verdict['missing'])} planned runs recorded")
    display(Markdown("\n".join(arm_lines(recorded))))
    display(Markdown("\n".join(family_table(verdict["rows"], verdict["pools"]))))
else:
    print(f"no run of suite {suite} recorded in {cache_dir}: `cmi-toolkit cot --suite {suite}` runs its plan")

# %%
# NBVAL_IGNORE_OUTPUT
if [r for r in verdict["rows"] if r["n"] >= 2]:
    show_figure(forest_plot(verdict["rows"], verdict["pools"], f"Paired Δ of test accuracy, suite {suite}"),
                "05_cot_forest", figures_dir)

# %% [markdown]
# ## A student that learns, live
#
# The cpu preset made small (`live`): label-only and DSS on 1,500 pairs for one epoch, the checkpoint chosen on 200
# held-out *training* pairs, scored on 1,000 test pairs. Watch the loss terms move from their start (mean of the first
# 10 steps, a quarter of a shorter run) to their end (the last 10), and the accuracy leave the chance line.

# %%
with warnings.catch_warnings():  # the rows left out were named once, above; each student reads the same files
    warnings.simplefilter("ignore", CoTDataWarning)
    live_runs = run_cot_suite(dataset, "cpu", tuple(seeds), tuple(live_modes), source=cot_dir,
                              results_dir=results_dir, overrides=live)
pd.DataFrame([{"student": NAMES[variant_of(r["params"])], "seed": r["params"]["seed"], "steps": r["steps"],
               **{f"{term}, start → end": f"{r['loss_start'][term]:.3f} → {r['loss_end'][term]:.3f}"
                  for term in ("ce_label", "ce_rationale", "mi") if term in r["loss_start"]},
               "test accuracy (%)": round(100 * r["metrics"]["accuracy"], 1),
               "flags": ", ".join(r["checks"]["flags"]) or "–"} for r in live_runs]).fillna("–")

# %%
# NBVAL_IGNORE_OUTPUT
names = [NAMES[variant_of(r["params"])] for r in live_runs]
accs = [100 * r["metrics"]["accuracy"] for r in live_runs]
fig = grouped_intervals(names, {"test accuracy": accs}, {"test accuracy": accs}, {"test accuracy": accs},
                        reference=[100 * chance] * len(names), reference_name="chance",
                        yaxis="test accuracy (%), one seed", title=f"{dataset}: the live students (one seed each)",
                        colours={NAMES[variant_of(r["params"])]: METHOD_COLOURS[variant_of(r["params"])] for r in live_runs})
fig.add_hline(y=100 * teacher, line_dash="dot", annotation_text="PaLM's own answers", line_color="gray")
show_figure(fig, "05_cot_live", figures_dir)

# %% [markdown]
# ## What a student writes, beside PaLM
#
# The first test pairs (not picked), from the recorded DSS student of seed 0 where there is one, else the live one.
# ROUGE-L (the longest common subsequence's F-measure) compares a generated rationale with PaLM's and, on e-SNLI, with
# the human explanation.

# %%
shown = [r for r in recorded if r["params"]["dataset"] == dataset and r["arm"] == "dss" and r["params"]["seed"] == 0]
source_run = (shown or [r for r in live_runs if r["params"]["mode"] != "label_only"])[0]
print("recorded" if shown else "live", "student:", NAMES[variant_of(source_run["params"])],
      f"| ROUGE-L vs PaLM {source_run['metrics'].get('rouge_l_palm', float('nan')):.3f}"
      + (f", vs human {source_run['metrics']['rouge_l_human']:.3f}" if "rouge_l_human" in source_run["metrics"] else "")
      + f" (first {source_run['metrics'].get('rouge_rows', 0)} test rows)")
pd.DataFrame([{"input": ex["input"].replace("\n", " | "), "gold": ex["label"], "predicted": ex["predicted"],
               "student's rationale": ex["rationale"], "PaLM's rationale": ex["palm"]} for ex in source_run["examples"]])

# %%
save_metrics(output_dir, {"records": [{k: r[k] for k in ("params", "metrics", "accuracy", "loss_start", "loss_end",
                                                         "steps", "checks")} for r in live_runs],
                          "recorded": len(recorded), "missing": len(verdict["missing"]),
                          "references": {"chance": chance, "teacher": teacher}})

# %% [markdown]
# ## Exercise 1: Write the InfoNCE bound
#
# Given a B × B matrix of critic scores $S$ (row $i$: label representation $i$ against every rationale representation), return $I_{\mathrm{NCE}} = \log B + \frac1B\sum_i [S_{ii} - \log\sum_j e^{S_{ij}}]$. The check compares it with the formula `InfoNCECritic.lower_bound` uses. *Discuss:* why can this bound never exceed $\log B$, and what does that mean for small batches?
#
# Fill in the function, run the next cell; it says ✓ or ✗ with a hint. Solutions: `notebooks/solutions/solutions.py` (look after trying).

# %%
def infonce_bound(scores):
    # your code here (torch is enough)
    raise NotImplementedError


# %%
from cmi_toolkit.course.exercises import check

check("infonce_bound", infonce_bound)

# %% [markdown]
# ## Exercise 2: The released MI term's summary of a sequence
#
# The released MI term compares the label task and the rationale task through one vector per example:
# $v_b = \max_t \mathrm{softmax}(z_{b,t})$, the largest probability each vocabulary entry reaches over the
# target positions $t$ where `mask` is True (`logits` B × T × V, `mask` B × T). Write it. *Discuss:* what
# does this summary keep of a rationale, and what does it throw away (order, counts)?
#
# Fill in the function, run the next cell; it says ✓ or ✗ with a hint. Solutions: `notebooks/solutions/solutions.py`.

# %%
def max_pooled_probs(logits, mask):
    # your code here (torch is enough)
    raise NotImplementedError


# %%
check("max_pooled_probs", max_pooled_probs)

# %% [markdown]
# **Reading the results.** The label accuracy is what the student is for; read it against chance and against PaLM's
# own answers (a student can beat its teacher's answers: it learns from the gold labels too). The verdict answers
# the two questions only where its intervals exclude 0 after Holm's correction; otherwise it says how small an effect
# these seeds could have detected. The live students show that the student learns and what each loss term does; one
# seed on a subset is not evidence.

# %% [markdown]
# **What to try next.** Set `dataset = "cqa"` (five choices, chance 20 %); add `"dss_mi"` and `"dss_mi_var"` to
# `live_modes` and watch the MI term; change `live["rationale_grad_scale"]` to 1.0 and see the label task stall at
# chance (the defect the kit found and fixed); run the whole plan with `cmi-toolkit cot --suite cot_verdict`.
#
# **Pitfalls.** A fluent rationale is not a correct label: read the accuracy, not the prose. The InfoNCE bound cannot
# exceed log B (the batch size): a large value needs a large batch, not a better model. The released MI term is a
# heuristic, not an estimate of mutual information.
