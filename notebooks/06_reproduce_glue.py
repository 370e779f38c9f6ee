# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

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
# The default suite is `cpu5` (SST-2 and CoLA, CE vs CMI-minimised, five seeds, every record with its provenance
# and checks). Set `suite = "cpu"` for the older three-seed records of four tasks and six methods, made before the
# checks: their verdicts carry "†".

# %% [markdown]
# **Objectives.** You will reproduce the GLUE table from run records and state each comparison with a paired interval; write the interval.
#
# **Prerequisites.** notebooks 01 and 04; a t-test.
#
# **Time on a laptop CPU.** seconds (it reads records).
#
# Papers: Sivakaran & Yang 2025 (arXiv 2502.11258), Yang et al. 2023 (arXiv 2309.09123), Ye et al., ICLR 2024 (MCMI teacher), Chen et al. 2024 (arXiv 2403.03348).

# %% tags=["parameters"]
# Parameters (papermill overrides this cell)
smoke = False
suite = "cpu5"           # or "cpu" (older records, before the checks), "glue5" (the GPU verdict suite)
results_dir = "../results"
output_dir = "outputs/06_reproduce_glue"
figures_dir = "../figures"

# %%
if smoke:
    print("smoke: pipeline check, numbers are not meaningful")
from pathlib import Path

from IPython.display import Markdown

from cmi_toolkit.reproduce import load_suite, suite_records, summarise, summary_figure, summary_markdown
from cmi_toolkit.results import ResultStore, write_json
from cmi_toolkit.viz import show_figure

output_dir, figures_dir = Path(output_dir), Path(figures_dir)
spec = load_suite(suite)
records, ignored = suite_records(ResultStore(results_dir), spec)
print(f"{len(records)} run records of suite {spec['suite']} in {results_dir} ({ignored} others ignored)")
rows = summarise(records)
Markdown("\n".join(summary_markdown(rows, f"suite {spec['suite']}", ignored)[2:]))

# %%
# NBVAL_IGNORE_OUTPUT
fig = summary_figure(rows, title=f"GLUE dev, suite {spec['suite']} (mean and 95 % interval over seeds)")
show_figure(fig, "06_glue_summary", figures_dir)

# %%
write_json(Path(output_dir) / "metrics.json", {"rows": rows, "records": len(records)})


# %% [markdown]
# ## Exercise: Write the paired confidence interval
#
# Given per-seed scores of a method and its baseline (same seeds, same order), return the 95 % paired-t interval (low, high) of their difference. The check compares it with `cmi_toolkit.evidence.paired_comparison`. *Discuss:* why is a positive mean with every seed won still "no difference detected" when the interval includes 0?
#
# Fill in the function, run the next cell; it says ✓ or ✗ with a hint. Solutions: `notebooks/solutions/solutions.py` (look after trying).

# %%
def paired_interval(method, baseline):
    # your code here (torch is enough)
    raise NotImplementedError


# %%
from cmi_toolkit.exercises import check

check("paired_interval", paired_interval)

# %% [markdown]
# **What to try next.** Run `cmi-toolkit reproduce --suite cpu5 --tasks sst2 --seeds 0` and watch the second call
# skip what is stored; read a record in `results/runs/` and find its commit, device and data fingerprint; compute
# how many seeds the MDE80 column says you would need for a 0.5-point effect.
#
# **Pitfalls.** A mean difference with an interval that includes 0 is "no difference detected", however large it
# looks; a "†" marks records that predate the mechanism checks; a flagged (degenerate) run is excluded, not
# averaged in.
