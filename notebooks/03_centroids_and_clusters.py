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
# # 03 · Centroids and clusters
#
# The FPDC $g_y = \mathbb{E}[f_X \mid Y=y]$ is a probability distribution over the pooled feature dimensions.
# Here we look at them directly (a heatmap) and at the cloud of $f_x$ around them, embedded in 2-D with **UMAP**
# (umap-learn; PCA only when umap-learn is missing, and the figure title says which). Left a CE-fine-tuned model,
# right a CMI-minimised one, trained on the same data.

# %% [markdown]
# **Objectives.** You will look at the FPDCs and the class clusters of a CE and a CMI-minimised model; write the EMA centroid update.
#
# **Prerequisites.** notebooks 00 and 01.
#
# **Time on a laptop CPU.** about 1 minute (smoke), a few minutes (full).
#
# Papers: Sivakaran & Yang 2025 (arXiv 2502.11258), Yang et al. 2023 (arXiv 2309.09123), Ye et al., ICLR 2024 (MCMI teacher), Chen et al. 2024 (arXiv 2403.03348).

# %% tags=["parameters"]
# Parameters (papermill overrides this cell)
from cmi_toolkit import defaults as D  # the kit's one set of defaults

smoke = False
task = "sst2"
model = D.MODEL
cmi_weight = D.CMI_WEIGHT
temperature = D.TEMPERATURE
seed = 0
glue_dir = None
output_dir = "outputs/03_centroids_and_clusters"
figures_dir = "../figures"

# %%
if smoke:
    print("smoke: pipeline check, numbers are not meaningful")

from cmi_toolkit.notebook import data_dir, folders
from cmi_toolkit.results import write_json

output_dir, figures_dir = folders(output_dir, figures_dir)
glue_dir = data_dir("glue", glue_dir)

import numpy as np
import torch

from cmi_toolkit.experiments import RunConfig, train_and_measure
from cmi_toolkit.viz import centroid_heatmap, cluster_figure, embed_2d, save_figure, side_by_side

size = dict(max_train_samples=256, max_eval_samples=200, epochs=1) if smoke else dict(max_train_samples=2000, epochs=3)
runs = {}
for method in ("ce", "cmi"):
    cfg = RunConfig(task=task, model=model, method=method, seed=seed, cmi_weight=cmi_weight, temperature=temperature,
                    centroid_mode="ema", **size)
    runs[method] = train_and_measure(cfg, glue_dir=glue_dir, progress=False, keep_outputs=True, save_checkpoints=False)
    rep = runs[method].report
    print(f"{method}: accuracy {rep.accuracy:.4f}, feature CMI {rep.feature.cmi:.4f}, NCMI {rep.feature.ncmi:.4f}")

# %% [markdown]
# ## The FPDCs themselves

# %%
# NBVAL_IGNORE_OUTPUT
label_names = list(runs["ce"].task.label_names)
for method, run in runs.items():
    fig = centroid_heatmap(run.report.feature.centroids.numpy(), label_names, title=f"FPDCs after {method.upper()} fine-tuning")
    save_figure(fig, f"03_fpdc_{method}", figures_dir)
    display(fig)

# %% [markdown]
# ## Clusters
#
# Each dot is one dev example's $f_x$; crosses are the centroids mapped into the same embedding.

# %%
# NBVAL_IGNORE_OUTPUT
summary, panels, titles = {}, [], []
for method, run in runs.items():
    rep = run.report
    f = torch.softmax(rep.features.double() / temperature, -1).numpy()
    xy, cxy, used = embed_2d(f, rep.feature.centroids.double().numpy(), method="umap", seed=seed)
    title = f"{method.upper()}: acc {rep.accuracy:.3f}, CMI {rep.feature.cmi:.3f}"
    fig = cluster_figure(xy, rep.labels.numpy(), cxy, label_names, title=title, method=used)
    save_figure(fig, f"03_clusters_{method}", figures_dir)
    panels.append(fig)
    titles.append(title)
    summary[method] = {**rep.summary(), "embedding": used}
pair = side_by_side(panels, titles, title=f"CE vs CMI-minimised: {used} of f_x, centroids marked")
save_figure(pair, "03_clusters_side_by_side", figures_dir)
display(pair)
write_json(output_dir / "metrics.json", summary)


# %% [markdown]
# ## Exercise: Write the EMA centroid update
#
# Given the current centroids (C × K), a batch's `probs` and `labels` and the momentum `m`, return the new centroids: $g_y \leftarrow m\,g_y + (1-m)\,\bar p_y$ for each class $y$ present in the batch ($\bar p_y$ its batch mean), the others unchanged. The check compares it with `CentroidEstimator.update_ema`. *Discuss:* what does `m` trade off?
#
# Fill in the function, run the next cell; it says ✓ or ✗ with a hint. Solutions: `notebooks/solutions/solutions.py` (look after trying).

# %%
def ema_update(centroids, probs, labels, m):
    # your code here (torch is enough)
    raise NotImplementedError


# %%
from cmi_toolkit.exercises import check

check("ema_update", ema_update)

# %% [markdown]
# **Reading the figures.** Lower CMI shows as tighter clouds around each cross. Whether that also moves the clouds
# apart (higher separation) is what decides accuracy; compare the NCMI printed above.
