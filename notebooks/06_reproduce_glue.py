# %% [markdown]
# # 06 · Reproducing the GLUE results
#
# Every number in the README's results table comes from run records in `results/runs/`, one JSON file per
# (task, method, model, seed, parameters), written by
#
# ```bash
# python benchmarks/sweep_cmi.py --results results/sweep --write-config   # settings, on held-out training data
# cmi-toolkit reproduce --suite cpu5 --results_dir results               # all runs; finished ones are skipped
# cmi-toolkit report --suite cpu5 --results_dir results                  # summary_cpu5.md, figure
# ```
#
# The same batch can run through papermill: `--executor papermill` executes notebook 04 once per task and
# seed (all the suite's methods, the same run keys, the same store) and keeps each executed notebook in
# `results/notebooks/`; by hand, one task:
#
# ```bash
# cmi-toolkit reproduce --suite cpu5 --executor papermill --results_dir results
# papermill notebooks/04_teacher_student_kd.ipynb out.ipynb -p task mrpc -p results_dir results
# ```
#
# This notebook reads the records of one suite (and nothing else in the store) and rebuilds the table and
# figure the way the kit states evidence: every comparison is paired by seed, with a 95 % interval, a p-value,
# the seeds won and the smallest effect the seeds could detect (MDE80); "better" or "worse" only when the
# interval excludes 0. Degenerate runs (training loss at ln K, one predicted class, near-uniform outputs) are
# flagged and never counted, and records that predate those checks are named as such.
#
# The default suite is `cpu_verdict`, the kit's verdict from its own CPU: SST-2, CoLA, MRPC and RTE, CMI-minimised
# (defaults and held-out-tuned settings) against CE, and the distilled students of an MCMI and a CE teacher, under
# a plan committed before the first run. While it is still running, the tables below use what is recorded and say
# so. Set `suite = "cpu5"` (SST-2 and CoLA, five seeds) or `suite = "cpu"` (older three-seed records made before
# the checks: their verdicts carry "†").

# %% [markdown]
# **Objectives.** You will reproduce the GLUE table from run records and state each comparison with a paired interval; write the interval.
#
# **Prerequisites.** notebooks 01 and 04; a t-test.
#
# **Time on a laptop CPU (2 cores; measured, see `results/course_times.json`).** smoke: under 2 min; default: under
# 2 min (it reads records).
#
# Papers: Sivakaran & Yang 2025 (arXiv 2502.11258), Yang et al. 2023 (arXiv 2309.09123), Ye et al., ICLR 2024 (MCMI teacher), Chen et al. 2024 (arXiv 2403.03348).

# %% tags=["parameters"]
# Parameters (papermill overrides this cell)
from cmi_toolkit import defaults as D  # the kit's one set of defaults

smoke = False
suite = "cpu_verdict"    # or "cpu5", "cpu5kd", "bf16eq", "cpu" (older records, before the checks), "glue5" (GPU)
results_dir = str(D.REPO_ROOT / "results")  # the kit's committed records, found from the package
output_dir = "outputs/06_reproduce_glue"
figures_dir = None        # default: <output_dir>/figures (untracked); `make figures` writes ../figures

# %%
from cmi_toolkit.course.notebook import P, check_parameters, folders, save_metrics, shown_path

# every parameter checked (type, range) before anything runs: a mistake is one line here
check_parameters(globals(), smoke=P(bool), suite=P(str), results_dir=P(str), output_dir=P(str), figures_dir=P(str, none=True))
if smoke:
    print("smoke: pipeline check, numbers are not meaningful")
from pathlib import Path

from IPython.display import Markdown

from cmi_toolkit.runs.suites import load_suite, suite_records
from cmi_toolkit.evidence.report import summarise, summary_figure, summary_markdown
from cmi_toolkit.runs.store import ResultStore
from cmi_toolkit.plotting import show_figure

output_dir, figures_dir = folders(output_dir, figures_dir)
spec = load_suite(suite)
records, ignored = suite_records(ResultStore(results_dir), spec)
print(f"{len(records)} run records of suite {spec['suite']} in {shown_path(results_dir)} ({ignored} others ignored)")
rows = summarise(records)
Markdown("\n".join(summary_markdown(rows, f"suite {spec['suite']}", ignored)[2:]))

# %%
# NBVAL_IGNORE_OUTPUT
fig = summary_figure(rows, title=f"GLUE dev, suite {spec['suite']} (mean and 95 % interval over seeds)")
show_figure(fig, "06_glue_summary", figures_dir)

# %% [markdown]
# ## Reading a verdict: two intervals, MDE, Holm
#
# A record keeps every dev prediction, so each comparison can be re-examined without retraining. Two things are
# random in a suite, and each interval covers a different one:
#
# * **seeds** (paired t): run the same recipe with another seed and the difference moves; the dev set is held
#   fixed. Formula: mean d ± t₀.₉₇₅,ₙ₋₁ · sd(d)/√n over the per-seed differences d.
# * **seeds + examples** (paired bootstrap): the dev set is one sample of the task too. Each replicate redraws the
#   seeds *and* the dev examples (the same examples for both methods, so the pairing is kept) and recomputes the
#   metric from the predictions; the interval is the 2.5–97.5 % percentile of those replicate differences.
#
# The verdict takes the wider of the two. **MDE80** is the smallest true difference that these seeds would detect
# four times out of five: when the interval straddles 0 *and* the MDE80 is small (say 0.4 points), the data rule out
# any effect worth having; when MDE80 is large, "no difference detected" says only that the seeds were too few.
# The plan's stopping rule acts on exactly that: its last line below names the comparisons whose MDE80 is above
# the plan's target and says whether the budget leaves room to give them more seeds.
# A suite asks several questions at once, and with ten tests at 5 % one false "better" is likely; **Holm**
# multiplies the smallest p by 10, the next by 9, ... (keeping the order), so the whole family's chance of any
# false verdict stays under 5 %. The plan, committed before the runs, fixes the family in advance.
#
# **Why one comparison shows two p-values.** The summary table above gives the paired t-test's p over seeds (its
# column says so). The family table below gives, for the same comparison, the larger of that p and the paired
# bootstrap's (seeds + examples), because the verdict must hold under both sources of randomness; Holm adjusts
# that larger one. So CoLA's CMI-minimised − CE can read p 0.089 above and 0.231 below: the bootstrap also counts
# the dev set's own sampling. **Pooling stays within one metric**: a point of accuracy, of F1 and of Matthews'
# correlation are different units, so each question is pooled over the tasks that share a headline metric, and the
# pooled line names the tasks it leaves out.

# %%
from cmi_toolkit.runs.plan import plan_lines, plan_status, stopping_lines
from cmi_toolkit.evidence.verdicts import family_table, family_verdicts, not_counted, pooled

family = family_verdicts(records, spec)
pools = pooled(family, exclude=not_counted(spec))
status = plan_status(spec, spec.get("_file"), records)
Markdown("\n".join(family_table(family, pools) + [""] + plan_lines(status) + stopping_lines(status, family)))

# %% [markdown]
# ### The answer in one sentence per question
#
# The README states the suite's answer to each question in one sentence, generated from these same verdicts: the
# tasks that came out better or worse (with the interval the verdict used), the others as "no difference
# detected", the smallest effect the seeds could detect (MDE80), the pooled estimate and the mechanism checks.
# Read it against the table above: every clause is one of its rows or its pooled line. (While a suite's runs are
# not all recorded, the README adds "so far (partial)".)

# %%
from cmi_toolkit.evidence.verdicts import answers

Markdown("\n".join(answers(family, pools)))

# %% [markdown]
# ## The forest plot
#
# One row per comparison: its difference (a square) and the interval the verdict uses; one diamond per question,
# the random-effects pooled estimate across tasks (its width is the pooled interval; the tasks' spread around it,
# τ² and I², says how much the effect differs between tasks). The dashed line is 0: a row whose bar crosses it is
# "no difference detected". The axis is symmetric, so a leaning pattern is visible at a glance.

# %%
# NBVAL_IGNORE_OUTPUT
from cmi_toolkit.evidence.figures import forest_plot

if pools:
    show_figure(forest_plot(family, pools, f"Paired Δ per task and pooled, suite {spec['suite']}"),
                f"06_forest_{spec['suite']}", figures_dir)
else:
    print("no question has comparisons on two tasks yet: no pooled estimate to draw")

# %%
save_metrics(output_dir, {"rows": rows, "records": len(records),
                                               "family": [{k: r.get(k) for k in ("task", "method", "baseline", "n",
                                                                                 "mean", "low", "high", "p", "p_holm",
                                                                                 "verdict", "used")}
                                                          for r in family]})


# %% [markdown]
# ## Exercise 1: Write the paired confidence interval
#
# Given per-seed scores of a method and its baseline (same seeds, same order), return the 95 % paired-t interval (low, high) of their difference. The check compares it with `cmi_toolkit.evidence.statistics.paired_comparison`. *Discuss:* why is a positive mean with every seed won still "no difference detected" when the interval includes 0?
#
# Fill in the function, run the next cell; it says ✓ or ✗ with a hint. Solutions: `notebooks/solutions/solutions.py` (look after trying).

# %%
def paired_interval(method, baseline):
    # your code here (torch is enough)
    raise NotImplementedError


# %%
from cmi_toolkit.course.exercises import check

check("paired_interval", paired_interval)

# %% [markdown]
# ## Exercise 2: Holm's adjustment
#
# The verdicts above test ten comparisons at once; Holm's step-down method keeps the chance of any false "better"
# or "worse" at 5 %. Sort the $m$ p-values ascending; the $k$-th smallest becomes $(m - k + 1)\,p_{(k)}$; take
# the running maximum along the sorted order, cap at 1, and return the values in the order given. *Discuss:*
# why does Holm never reject less than Bonferroni ($m\,p$), and why does a family with one strong effect still
# leave the others at "no difference detected"?
#
# Fill in the function, run the next cell; it says ✓ or ✗ with a hint. Solutions: `notebooks/solutions/solutions.py`.

# %%
def holm(pvalues):
    # your code here (torch is enough)
    raise NotImplementedError


# %%
check("holm", holm)

# %% [markdown]
# **What to try next.** Compare `suite = "cpu5"` with `suite = "cpu_verdict"`: the same SST-2 question, with and
# without the examples' interval; count how many comparisons Holm turns from "better" into "no difference
# detected". Run `cmi-toolkit reproduce --suite cpu5 --tasks sst2 --seeds 0` and watch the second call
# skip what is stored; read a record in `results/runs/` and find its commit, device and data fingerprint; compute
# how many seeds the MDE80 column says you would need for a 0.5-point effect.
#
# **Pitfalls.** A mean difference with an interval that includes 0 is "no difference detected", however large it
# looks; a raw p below 0.05 in a family of ten is not a finding until Holm says so; the seeds interval alone
# ignores that the dev set is a sample; a "†" marks records that predate the mechanism checks; a flagged (degenerate) run is excluded, not
# averaged in.
