"""The Markov-source view of a classifier, and a synthetic class-conditional Markov source.

A transformer classifier reads its input sequence x as the state of a high-order Markov source
and emits a symbol from a distribution conditioned on that state. Two emissions matter:

* the label prediction  Y^ ~ P_x = softmax(logits / T)      (output space), and
* a feature index       Z  ~ f_x = softmax(h_x / T)         (feature space),

where h_x is the pooled feature vector that the classification head reads. With the true label
Y, Y -> X -> (Y^, Z) is a Markov chain. :class:`MarkovSourceView` returns h_x, f_x and P_x from
one forward pass of any transformers sequence classifier.

:class:`SyntheticMarkovSource` is the teaching example and a ground truth: one k-th order Markov
chain per class over a small alphabet, with exact Bayes posteriors and the exact
I(X; Y^ | Y) of any classifier evaluated on every sequence.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

__all__ = ["POOLINGS", "MarkovOutput", "MarkovSourceView", "SyntheticMarkovSource", "estimator_bias"]

POOLINGS = ("auto", "pooler", "cls", "mean")


@dataclass
class MarkovOutput:
    """One forward pass seen as a Markov source.

    Attributes:
        logits: N x K classifier logits.
        features: N x D pooled features h_x.
        feature_probs: f_x = softmax(h_x / T), N x D.
        output_probs: P_x = softmax(logits / T), N x K.
        loss: the model's own loss when labels were passed, else None.
    """

    logits: Tensor
    features: Tensor
    feature_probs: Tensor
    output_probs: Tensor
    loss: Tensor | None = None

    def probs(self, space: str) -> Tensor:
        """``feature_probs`` for ``space="feature"``, ``output_probs`` for ``"output"``."""
        if space == "feature":
            return self.feature_probs
        if space == "output":
            return self.output_probs
        raise ValueError(f"space must be 'feature' or 'output', got {space!r}")


class MarkovSourceView(nn.Module):
    """Wrap a sequence classifier so that one forward pass yields h_x, f_x and P_x.

    Args:
        model: a transformers ``*ForSequenceClassification`` model.
        pooling: which vector is h_x.
            ``"pooler"``: the model's pooler output (what BERT's head reads);
            ``"cls"``: the first token's last hidden state (what DistilBERT/RoBERTa heads start from);
            ``"mean"``: the mean of the last hidden states over the attention mask;
            ``"auto"`` (default): ``"pooler"`` when the model has a pooler, else ``"cls"``.
        temperature: T of f_x = softmax(h_x / T).
        output_temperature: T of P_x = softmax(logits / T); defaults to 1.

    The pooler output is captured by a forward hook that exists only during the call (removed in
    a ``finally``); ``cls`` and ``mean`` read ``output_hidden_states``. Either way the model runs
    once.
    """

    def __init__(self, model: nn.Module, pooling: str = "auto", temperature: float = 1.0,
                 output_temperature: float = 1.0):
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
        if temperature <= 0 or output_temperature <= 0:
            raise ValueError("temperatures must be positive")
        self.model = model
        self.temperature = float(temperature)
        self.output_temperature = float(output_temperature)
        pooler = getattr(getattr(model, "base_model", model), "pooler", None)
        if pooling == "auto":
            pooling = "pooler" if isinstance(pooler, nn.Module) else "cls"
        if pooling == "pooler" and not isinstance(pooler, nn.Module):
            raise ValueError(f"{type(model).__name__} has no pooler; use pooling='cls' or 'mean'")
        self.pooling = pooling
        self._pooler = pooler if pooling == "pooler" else None

    @property
    def feature_dim(self) -> int:
        return int(self.model.config.hidden_size if hasattr(self.model.config, "hidden_size") else self.model.config.dim)

    def forward(self, _caller: nn.Module | None = None, **inputs) -> MarkovOutput:
        """Run the model once on ``inputs``.

        ``_caller`` is the module to call when it wraps :attr:`model` (e.g. DistributedDataParallel
        inside a Trainer), so that gradient synchronisation happens; hooks stay on the inner model.
        """
        captured: list[Tensor] = []
        handle = None
        if self._pooler is not None:
            handle = self._pooler.register_forward_hook(lambda _m, _i, out: captured.append(out))
        else:
            inputs["output_hidden_states"] = True
        try:
            out = (_caller if _caller is not None else self.model)(**inputs)  # a compiled model has no truth value
        finally:
            if handle is not None:
                handle.remove()
        if self.pooling == "pooler":
            h = captured[-1]
        else:
            last = out.hidden_states[-1]
            if self.pooling == "cls":
                h = last[:, 0]
            else:
                mask = inputs.get("attention_mask")
                if mask is None:
                    h = last.mean(dim=1)
                else:
                    m = mask.unsqueeze(-1).to(last.dtype)
                    h = (last * m).sum(1) / m.sum(1).clamp_min(1.0)
        logits = out.logits
        return MarkovOutput(
            logits=logits,
            features=h,
            feature_probs=torch.softmax(h / self.temperature, dim=-1),
            output_probs=torch.softmax(logits / self.output_temperature, dim=-1),
            loss=getattr(out, "loss", None),
        )


class SyntheticMarkovSource:
    """One k-th order Markov chain per class over ``alphabet_size`` symbols.

    A sequence x = (x_1, ..., x_L) of class y has probability
    P(x | y) = |A|^(-k) * prod_{t>k} T_y[x_{t-k..t-1}, x_t]: the first k symbols are uniform and
    every later one follows the class's transition table T_y, drawn from a symmetric Dirichlet
    with ``concentration`` (small values make the classes easy to tell apart).

    The set of all |A|^L sequences is small enough to enumerate, so the Bayes posterior
    P(y | x) and the exact I(X; Y^ | Y) of any classifier are computed in closed form.
    """

    def __init__(self, num_classes: int = 2, alphabet_size: int = 3, order: int = 2, length: int = 8,
                 concentration: float = 0.5, class_prior: list[float] | None = None, seed: int = 0):
        if order >= length:
            raise ValueError("order must be shorter than the sequence length")
        self.num_classes, self.alphabet_size, self.order, self.length = num_classes, alphabet_size, order, length
        g = torch.Generator().manual_seed(seed)
        states = alphabet_size**order
        alpha = torch.full((num_classes, states, alphabet_size), float(concentration), dtype=torch.float64)
        gamma = torch._standard_gamma(alpha, generator=g)
        self.transitions = gamma / gamma.sum(-1, keepdim=True)  # C x S x A
        prior = torch.tensor(class_prior or [1.0 / num_classes] * num_classes, dtype=torch.float64)
        if prior.numel() != num_classes or (prior < 0).any():
            raise ValueError("class_prior needs one non-negative weight per class")
        self.class_prior = prior / prior.sum()
        self._generator = g

    def _state_index(self, seqs: Tensor, t: int) -> Tensor:
        idx = torch.zeros(seqs.shape[0], dtype=torch.long)
        for j in range(t - self.order, t):
            idx = idx * self.alphabet_size + seqs[:, j]
        return idx

    def sample(self, n: int, seed: int | None = None) -> tuple[Tensor, Tensor]:
        """``n`` labelled sequences: (N x L symbols, N labels)."""
        g = torch.Generator().manual_seed(seed) if seed is not None else self._generator
        labels = torch.multinomial(self.class_prior, n, replacement=True, generator=g)
        seqs = torch.zeros(n, self.length, dtype=torch.long)
        seqs[:, : self.order] = torch.randint(self.alphabet_size, (n, self.order), generator=g)
        for t in range(self.order, self.length):
            rows = self.transitions[labels, self._state_index(seqs, t)]  # N x A
            seqs[:, t] = torch.multinomial(rows, 1, generator=g).squeeze(1)
        return seqs, labels

    def log_likelihood(self, seqs: Tensor) -> Tensor:
        """log P(x | y) for every sequence and class: N x C."""
        n = seqs.shape[0]
        out = torch.full((n, self.num_classes), -self.order * math.log(self.alphabet_size), dtype=torch.float64)
        for t in range(self.order, self.length):
            s = self._state_index(seqs, t)
            out += torch.log(self.transitions[:, s, seqs[:, t]]).T  # C x N -> N x C
        return out

    def posterior(self, seqs: Tensor) -> Tensor:
        """Bayes posterior P(y | x): N x C."""
        joint = self.log_likelihood(seqs) + torch.log(self.class_prior)
        return torch.softmax(joint, dim=-1)

    def all_sequences(self) -> Tensor:
        """Every sequence of length L, in lexicographic order: |A|^L x L."""
        return torch.tensor(list(itertools.product(range(self.alphabet_size), repeat=self.length)), dtype=torch.long)

    def _check_all(self, probs: Tensor) -> Tensor:
        n = self.alphabet_size**self.length
        if probs.shape[0] != n:
            raise ValueError(f"need outputs on all {n} sequences, got {probs.shape[0]}")
        return probs.to(torch.float64)

    def exact_centroids(self, probs: Tensor) -> Tensor:
        """Q_y = sum_x P(x | y) P(.|x) for outputs ``probs`` on :meth:`all_sequences`: C x K."""
        p = self._check_all(probs)
        return torch.exp(self.log_likelihood(self.all_sequences())).T @ p

    def exact_cmi(self, probs: Tensor) -> float:
        """Exact I(X; Y^ | Y) in nats of a classifier with outputs ``probs`` on :meth:`all_sequences`.

        I(X; Y^ | Y) = sum_y P(y) sum_x P(x | y) KL(P(.|x) || Q_y),  Q_y = sum_x P(x | y) P(.|x).
        The same formula with f_x in place of P(.|x) gives I(X; Z | Y) of a feature index Z.
        """
        seqs = self.all_sequences()
        p = self._check_all(probs)
        px_given_y = torch.exp(self.log_likelihood(seqs))  # X x C, columns sum to 1
        q = px_given_y.T @ p  # C x K centroids
        log_p = torch.where(p > 0, torch.log(p.clamp_min(1e-300)), torch.zeros_like(p))
        neg_entropy = (p * log_p).sum(-1)  # X
        cross = p @ torch.log(q.clamp_min(1e-300)).T  # X x C : sum_k p log Q_y
        kl = neg_entropy[:, None] - cross  # X x C
        return float((self.class_prior * (px_given_y * kl).sum(0)).sum())

    def bigram_features(self, seqs: Tensor) -> Tensor:
        """h_x of the synthetic part: the share of each symbol pair (a, b) among the sequence's L - 1 bigrams.

        N x |A|^2, a stand-in for the pooled features a transformer's head reads; f_x = softmax(h_x / T)
        turns it into the distribution of the feature index Z.
        """
        a = self.alphabet_size
        pairs = seqs[:, :-1] * a + seqs[:, 1:]
        h = torch.zeros(seqs.shape[0], a * a, dtype=torch.float64)
        h.scatter_add_(1, pairs, torch.ones_like(pairs, dtype=torch.float64))
        return h / (self.length - 1)


def estimator_bias(source: SyntheticMarkovSource, ns: list[int], reps: int, outputs=None,
                   seed: int = 0) -> dict[str, list[float]]:
    """The plug-in CMI estimate from N samples against the truth, ``reps`` draws per N.

    ``outputs(seqs) -> N x K`` is the classifier (default: the Bayes posterior). Two estimators:
    *plug-in*, mean KL(p_i || g_hat_{y_i}) with centroids g_hat fitted to the same samples (what
    :func:`~cmi_toolkit.method.information.conditional_mutual_information` computes), and *oracle*, the
    same mean KL to the exact centroids Q_y. The fitted centroid minimises the class's summed KL
    (sum_i KL(p_i || g) = sum_i KL(p_i || g_hat) + n KL(g_hat || g)), so on every sample set the
    plug-in is below the oracle by the mean KL(g_hat_y || Q_y) ("gap"): a downward bias that shrinks
    like 1/N. The oracle is unbiased. Returns per N the means and standard deviations of both
    estimates and the mean and largest gap (plug-in minus oracle, never above 0).
    """
    from .information import conditional_mutual_information

    outputs = outputs or source.posterior
    every = outputs(source.all_sequences())
    q = source.exact_centroids(every)
    out: dict[str, list[float]] = {"n": list(ns), "plugin_mean": [], "plugin_sd": [], "oracle_mean": [],
                                   "oracle_sd": [], "gap_mean": [], "gap_max": [], "exact": source.exact_cmi(every)}
    for n in ns:
        plug, oracle = [], []
        for r in range(reps):
            s, y = source.sample(n, seed=seed + 1000 * r + n)
            p = outputs(s).to(torch.float64)
            plug.append(float(conditional_mutual_information(p, y, source.num_classes)))
            oracle.append(float(conditional_mutual_information(p, y, source.num_classes, centroids=q)))
        for name, values in (("plugin", plug), ("oracle", oracle)):
            out[f"{name}_mean"].append(float(torch.tensor(values).mean()))
            out[f"{name}_sd"].append(float(torch.tensor(values).std()) if reps > 1 else 0.0)
        gaps = [a - b for a, b in zip(plug, oracle, strict=True)]
        out["gap_mean"].append(sum(gaps) / len(gaps))
        out["gap_max"].append(max(gaps))
    return out
