# %% [markdown]
# # 00 · A classifier as a Markov source
#
# "Markov" means two different things in this course, and it pays to keep them apart.
#
# 1. **The chain that makes the data.** In the synthetic part below, each class $y$ owns a $k$-th order Markov
#    chain over symbols: $x_1 \dots x_k$ are uniform and every later symbol is drawn from the class's transition
#    table, $P(x_t \mid x_{t-k..t-1}, y) = T_y[x_{t-k..t-1}, x_t]$. This is a stand-in for text: a sentence is a
#    sequence whose statistics depend on its label.
# 2. **The classifier as a source.** Following Sivakaran & Yang (2025), read a trained classifier as a *high-order
#    Markov source*: its **state** is the whole input sequence $x$ (every token it attends to, hence "high order"),
#    and from that state it emits symbols from two distributions:
#    * the **label prediction** $\hat Y \sim P_x = \mathrm{softmax}(z_x / T)$ (output space), and
#    * a **feature index** $Z \sim f_x = \mathrm{softmax}(h_x / T)$ over the dimensions of the pooled feature
#      vector $h_x$ that the classification head reads (feature space).
#
# The two meet in one chain of random variables: the first chain produces the state $X$ from the label $Y$, the
# second emits from the state, and the model sees nothing but $X$:
#
# $$Y \;\to\; X \;\to\; (\hat Y, Z), \qquad P(\hat y \mid x, y) = P_x(\hat y).$$
#
# ## From the chain to the KL identity
#
# The **conditional mutual information** $I(X; \hat Y \mid Y)$ measures how much the model's output still depends
# on *which* example of a class it saw. Start from its definition and use the Markov property twice:
#
# $$I(X; \hat Y \mid Y) = H(\hat Y \mid Y) - H(\hat Y \mid X, Y) = H(\hat Y \mid Y) - \mathbb{E}\,H(P_X)
# \qquad (\text{given } X, \text{ the label adds nothing}).$$
#
# The distribution of $\hat Y$ given $Y = y$ averages the emissions over the states of that class:
#
# $$P(\hat y \mid y) = \sum_x P(x \mid y)\, P_x(\hat y) =: Q_y(\hat y),$$
#
# and since $Q_Y$ is that average, $H(\hat Y \mid Y) = -\mathbb{E}\sum_{\hat y} P_X(\hat y) \log Q_Y(\hat y)$.
# Subtracting,
#
# $$I(X; \hat Y \mid Y) = \mathbb{E}_{X,Y}\Big[\sum_{\hat y} P_X(\hat y) \log \frac{P_X(\hat y)}{Q_Y(\hat y)}\Big]
# = \mathbb{E}\left[ \mathrm{KL}(P_X \,\|\, Q_Y) \right].$$
#
# $Q_y$ is the **output probability distribution centroid** (OPDC) of class $y$. The same steps with $Z$ and
# $f_x$ give $I(X; Z \mid Y) = \mathbb{E}\,\mathrm{KL}(f_X \,\|\, g_Y)$ with the **FPDC** $g_y = \mathbb{E}[f_X \mid Y = y]$,
# the quantity the kit's fine-tuning penalises. Low CMI means tight class clusters.
#
# This notebook builds the synthetic source, where every quantity is exact, and checks the identity, the role of
# $T$ and the kit's estimator against the truth.

# %% [markdown]
# **Objectives.** You will tell the two Markov chains apart and connect them in $Y \to X \to (\hat Y, Z)$; derive CMI
# as an expected KL and check it numerically; see what the temperature $T$ does to $I(X; Z \mid Y)$; estimate CMI
# from samples and see the estimator's small-sample bias.
#
# **Prerequisites.** probability, entropy and KL divergence; Python and PyTorch basics.
#
# **Time on a laptop CPU (2 cores; measured, see `results/course_times.json`).** smoke: under 1 min; default: under
# 5 min (the Monte-Carlo study).
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
figures_dir = None        # default: <output_dir>/figures (untracked); `make figures` writes ../figures

# %%
import string

import numpy as np
import pandas as pd
import torch

from cmi_toolkit.method.information import class_centroids
from cmi_toolkit.method.markov import SyntheticMarkovSource, estimator_bias
from cmi_toolkit.course.notebook import P, check_parameters, save_metrics, setup
from cmi_toolkit.course.figures import convergence_figure
from cmi_toolkit.plotting import show_figure

# every parameter checked (type, range) before anything runs: a mistake is one line here
check_parameters(globals(), smoke=P(bool), seed=P(int, low=0), alphabet_size=P(int, low=2, high=26), order=P(int, low=1, high=6),
                 length=P(int, low=1, high=64), output_dir=P(str), figures_dir=P(str, none=True))
output_dir, figures_dir, _ = setup(smoke, output_dir, figures_dir)  # smoke banner, folders, at most 4 threads

# %% [markdown]
# ## Chain 1: the source
#
# One $k$-th order Markov chain per class. With a small alphabet and short sequences we can enumerate **every**
# sequence, so $P(x \mid y)$, the Bayes posterior $P(y \mid x)$ and the CMI of any classifier are exact.

# %%
source = SyntheticMarkovSource(num_classes=2, alphabet_size=alphabet_size, order=order, length=length, seed=seed)
sequences = source.all_sequences()
symbols = string.ascii_lowercase + string.digits
print(f"{len(sequences):,} possible sequences of length {length} over {alphabet_size} symbols")
seqs, labels = source.sample(5, seed=seed)
for s, y in zip(seqs.tolist(), labels.tolist()):
    print("class", y, "sequence", "".join(symbols[i] for i in s))

# %% [markdown]
# ## Chain 2: two classifiers as sources, and their exact CMI
#
# * the **Bayes classifier** emits $\hat Y \sim P(y \mid x)$, and
# * a **tempered** copy of it (posterior logits divided by 4: less confident, so its outputs vary less within a class).
#
# `exact_cmi` sums over all sequences: $\sum_y P(y) \sum_x P(x\mid y)\,\mathrm{KL}(P_x\,\|\,Q_y)$. The next cell
# also computes $H(\hat Y \mid Y) - H(\hat Y \mid X)$ directly, the first line of the derivation: the two agree.

# %%
bayes = source.posterior(sequences)
tempered = torch.softmax(torch.log(bayes) / 4, dim=-1)
exact = {"bayes": source.exact_cmi(bayes), "tempered": source.exact_cmi(tempered)}
test_x, test_y = source.sample(20000, seed=seed + 1)
accuracy_of_bayes = float((source.posterior(test_x).argmax(-1) == test_y).double().mean())


def entropy(p):
    return -(p * torch.log(p.clamp_min(1e-300))).sum(-1)


px_given_y = torch.exp(source.log_likelihood(sequences))  # every sequence x every class
h_given_y = float((source.class_prior * entropy(source.exact_centroids(bayes))).sum())
h_given_x = float((source.class_prior * (px_given_y * entropy(bayes)[:, None]).sum(0)).sum())
print(f"exact I(X; Y^ | Y), Bayes classifier:    {exact['bayes']:.6f} nats")
print(f"H(Y^ | Y) - H(Y^ | X), same classifier:  {h_given_y - h_given_x:.6f} nats   (the identity)")
print(f"exact I(X; Y^ | Y), tempered classifier: {exact['tempered']:.6f} nats")
print(f"Bayes accuracy on 20,000 samples: {accuracy_of_bayes:.4f}")

# %% [markdown]
# ## The feature index $Z$ and the temperature $T$
#
# A transformer's head reads a pooled feature vector $h_x$. Our synthetic stand-in: $h_x$ = the share of each
# symbol pair among the sequence's bigrams ($|A|^2$ dimensions). The model "emits" a feature index
# $Z \sim f_x = \mathrm{softmax}(h_x / T)$, and $I(X; Z \mid Y) = \mathbb{E}\,\mathrm{KL}(f_X \,\|\, g_Y)$ is exact too.
# $T$ sets how much of $h_x$'s variation reaches $f_x$: as $T \to \infty$ every $f_x$ tends to the uniform
# distribution and the CMI to 0 (a penalty on it then does nothing); as $T \to 0$, $f_x$ becomes the one-hot
# arg-max dimension. MiniLM's pooled features are bounded by a tanh, so at $T = 1$ its $f_x$ is nearly uniform;
# that is why the kit's default is $T = 0.1$ (chosen on held-out data).

# %%
features = source.bigram_features(sequences)
temperatures = [0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0]
z_cmi = [source.exact_cmi(torch.softmax(features / t, dim=-1)) for t in temperatures]
pd.DataFrame({"T": temperatures, "exact I(X; Z | Y) (nats)": z_cmi}).round(5)

# %% [markdown]
# ## The kit's estimator against the truth
#
# `conditional_mutual_information(probs, labels, num_classes)` is the **plug-in** estimator: per-class centroids of
# the sample's rows, then the mean KL of each row to its class centroid. Because the centroids are fitted to the
# same rows, it is biased *downward*: the sample mean $\hat g_y$ minimises $\sum_i \mathrm{KL}(p_i \,\|\, g)$, and
# $\sum_i \mathrm{KL}(p_i\,\|\,Q_y) = \sum_i \mathrm{KL}(p_i\,\|\,\hat g_y) + n_y\,\mathrm{KL}(\hat g_y\,\|\,Q_y)$. So on every
# sample set the plug-in sits below the **oracle** estimate that uses the exact centroids $Q_y$ (which is unbiased),
# by $\mathrm{KL}(\hat g_y \,\|\, Q_y)$, a gap that shrinks like $1/N$. At small $N$ the spread between draws is larger
# still: the per-example KL has a heavy tail (the rare sequence that looks like the other class).

# %%
ns = [30, 100, 300, 1000, 3000, 10000] if smoke else [30, 100, 300, 1000, 3000, 10000, 30000, 100000]
study = estimator_bias(source, ns, reps=5 if smoke else 30, seed=seed)
pd.DataFrame({k: study[k] for k in ("n", "plugin_mean", "plugin_sd", "oracle_mean", "gap_mean", "gap_max")}).round(5)

# %%
# NBVAL_IGNORE_OUTPUT
fig = convergence_figure(study)
show_figure(fig, "00_cmi_convergence", figures_dir)

# %% [markdown]
# ## OPDCs of the Bayes classifier
#
# The OPDC $Q_y$ is the average output distribution over the examples of class $y$. A good classifier has
# $Q_0$ leaning to class 0 and $Q_1$ to class 1; CMI is the average distance of the individual outputs from them.

# %%
s, y = source.sample(20000, seed=seed + 7)
centroids = class_centroids(source.posterior(s), y, 2)
for c in range(2):
    print(f"Q_{c} = {[round(v, 4) for v in centroids[c].tolist()]}   exact {[round(v, 4) for v in source.exact_centroids(bayes)[c].tolist()]}")
save_metrics(output_dir, {"exact_cmi_bayes": exact["bayes"], "exact_cmi_tempered": exact["tempered"],
                                        "identity": h_given_y - h_given_x, "z_cmi": dict(zip(map(str, temperatures), z_cmi)),
                                        "estimates": dict(zip(map(str, ns), study["plugin_mean"])), "study": study,
                                        "bayes_accuracy": accuracy_of_bayes, "opdc": centroids.tolist()})


# %% [markdown]
# ## Exercise 1: Write the plug-in CMI estimate
#
# Given per-sample distributions `probs` (N × K, rows sum to 1) and `labels`, compute the class centroids $g_y$ (the mean row of class $y$) and return $\frac1N\sum_i \mathrm{KL}(p_i \,\|\, g_{y_i})$ in nats. The check compares it with `cmi_toolkit.method.information.conditional_mutual_information`. *Discuss:* in the table above the plug-in sits below the oracle estimate (exact centroids) on every draw (`gap_max` < 0), yet its mean over draws can sit above the exact CMI at small N (look at N = 300): why is the first guaranteed and the second not (hint: the centroids are fitted to the same samples; the samples themselves vary from draw to draw)?
#
# Fill in the function, run the next cell; it says ✓ or ✗ with a hint. Solutions: `notebooks/solutions/solutions.py` (look after trying).

# %%
def plugin_cmi(probs, labels, num_classes):
    # your code here (torch is enough)
    raise NotImplementedError


# %%
from cmi_toolkit.course.exercises import check

check("plugin_cmi", plugin_cmi)

# %% [markdown]
# ## Exercise 2: The same CMI from two entropies
#
# The plug-in CMI has a second face: $I(X; \hat Y \mid Y) = H(\hat Y \mid Y) - H(\hat Y \mid X)$. Here
# $H(\hat Y \mid X) = \frac1N\sum_i H(p_i)$ is the mean entropy of the rows and $H(\hat Y \mid Y) = \frac1N\sum_i
# H(g_{y_i})$ the mean entropy of each row's class centroid, with $H(q) = -\sum_k q_k \log q_k$. Write it; the check
# compares it with your plug-in estimate's value (the kit's). *Discuss:* why is the difference never negative (hint:
# entropy is concave and $g_y$ is a mean of the $p_i$)? Which of the two terms does a CMI-minimiser push down?
#
# Fill in the function, run the next cell; it says ✓ or ✗ with a hint. Solutions: `notebooks/solutions/solutions.py`.

# %%
def cmi_from_entropies(probs, labels, num_classes):
    # your code here (torch is enough)
    raise NotImplementedError


# %%
check("cmi_from_entropies", cmi_from_entropies)

# %% [markdown]
# **Reading the results.** Tempering lowers CMI (outputs closer to their class centroid) even though it does not
# change a single decision: CMI is about the *shape* of the clusters, not the accuracy. NCMI divides CMI by the
# separation $\Gamma$ (how far samples sit from the *other* classes' centroids) to make the two comparable; notebook 02
# measures both on real models.
#
# **What to try next.** Set `alphabet_size = 4` and `length = 6` (4,096 sequences) and see whether the Bayes CMI
# grows with a richer alphabet; raise `order` to 3 and compare; in the $T$ table, find the $T$ at which
# $I(X; Z \mid Y)$ falls below a tenth of its $T = 0.02$ value.
#
# **Pitfalls.** CMI of 0 is not a perfect model: a constant classifier has CMI 0. Small-sample estimates are
# biased low and noisy: compare models on the same, large evaluation set. $\mathrm{KL}(P_X\|Q_Y)$ is not symmetric;
# the kit uses this order (the example's distribution first), as the paper does.
