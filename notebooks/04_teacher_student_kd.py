# %% [markdown]
# # 04 · Teachers and students
#
# Knowledge distillation trains a small student on the teacher's softened outputs:
#
# $$\mathcal{L}_{\text{student}} = \alpha\, T^2\, \mathrm{KL}\big(p^{T}_{\text{teacher}} \,\|\, p^{T}_{\text{student}}\big) + (1-\alpha)\,\mathrm{CE}$$
#
# Ye et al. (ICLR 2024) argue that the best teacher for this is not the most accurate one but the one whose outputs
# best estimate the *Bayes conditional distribution*, and that **maximising** CMI during teacher training
# ($\mathcal{L} = \mathrm{CE} - \lambda\,\mathrm{CMI}$, "MCMI") gets closer to it. Here: a CE teacher and an MCMI
# teacher (6-layer MiniLM), and a 3-layer student (layers 0, 2, 4 of the teacher) trained alone, from the CE teacher and
# from the MCMI teacher.
#
# This notebook is also the unit of the batch reproduction: `cmi-toolkit reproduce --executor papermill` runs it once
# per task and seed with `methods` set to all of the suite's methods, `results_dir` set to the shared result store and
# no `cache_dir`.

# %% [markdown]
# **Objectives.** You will read a CE and a CMI-maximised teacher and the 3-layer students distilled from each, over
# five seeds, and state the comparison with a paired interval; write the distillation loss and the teacher's objective.
#
# **Prerequisites.** notebooks 01 and 02; knowledge distillation.
#
# **Time on a laptop CPU (2 cores; measured, see `results/course_times.json`).** smoke: under 2 min; default: under
# 2 min (it reads the recorded runs; a run that is not cached trains here first, and the notebook says how long
# that takes before it starts).
#
# **Where the runs come from.** Training five teachers and fifteen students takes hours on a laptop, so this notebook
# opens on runs that are already recorded: the SST-2 arm of the kit's CPU verdict (`suite = "cpu_verdict"`: 2,000
# training examples, 3 epochs, scored on the full dev set, five seeds, the MCMI teacher's settings chosen on held-out
# training data by its student's score). They are read from `cache_dir`, the kit's committed result store, which is
# never written; any run you ask for that is not there trains into `results_dir` first.
#
# Papers: Sivakaran & Yang 2025 (arXiv 2502.11258), Yang et al. 2023 (arXiv 2309.09123), Ye et al., ICLR 2024 (MCMI teacher), Chen et al. 2024 (arXiv 2403.03348).

# %% tags=["parameters"]
# Parameters (papermill overrides this cell)
from cmi_toolkit import defaults as D  # the kit's one set of defaults

smoke = False
task = "sst2"
suite = "cpu_verdict"     # configs/<suite>/suite.yaml, or a path
methods = ["ce", "mcmi", "student", "kd_ce", "kd_mcmi"]
seeds = [0, 1, 2, 3, 4]
cache_dir = str(D.REPO_ROOT / "results")  # the kit's committed result store (read only): its runs load at once
train_missing = True      # False: stop with the list of runs that are not cached
glue_dir = None
results_dir = None        # runs that are not cached train here; default: <output_dir>
output_dir = "outputs/04_teacher_student_kd"
figures_dir = None        # default: <output_dir>/figures (untracked); `make figures` writes ../figures

# %%
from cmi_toolkit.course.notebook import P, check_parameters, save_metrics, setup, smoke_note

# every parameter checked (type, range) before anything runs: a mistake is one line here
check_parameters(globals(), smoke=P(bool), task=P(str), suite=P(str), methods=P(list, items=str), seeds=P(list, low=0, items=int),
                 cache_dir=P(str, none=True), train_missing=P(bool), glue_dir=P(str, none=True), results_dir=P(str, none=True),
                 output_dir=P(str), figures_dir=P(str, none=True))
# smoke banner, output folders, at most 4 torch threads, the GLUE folder (argument, env or ../../shared)
output_dir, figures_dir, glue_dir = setup(smoke, output_dir, figures_dir, "glue", glue_dir)

import pandas as pd
from IPython.display import Markdown

from cmi_toolkit.evidence.report import METHOD_LABELS, summarise
from cmi_toolkit.runs.suites import cached_or_run, load_suite, suite_runs
from cmi_toolkit.runs.store import ResultStore
from cmi_toolkit.evidence.verdicts import one_comparison, verdict_lines
from cmi_toolkit.evidence.figures import grouped_intervals
from cmi_toolkit.plotting import METHOD_COLOURS, show_figure

if smoke:
    seeds = seeds[:2]
    smoke_note(seeds=seeds)
store = ResultStore(results_dir or output_dir)
spec = load_suite(suite)
runs = suite_runs(spec, tasks=[task], seeds=seeds, methods=methods)
records = cached_or_run(runs, store, cache_dir, glue_dir, train=train_missing, suite=spec.get("suite"))
rows = summarise(records)
table = pd.DataFrame([{"model": METHOD_LABELS[r["method"]], "score": None if r["mean"] is None else 100 * r["mean"],
                       "sd": None if r["std"] is None else 100 * r["std"], "seeds": r["used"], "flagged": r["flagged"],
                       "Δ vs its baseline": None if r["diff_mean"] is None else 100 * r["diff_mean"],
                       "95 % interval": "" if r["diff_low"] is None else f"[{100 * r['diff_low']:+.2f}, {100 * r['diff_high']:+.2f}]",
                       "baseline": "" if r["baseline"] is None else METHOD_LABELS[r["baseline"]],
                       "mechanism": r["mechanism"], "feature CMI": r["feature_cmi"]} for r in rows])
table.round(3).astype(object).fillna("")  # blanks where a row has no baseline

# %%
# NBVAL_IGNORE_OUTPUT
def pct(v):
    return None if v is None else 100 * v


labels = [METHOD_LABELS[r["method"]] for r in rows]
means = [pct(r["mean"]) for r in rows]
sds = [pct(r["std"]) or 0.0 for r in rows]
fig = grouped_intervals(labels, {"dev score": means},
                        {"dev score": [None if m is None else m - s for m, s in zip(means, sds)]},
                        {"dev score": [None if m is None else m + s for m, s in zip(means, sds)]},
                        reference=[pct(r["majority"]) for r in rows], reference_name="majority class",
                        yaxis=f"dev {rows[0]['metric']} (%), mean ± sd over seeds",
                        title=f"{task}: teachers and students ({len(seeds)} seed(s); flagged runs left out)",
                        colours={METHOD_LABELS[r["method"]]: METHOD_COLOURS[r["method"]] for r in rows})
show_figure(fig, "04_teacher_student", figures_dir)

# %% [markdown]
# ## The question, paired by seed
#
# Does the student of the MCMI teacher beat the student of the CE teacher? Each seed trains both teachers and both
# students from the same start, so the comparison is the per-seed difference, with two intervals (over seeds, and
# over seeds and dev examples together), the smallest effect these seeds could detect (MDE80) and the teacher's
# mechanism check (did the MCMI teacher end *above* its CE twin's CMI?). Notebook 06 states the same comparison
# among the suite's ten, Holm-adjusted; here it stands alone, uncorrected.

# %%
question = one_comparison(records, task, "kd_mcmi", "kd_ce")
Markdown("\n".join(verdict_lines([question])) if question else "no student pairs to compare")

# %%
save_metrics(output_dir, {"rows": rows, "task": task, "seeds": seeds, "keys": [c.key for c in runs],
                                          "question": None if question is None else
                                          {k: question[k] for k in ("mean", "low", "high", "n", "verdict", "mechanism")
                                           if k in question}})


# %% [markdown]
# ## Exercise 1: Write the distillation loss
#
# Return $\alpha T^2\,\mathrm{KL}(p_t^T\,\|\,p_s^T) + (1-\alpha)\,\mathrm{CE}(z_s, y)$, with $p^T = \mathrm{softmax}(z/T)$ and the KL averaged over the batch. The check compares it with `cmi_toolkit.method.losses.distillation_loss`. *Discuss:* why would a teacher with *higher* CMI give the student more to learn from?
#
# Fill in the function, run the next cell; it says ✓ or ✗ with a hint. Solutions: `notebooks/solutions/solutions.py` (look after trying).

# %%
def kd_loss(student_logits, teacher_logits, labels, alpha, T):
    # your code here (torch is enough)
    raise NotImplementedError


# %%
from cmi_toolkit.course.exercises import check

check("kd_loss", kd_loss)

# %% [markdown]
# ## Exercise 2: The MCMI teacher's objective
#
# The teacher of this notebook is trained to *maximise* CMI in output space (Ye et al., ICLR 2024):
# $\mathcal L = \mathrm{CE}(z, y) - \lambda \frac1N\sum_i \mathrm{KL}(\mathrm{softmax}(z_i / T) \,\|\, g_{y_i})$,
# with the output centroids `centroids` (C × C) given. Write it. *Discuss:* why might a teacher whose outputs of one
# class are *more* spread out teach its student more than a sharper teacher with the same accuracy?
#
# Fill in the function, run the next cell; it says ✓ or ✗ with a hint. Solutions: `notebooks/solutions/solutions.py`.

# %%
def mcmi_teacher_loss(logits, labels, centroids, lam, T):
    # your code here (torch is enough)
    raise NotImplementedError


# %%
check("mcmi_teacher_loss", mcmi_teacher_loss)

# %% [markdown]
# **Reading the results.** The MCMI teacher may be a *worse* standalone classifier than the CE teacher: that is
# allowed, its objective trades some accuracy for richer output distributions. What matters is the students' rows and
# the paired line above. Read the verdict word together with its interval and MDE: "no difference detected" with an
# MDE of about one point says the teacher's CMI changed the student by less than that on this task, which is a
# finding, not a failure. Check the teacher's mechanism count first: a teacher that did not raise its CMI cannot
# test the idea.

# %% [markdown]
# **What to try next.** Set `task = "mrpc"` (the verdict's second distillation task, recorded as its runs land; the
# others train here, about half an hour each on a laptop); set `suite = "glue5"` for the output-space teacher with
# centroids fixed before training (its `teacher:` section; full data, best on a GPU).
#
# **Pitfalls.** A teacher that maximised CMI by collapsing to near-uniform outputs "wins" nothing: check its
# mechanism column and its accuracy. Smoke mode reads two seeds: an interval over two seeds is wide, read it as a
# pipeline check. Compare students over the same seeds (paired), never a best seed.
