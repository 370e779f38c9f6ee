# %% [markdown]
# # 02 · Measuring CMI, separation and NCMI
#
# `cmi_toolkit.method.measure.measure(model, dataset)` makes one no-grad pass and returns, in **both spaces**
# (feature $f_x$ and output $P_x$), per class and overall:
#
# * $\mathrm{CMI} = \frac1N\sum_i \mathrm{KL}(p_i \,\|\, g_{y_i})$: spread of each class around its centroid;
# * separation $\Gamma = \frac1N\sum_i \sum_{c\neq y_i} \frac{\pi_c}{1-\pi_{y_i}} H(p_i, g_c)$: distance to the
#   *other* classes' centroids ($H$ = cross-entropy, $\pi$ = class frequencies);
# * $\mathrm{NCMI} = \mathrm{CMI} / \Gamma$: lower is better.
#
# We measure a freshly initialised classifier, then follow the same numbers along fine-tuning.

# %% [markdown]
# **Objectives.** You will measure CMI, separation and NCMI of a model per class and along fine-tuning; write the separation.
#
# **Prerequisites.** notebook 00.
#
# **Time on a laptop CPU (2 cores; measured, see `results/course_times.json`).** smoke: under 4 min; default: under
# 2 min (the curve along fine-tuning is cached; another setting trains first, several minutes, with a progress bar).
#
# Papers: Sivakaran & Yang 2025 (arXiv 2502.11258), Yang et al. 2023 (arXiv 2309.09123), Ye et al., ICLR 2024 (MCMI teacher), Chen et al. 2024 (arXiv 2403.03348).

# %% tags=["parameters"]
# Parameters (papermill overrides this cell)
from cmi_toolkit import defaults as D  # the kit's one set of defaults

smoke = False
task = D.LAB_PRESET["task"]   # the lab preset: SST-2, 2,000 training examples, 3 epochs (its curve is cached)
model = D.MODEL
temperature = D.TEMPERATURE
seed = 0
cache_dir = str(D.REPO_ROOT / D.LAB_RESULTS_DIR)  # the course's cached lab runs (committed, read only)
results_dir = "outputs/lab_store"          # a curve not in the cache is trained and stored here (untracked)
train_missing = True     # False: show only what is cached
glue_dir = None
output_dir = "outputs/02_measure_cmi"
figures_dir = None        # default: <output_dir>/figures (untracked); `make figures` writes ../figures

# %%
from cmi_toolkit.course.notebook import P, check_parameters, save_metrics, setup

# every parameter checked (type, range) before anything runs: a mistake is one line here
check_parameters(globals(), smoke=P(bool), task=P(str), model=P(str), temperature=P(float, low=1e-6), seed=P(int, low=0),
                 cache_dir=P(str), results_dir=P(str), train_missing=P(bool), glue_dir=P(str, none=True), output_dir=P(str), figures_dir=P(str, none=True))
# smoke banner, output folders, at most 4 torch threads, the GLUE folder (argument, env or ../../shared)
output_dir, figures_dir, glue_dir = setup(smoke, output_dir, figures_dir, "glue", glue_dir)

import pandas as pd

from cmi_toolkit.course import lab
from cmi_toolkit.data.loading import load_glue, tokenize_glue
from cmi_toolkit.method.measure import measure
from cmi_toolkit.data.models import load_classifier, load_tokenizer
from cmi_toolkit.data.tasks import get_task
from cmi_toolkit.plotting import show_figure
from cmi_toolkit.course.figures import training_curve
from cmi_toolkit.course.widgets import text_progress

spec = get_task(task)
max_eval = 120 if smoke else None
tokenizer = load_tokenizer(model)
ds = load_glue(task, source=glue_dir, max_eval_samples=max_eval, seed=0)
dev = tokenize_glue(ds[spec.validation_splits[0]], tokenizer, spec)

# %% [markdown]
# ## Before fine-tuning

# %%
from transformers import set_seed

set_seed(seed)  # the same seeded head that the fine-tuning below starts from: this is its step 0
fresh = load_classifier(model, num_labels=spec.num_labels)
before = measure(fresh, dev, tokenizer, task=spec, temperature=temperature)

def per_class(summary):
    """Per class and overall, in both spaces (a summary of lab.per_class_summary)."""
    rows = []
    for space in ("feature", "output"):
        rep = summary[space]
        for c, name in enumerate(spec.label_names):
            rows.append({"space": space, "class": name, "CMI": rep["cmi"][c], "separation": rep["separation"][c],
                         "NCMI (CMI / Γ)": rep["cmi"][c] / rep["separation"][c]})
        rows.append({"space": space, "class": "all", "CMI": rep["all"]["cmi"], "separation": rep["all"]["separation"],
                     "NCMI (CMI / Γ)": rep["all"]["ncmi"]})
    return pd.DataFrame(rows)

print(f"accuracy {before.accuracy:.4f}")
per_class(lab.per_class_summary(before))

# %% [markdown]
# ## Along fine-tuning
#
# A `MeasureCallback` measures the model on the dev set every few optimiser steps of a CE fine-tuning: the lab
# preset's CE run (the λ = 0 model of notebook 01), measured every 25 steps. Its curve is cached with the course,
# so it loads at once; another setting trains here first (a few minutes on a laptop CPU, with a progress bar).

# %%
cfg = lab.lab_config(0.0, seed, smoke, task=task, model=model, temperature=temperature,
                     **(dict(max_train_samples=128, max_eval_samples=max_eval, batch_size=16) if smoke else {}))
every = 4 if smoke else lab.ALONG_EVERY
store = str(output_dir / "lab_store") if smoke else results_dir  # smoke: a scratch store of its own
along = lab.along_training(cfg, every, store, cache_dir=cache_dir, glue_dir=glue_dir, train=train_missing,
                           callbacks=[text_progress("fine-tuning (measured along the way)")])
history = pd.DataFrame(along["history"])[["step", "accuracy", "feature_cmi", "feature_separation", "feature_ncmi",
                                          "output_cmi"]]
history

# %%
# NBVAL_IGNORE_OUTPUT
majority = max(dev["label"].count(c) for c in set(dev["label"])) / len(dev)  # always the most frequent class
fig = training_curve(along["history"], majority=majority,
                     title=f"Along CE fine-tuning on {task}: one run (seed {seed}), measured on {len(dev)} dev examples")
show_figure(fig, "02_along_training", figures_dir)
first, last = along["history"][0], along["history"][-1]
print(f"step 0 → {last['step']}: accuracy {first['accuracy']:.3f} → {last['accuracy']:.3f}, feature CMI "
      f"{first['feature_cmi']:.3f} → {last['feature_cmi']:.3f} nats, feature NCMI {first['feature_ncmi']:.4f} → "
      f"{last['feature_ncmi']:.4f}")

# %%
machine = f"{along['machine'].get('cpu', '?')}, {along['machine'].get('threads', '?')} threads"
if along["cached"]:  # a cached run: its time is the one recorded when it was trained, not a time measured now
    when = str(along["machine"].get("started") or "?")[:10]
    print(f"after fine-tuning: accuracy {along['final']['accuracy']:.4f} (cached run; its recorded training time: "
          f"{along['train_s'] / 60:.1f} min on {machine}, {when})")
else:
    print(f"after fine-tuning: accuracy {along['final']['accuracy']:.4f} (trained here in {along['train_s'] / 60:.1f} min "
          f"on {machine})")
save_metrics(output_dir, {"before": before.summary(), "after": along["final"],
                                        "history": along["history"], "task": task})
per_class(along["final_per_class"])


# %% [markdown]
# ## Exercise 1: Write the separation Γ
#
# Return $\Gamma = \frac1N\sum_i\sum_{c\neq y_i} \frac{\pi_c}{1-\pi_{y_i}} H(p_i, g_c)$ with $\pi$ the class frequencies and $H(p, g) = -\sum_k p_k\log g_k$. The check compares it with `cmi_toolkit.method.information.separation`. *Discuss:* why divide CMI by Γ rather than report CMI alone?
#
# Fill in the function, run the next cell; it says ✓ or ✗ with a hint. Solutions: `notebooks/solutions/solutions.py` (look after trying).

# %%
def separation(probs, labels, num_classes):
    # your code here (torch is enough)
    raise NotImplementedError


# %%
from cmi_toolkit.course.exercises import check

check("separation", separation)

# %% [markdown]
# ## Exercise 2: Normalised CMI
#
# CMI alone rewards collapsing everything together (a constant model has CMI 0). NCMI divides it by the separation
# $\Gamma$ of exercise 1: $\mathrm{NCMI} = I(X; \hat Y \mid Y) / \Gamma$. Write it from the two pieces (your
# `separation` above, or recompute it). *Discuss:* a model's CMI halves while its $\Gamma$ halves too: has it
# become a better classifier by this measure?
#
# Fill in the function, run the next cell; it says ✓ or ✗ with a hint. Solutions: `notebooks/solutions/solutions.py`.

# %%
def ncmi(probs, labels, num_classes):
    # your code here (torch is enough)
    raise NotImplementedError


# %%
check("ncmi", ncmi)

# %% [markdown]
# **Reading the results.** At initialisation the head is random, so the outputs hardly depend on the input:
# output-space CMI is near zero and accuracy is at chance. Along the cached SST-2 run (the line printed under the
# curve) fine-tuning *raises* feature CMI several-fold, and NCMI with it, while accuracy climbs from chance to over
# 80 %: the model spreads the examples of each class apart inside itself faster than it separates the classes.
# That spread is what the CMI penalty of notebook 01 works against.

# %% [markdown]
# **What to try next.** Set `temperature = 1.0`, then `0.05`, and explain the change with notebook 00's T table;
# set `task = "rte"` (a harder task, not cached: it trains first, several minutes) and compare the curves; in the
# per-class table, find the
# looser class: is it the minority class?
#
# **Pitfalls.** CMI measured in one space says little about the other; state the space and T with every number.
# Small evaluation sets bias CMI low (notebook 00). A model at chance can have a low *output* CMI simply because
# its outputs ignore the input.
