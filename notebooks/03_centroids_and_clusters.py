# %% [markdown]
# # 03 · Centroids and clusters
#
# The FPDC $g_y = \mathbb{E}[f_X \mid Y=y]$ is a probability distribution over the pooled feature dimensions, and
# the CMI is the mean KL of each example's $f_x$ to its class's FPDC. This module looks at both directly, for a
# CE-fine-tuned model and a CMI-minimised one trained on the same data: the **lab runs of notebook 01**
# ($\lambda = 0$ and the default $\lambda$, same seed), loaded from the kit's cache, so nothing is retrained.
#
# Three views, each honest about what it shows:
#
# 1. the two models' FPDCs as one heatmap **on one colour scale**;
# 2. each example's $\mathrm{KL}(f_x \,\|\, g_y)$ as a histogram per class: its mean *is* the CMI;
# 3. the cloud of $f_x$ projected with **PCA**. PCA is linear, so the projection of a class's centroid is exactly the
#    mean of its projected points: the crosses sit where the centroid really is. (A UMAP map is shown last for its
#    neighbourhoods; being non-linear, it has no place for a centroid, so none is drawn.)

# %% [markdown]
# **Objectives.** You will read FPDCs and class clusters of a CE and a CMI-minimised model, see CMI as the mean of a
# per-example KL, and write the EMA centroid update.
#
# **Prerequisites.** notebooks 00 and 01.
#
# **Time on a laptop CPU (2 cores; measured, see `results/course_times.json`).** smoke: under 2 min; default: under
# 1 min with the cached lab runs and views (about 2 minutes more when the two models must be trained first).
#
# Papers: Sivakaran & Yang 2025 (arXiv 2502.11258), Yang et al. 2023 (arXiv 2309.09123), Ye et al., ICLR 2024 (MCMI teacher), Chen et al. 2024 (arXiv 2403.03348).

# %% tags=["parameters"]
# Parameters (papermill overrides this cell)
from cmi_toolkit import defaults as D  # the kit's one set of defaults

smoke = False
task = D.LAB_PRESET["task"]
model = D.MODEL
cmi_weight = D.CMI_WEIGHT
temperature = D.TEMPERATURE
seed = D.LAB_SEEDS[0]
cache_dir = str(D.REPO_ROOT / D.LAB_RESULTS_DIR)  # notebook 01's lab runs (cached views of them are committed, read only)
results_dir = "outputs/lab_store"          # runs and views not in the cache are made here (untracked)
train_missing = True     # train a model whose view is neither cached nor computable from a kept model
glue_dir = None
output_dir = "outputs/03_centroids_and_clusters"
figures_dir = None        # default: <output_dir>/figures (untracked); `make figures` writes ../figures

# %%
from cmi_toolkit.course.notebook import P, check_parameters, save_metrics, setup, smoke_note

# every parameter checked (type, range) before anything runs: a mistake is one line here
check_parameters(globals(), smoke=P(bool), task=P(str), model=P(str), cmi_weight=P(float, low=0), temperature=P(float, low=1e-6),
                 seed=P(int, low=0), cache_dir=P(str), results_dir=P(str), train_missing=P(bool), glue_dir=P(str, none=True), output_dir=P(str), figures_dir=P(str, none=True))
# smoke banner, output folders, at most 4 torch threads, the GLUE folder (argument, env or ../../shared)
output_dir, figures_dir, glue_dir = setup(smoke, output_dir, figures_dir, "glue", glue_dir)

import numpy as np
import pandas as pd

from cmi_toolkit.course import lab
from cmi_toolkit.course.figures import cluster_figure, fpdc_heatmap, kl_histograms, side_by_side
from cmi_toolkit.plotting import show_figure

if smoke:  # the committed cache's views, nothing trained
    results_dir, train_missing = str(output_dir / "lab_store"), False
    smoke_note(results_dir=results_dir, train_missing=train_missing)
views = {}
for name, lam in (("CE", 0.0), ("CMI", cmi_weight)):
    cfg = lab.lab_config(lam, seed, task=task, model=model, temperature=temperature)
    views[name] = lab.model_view(cfg, results_dir, glue_dir, train=train_missing, cache_dir=cache_dir)
pd.DataFrame({name: {k: v[k] for k in ("accuracy", "cmi", "separation")} for name, v in views.items()}).T.round(4)

# %% [markdown]
# ## 1 · The FPDCs, on one scale
#
# Each row is a distribution over the feature dimensions (it sums to 1). Columns are ordered by how much the CE
# model's two centroids differ, so the dimensions that tell the classes apart sit at the two ends.

# %%
# NBVAL_IGNORE_OUTPUT
fig = fpdc_heatmap(views)
show_figure(fig, "03_fpdc", figures_dir)

# %% [markdown]
# ## 2 · CMI as a mean: the per-example KL
#
# $\mathrm{CMI} = \frac1N \sum_i \mathrm{KL}(f_{x_i} \,\|\, g_{y_i})$. The histograms show the terms of that sum, per
# class; the dotted line is their mean. A CMI-minimised model should move mass towards 0.

# %%
# NBVAL_IGNORE_OUTPUT
fig = kl_histograms(views)
show_figure(fig, "03_kl_histograms", figures_dir)

# %% [markdown]
# ## 3 · The clouds around the centroids (PCA)
#
# One projection for both models: the first two principal components of the two models' $f_x$ taken together, so
# both panels share their axes and a tighter cloud around its cross is tighter on the page. PCA is linear, so each
# cross (a projected FPDC) is exactly the mean of its class's projected points; the check below confirms it.

# %%
# NBVAL_IGNORE_OUTPUT
runs = {name: lab.lab_config(lam, seed, task=task, model=model, temperature=temperature)
        for name, lam in (("CE", 0.0), ("CMI", cmi_weight))}
shared = lab.shared_projection(runs, results_dir, glue_dir, train=train_missing, cache_dir=cache_dir)
panels, titles, summary = [], [], {}
for name, v in views.items():
    p = shared["models"][name]
    xy, labels, cxy = np.asarray(p["xy"]), np.asarray(p["labels"]), np.asarray(p["centroid_xy"])
    gap = max(float(np.abs(xy[labels == c].mean(0) - cxy[c]).max()) for c in range(len(p["label_names"])))
    spread = float(np.mean([np.linalg.norm(xy[labels == c] - cxy[c], axis=1).mean() for c in range(len(cxy))]))
    title = f"{name}: acc {v['accuracy']:.3f}, CMI {v['cmi']:.3f}<br>mean distance to its cross {spread:.3f}"
    panels.append(cluster_figure(xy, labels, cxy, p["label_names"], title=title, method="PCA"))
    titles.append(title)
    summary[name.lower()] = {"accuracy": v["accuracy"], "feature_cmi": v["cmi"], "separation": v["separation"],
                             "mean_kl": float(np.mean(v["kl"])), "centroid_vs_mean_of_points": gap,
                             "mean_distance_to_centroid": spread}
    print(f"{name}: largest distance between a projected centroid and the mean of its points: {gap:.1e}")
pair = side_by_side(panels, titles, shared_axes=True,
                    title=f"CE vs CMI-minimised: one PCA of both models' f_x ({sum(shared['explained']):.0%} of "
                          "variance), centroids marked")
show_figure(pair, "03_clusters_side_by_side", figures_dir)

# %% [markdown]
# For comparison, UMAP keeps neighbourhoods and bends distances; read it for "which examples sit together", never
# for where a centroid is.

# %%
# NBVAL_IGNORE_OUTPUT
umap_panels = [cluster_figure(np.asarray(v["umap_xy"]), np.asarray(v["labels"]), None, v["label_names"], title=name,
                              method="UMAP") for name, v in views.items() if v.get("umap_xy")]
if umap_panels:
    fig = side_by_side(umap_panels, list(views), title="UMAP of f_x (non-linear: no centroids)")
    show_figure(fig, "03_clusters_umap", figures_dir)
save_metrics(output_dir, summary)


# %% [markdown]
# ## Exercise 1: Write the EMA centroid update
#
# Given the current centroids (C × K), a batch's `probs` and `labels` and the momentum `m`, return the new centroids: $g_y \leftarrow m\,g_y + (1-m)\,\bar p_y$ for each class $y$ present in the batch ($\bar p_y$ its batch mean), the others unchanged. The check compares it with `CentroidEstimator.update_ema`. *Discuss:* what does `m` trade off?
#
# Fill in the function, run the next cell; it says ✓ or ✗ with a hint. Solutions: `notebooks/solutions/solutions.py` (look after trying).

# %%
def ema_update(centroids, probs, labels, m):
    # your code here (torch is enough)
    raise NotImplementedError


# %%
from cmi_toolkit.course.exercises import check

check("ema_update", ema_update)

# %% [markdown]
# ## Exercise 2: One KL per example
#
# The histograms above show, for each dev example, $\mathrm{KL}(f_x \,\|\, g_{y})$ to its own class centroid;
# their mean is the CMI. Return these N values (centroids fitted to the given rows). *Discuss:* an example whose KL
# to its own centroid is large but to the other class's centroid is small: what does the model do with it?
#
# Fill in the function, run the next cell; it says ✓ or ✗ with a hint. Solutions: `notebooks/solutions/solutions.py`.

# %%
def kl_per_example(probs, labels, num_classes):
    # your code here (torch is enough)
    raise NotImplementedError


# %%
check("kl_per_example", kl_per_example)

# %% [markdown]
# **Reading the figures.** Lower CMI shows as KL mass nearer 0 and tighter clouds around each cross. Whether that
# also moves the clouds apart (higher separation) is what decides accuracy; compare the separation in the table.
#
# **What to try next.** Set `cmi_weight = 1.0` (a cached lab run) and see how far the histograms move; set
# `temperature = 1.0` (trains two models) and watch the FPDCs flatten towards uniform; compare seeds 0, 1, 2.
#
# **Pitfalls.** Do not read centroids off a UMAP or t-SNE map. Colour scales that differ between two heatmaps make
# any two distributions look alike. The clusters here are of the *dev* set: the training set's are tighter.
