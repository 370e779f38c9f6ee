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
# # 00 · A classifier as a Markov source
#
# A transformer classifier reads a token sequence **x** and emits a label. Following Sivakaran & Yang (2025) we
# view it as a *high-order Markov source*: the input sequence is the source's state, and from that state the model
# emits symbols from two distributions:
#
# * the **label prediction** $\hat Y \sim P_x = \mathrm{softmax}(z_x / T)$ (output space), and
# * a **feature index** $Z \sim f_x = \mathrm{softmax}(h_x / T)$ over the dimensions of the pooled feature vector
#   $h_x$ that the classification head reads (feature space).
#
# With the true label $Y$, $Y \to X \to (\hat Y, Z)$ is a Markov chain. The **conditional mutual information**
#
# $$I(X; \hat Y \mid Y) = \mathbb{E}\left[ \mathrm{KL}(P_X \,\|\, Q_Y) \right], \qquad Q_y = \mathbb{E}[P_X \mid Y = y]$$
#
# measures how much a model's output still depends on *which* example of a class it saw: low CMI means tight
# class clusters. $Q_y$ is the **output probability distribution centroid** (OPDC) of class $y$; its feature-space
# twin $g_y = \mathbb{E}[f_X \mid Y = y]$ is the **FPDC**.
#
# This notebook builds a *synthetic* class-conditional Markov source where everything is exact, so the kit's
# estimator can be checked against the truth.

# %% [markdown]
# **Objectives.** You will read a classifier as a Markov source; derive CMI as an expected KL; estimate it and see the estimator's small-sample bias.
#
# **Prerequisites.** probability, entropy and KL divergence; Python and PyTorch basics.
#
# **Time on a laptop CPU.** under a minute (smoke), a few minutes (full).
#
# Papers: Sivakaran & Yang 2025 (arXiv 2502.11258), Yang et al. 2023 (arXiv 2309.09123), Ye et al., ICLR 2024 (MCMI teacher), Chen et al. 2024 (arXiv 2403.03348).

# %% tags=["parameters"]
# Parameters (papermill overrides this cell)
smoke = False           # True: fewer Monte-Carlo repetitions (a pipeline check)
seed = 0
alphabet_size = 3
order = 2
length = 8
output_dir = "outputs/00_markov_source_view"
figures_dir = "../figures"

# %%
if smoke:
    print("smoke: pipeline check, numbers are not meaningful")
import numpy as np
import torch

from cmi_toolkit.information import class_centroids, conditional_mutual_information
from cmi_toolkit.markov import SyntheticMarkovSource
from cmi_toolkit.results import write_json
from cmi_toolkit.viz import convergence_figure, save_figure
from pathlib import Path

output_dir, figures_dir = Path(output_dir), Path(figures_dir)
output_dir.mkdir(parents=True, exist_ok=True)

# %% [markdown]
# ## The source
#
# One $k$-th order Markov chain per class: the first $k$ symbols are uniform, every later symbol is drawn from the
# class's transition table $T_y[\text{last } k \text{ symbols}, \cdot]$. With a small alphabet and short
# sequences we can enumerate **every** sequence, so $P(x \mid y)$, the Bayes posterior $P(y \mid x)$ and the CMI
# of any classifier are exact.

# %%
source = SyntheticMarkovSource(num_classes=2, alphabet_size=alphabet_size, order=order, length=length, seed=seed)
sequences = source.all_sequences()
print(f"{len(sequences):,} possible sequences of length {length} over {alphabet_size} symbols")
seqs, labels = source.sample(5, seed=seed)
for s, y in zip(seqs.tolist(), labels.tolist()):
    print("class", y, "sequence", "".join("abc"[i] for i in s))

# %% [markdown]
# ## Exact CMI of two classifiers
#
# * the **Bayes classifier** $P(\hat y \mid x) = P(y \mid x)$, and
# * a **tempered** copy of it (posterior logits divided by 4: less confident, so its outputs vary less within a class).
#
# `exact_cmi` sums over all sequences: $\sum_y P(y) \sum_x P(x\mid y)\,\mathrm{KL}(P(\cdot\mid x)\,\|\,Q_y)$.

# %%
bayes = source.posterior(sequences)
tempered = torch.softmax(torch.log(bayes) / 4, dim=-1)
exact = {"bayes": source.exact_cmi(bayes), "tempered": source.exact_cmi(tempered)}
test_x, test_y = source.sample(20000, seed=seed + 1)
accuracy_of_bayes = float((source.posterior(test_x).argmax(-1) == test_y).double().mean())
print(f"exact I(X; Y^ | Y), Bayes classifier:    {exact['bayes']:.6f} nats")
print(f"exact I(X; Y^ | Y), tempered classifier: {exact['tempered']:.6f} nats")
print(f"Bayes accuracy on 20,000 samples: {accuracy_of_bayes:.4f}")

# %% [markdown]
# ## The kit's estimator against the truth
#
# `conditional_mutual_information(probs, labels, num_classes)` is the plug-in estimator: per-class centroids of
# the rows, then the mean KL of each row to its class centroid. With more samples it converges to the exact value.

# %%
ns = [100, 300, 1000, 3000, 10000] if smoke else [100, 300, 1000, 3000, 10000, 30000, 100000]
reps = 3 if smoke else 10
means, stds = [], []
for n in ns:
    values = []
    for r in range(reps):
        s, y = source.sample(n, seed=1000 * r + n)
        values.append(conditional_mutual_information(source.posterior(s), y, 2).item())
    means.append(float(np.mean(values)))
    stds.append(float(np.std(values)))
    print(f"N = {n:>6}: estimate {means[-1]:.5f} ± {stds[-1]:.5f}   (exact {exact['bayes']:.5f})")

# %%
# NBVAL_IGNORE_OUTPUT
fig = convergence_figure(ns, means, exact["bayes"], stds)
save_figure(fig, "00_cmi_convergence", figures_dir)
fig

# %% [markdown]
# ## OPDCs of the Bayes classifier
#
# The OPDC $Q_y$ is the average output distribution over the examples of class $y$. A good classifier has
# $Q_0$ leaning to class 0 and $Q_1$ to class 1; CMI is the average distance of the individual outputs from them.

# %%
s, y = source.sample(20000, seed=seed + 7)
centroids = class_centroids(source.posterior(s), y, 2)
for c in range(2):
    print(f"Q_{c} = {[round(v, 4) for v in centroids[c].tolist()]}")
write_json(output_dir / "metrics.json", {"exact_cmi_bayes": exact["bayes"], "exact_cmi_tempered": exact["tempered"],
                                        "estimates": dict(zip(map(str, ns), means)), "bayes_accuracy": accuracy_of_bayes,
                                        "opdc": centroids.tolist()})


# %% [markdown]
# ## Exercise: Write the plug-in CMI estimate
#
# Given per-sample distributions `probs` (N × K, rows sum to 1) and `labels`, compute the class centroids $g_y$ (the mean row of class $y$) and return $\frac1N\sum_i \mathrm{KL}(p_i \,\|\, g_{y_i})$ in nats. The check compares it with `cmi_toolkit.information.conditional_mutual_information`. *Discuss:* why does this estimate sit below the exact value for small N (hint: the centroids are fitted to the same samples)?
#
# Fill in the function, run the next cell; it says ✓ or ✗ with a hint. Solutions: `notebooks/solutions/solutions.py` (look after trying).

# %%
def plugin_cmi(probs, labels, num_classes):
    # your code here (torch is enough)
    raise NotImplementedError


# %%
from cmi_toolkit.exercises import check

check("plugin_cmi", plugin_cmi)

# %% [markdown]
# **Reading the results.** Tempering lowers CMI (outputs closer to their class centroid) even though it does not
# change a single decision: CMI is about the *shape* of the clusters, not the accuracy. NCMI divides CMI by the
# separation $\Gamma$ (how far samples sit from the *other* classes' centroids) to make the two comparable; notebook 02
# measures both on real models.
