import pytest
import torch

from cmi_toolkit.method.information import conditional_mutual_information
from cmi_toolkit.method.markov import MarkovSourceView, SyntheticMarkovSource


def test_view_matches_model_in_one_pass(tiny_model, tokenizer):
    batch = tokenizer(["one sentence", "a second, longer sentence"], padding=True, return_tensors="pt")
    tiny_model.eval()
    calls = []
    hook = tiny_model.bert.encoder.register_forward_hook(lambda *a: calls.append(1))
    view = MarkovSourceView(tiny_model, temperature=2.0)
    assert view.pooling == "pooler"
    out = view(**batch)
    assert len(calls) == 1  # one forward pass
    hook.remove()
    ref = tiny_model(**batch, output_hidden_states=True)
    pooled = tiny_model.bert.pooler(ref.hidden_states[-1])
    assert torch.allclose(out.logits, ref.logits) and torch.allclose(out.features, pooled)
    assert torch.allclose(out.feature_probs, torch.softmax(pooled / 2.0, -1))
    assert torch.allclose(out.output_probs, torch.softmax(ref.logits, -1))
    assert not tiny_model.bert.pooler._forward_hooks  # nothing left attached

    cls = MarkovSourceView(tiny_model, pooling="cls")(**batch)
    assert torch.allclose(cls.features, ref.hidden_states[-1][:, 0])
    mean = MarkovSourceView(tiny_model, pooling="mean")(**batch)
    m = batch["attention_mask"].unsqueeze(-1).float()
    assert torch.allclose(mean.features, (ref.hidden_states[-1] * m).sum(1) / m.sum(1), atol=1e-6)
    with pytest.raises(ValueError):
        MarkovSourceView(tiny_model, pooling="max")


def test_hook_removed_when_forward_fails(tiny_model):
    view = MarkovSourceView(tiny_model)
    with pytest.raises(IndexError):
        view(input_ids=torch.tensor([[10**6]]))
    assert not tiny_model.bert.pooler._forward_hooks


def test_synthetic_source_posterior_and_exact_cmi():
    src = SyntheticMarkovSource(num_classes=2, alphabet_size=3, order=2, length=6, seed=1)
    everything = src.all_sequences()
    lik = torch.exp(src.log_likelihood(everything))
    assert torch.allclose(lik.sum(0), torch.ones(2, dtype=torch.float64))  # P(x|y) sums to 1 per class
    post = src.posterior(everything)
    # the Bayes classifier's exact CMI equals the estimator on the exact (weighted) population
    exact = src.exact_cmi(post)
    # constant classifier: CMI 0
    assert src.exact_cmi(torch.full_like(post, 0.5)) == pytest.approx(0.0, abs=1e-12)
    # Monte Carlo estimate from samples converges to the exact value
    seqs, labels = src.sample(40000, seed=3)
    est = conditional_mutual_information(src.posterior(seqs), labels, 2).item()
    assert est == pytest.approx(exact, rel=0.05)
    assert 0 < exact < torch.log(torch.tensor(2.0)).item()
    # samples follow the class chains: Bayes accuracy on samples is above chance
    assert (src.posterior(seqs).argmax(-1) == labels).double().mean() > 0.6


def test_plugin_estimate_is_biased_low_and_the_oracle_centroid_estimate_is_not():
    from cmi_toolkit.method.markov import estimator_bias

    src = SyntheticMarkovSource(num_classes=2, alphabet_size=3, order=2, length=6, seed=1)
    study = estimator_bias(src, [30, 300, 3000], reps=40)
    # on every sample set the fitted centroids put the plug-in at or below the exact-centroid estimate
    assert all(g <= 1e-6 for g in study["gap_max"])
    assert study["gap_mean"][0] < study["gap_mean"][1] < study["gap_mean"][2] < 0  # the bias shrinks with N
    # the oracle (exact centroids) is unbiased: within 4 standard errors of the truth at every N
    for mean, sd in zip(study["oracle_mean"], study["oracle_sd"], strict=True):
        assert abs(mean - study["exact"]) < 4 * sd / 40**0.5


def test_exact_centroids_and_bigram_features_are_distributions():
    src = SyntheticMarkovSource(num_classes=2, alphabet_size=4, order=1, length=5, seed=2)
    seqs = src.all_sequences()
    h = src.bigram_features(seqs)
    assert h.shape == (4**5, 16) and torch.allclose(h.sum(-1), torch.ones(4**5, dtype=torch.float64))
    q = src.exact_centroids(torch.softmax(h / 0.1, -1))
    assert q.shape == (2, 16) and torch.allclose(q.sum(-1), torch.ones(2, dtype=torch.float64))
    # I(X; Z | Y) shrinks as T grows: softer f_x vary less within a class
    cmis = [src.exact_cmi(torch.softmax(h / t, -1)) for t in (0.05, 0.2, 1.0, 5.0)]
    assert cmis == sorted(cmis, reverse=True) and cmis[-1] < 0.01
