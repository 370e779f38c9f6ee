"""The variational MI term, choice-ranked evaluation, reference lines and the CoT table."""

import math

import pytest
import torch

from cmi_toolkit.cot import (
    CoTCollator,
    CoTConfig,
    CoTTrainer,
    InfoNCECritic,
    build_seq2seq,
    choice_predictions,
    cot_table,
    load_cot,
    run_cot_suite,
    teacher_accuracy,
    teacher_answer,
    tokenize_cot,
)

from .test_cot import _shared_cot, tiny_seq2seq, write_cot  # noqa: F401 - the fixture is used by name


def _fit_critic(rho, d=2, batch=256, steps=600, seed=0):
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    critic = InfoNCECritic(d, d, dim=32)
    opt = torch.optim.Adam(critic.parameters(), lr=3e-3)

    def sample():
        x = torch.randn(batch, d, generator=g)
        return x, rho * x + math.sqrt(1 - rho ** 2) * torch.randn(batch, d, generator=g)

    for _ in range(steps):
        loss = critic(*sample())
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        return sum(float(critic.lower_bound(*sample())) for _ in range(20)) / 20


@pytest.mark.parametrize("rho", [0.5, 0.8])
def test_infonce_bound_approaches_true_mi_from_below(rho):
    """Correlated Gaussians, d = 2: I(X; Y) = -(d/2) log(1 - rho^2) exactly."""
    true = -math.log(1 - rho ** 2)
    estimate = _fit_critic(rho)
    assert 0.8 * true < estimate < true + 0.03, (estimate, true)
    assert estimate < math.log(256)  # never above log B


def test_infonce_bound_is_near_zero_on_independent_inputs():
    assert abs(_fit_critic(0.0)) < 0.03


def _trainer(tiny_seq2seq, tmp_path, **cfg_kw):  # noqa: F811
    from transformers import Seq2SeqTrainingArguments, set_seed

    write_cot(tmp_path / "cot", n_train=16, n_test=4, files=2)
    cfg = CoTConfig(dataset="cqa", model=str(tiny_seq2seq), max_train_samples=None, epochs=2, batch_size=8,
                    learning_rate=3e-3, max_rationale_length=24, max_label_length=6, **cfg_kw)
    set_seed(cfg.seed)
    model, tok = build_seq2seq(cfg.model)
    train = tokenize_cot(load_cot("cqa", tmp_path / "cot", check_counts=False)["train"], tok, 64, 6, 24)
    args = Seq2SeqTrainingArguments(output_dir=str(tmp_path / "out"), per_device_train_batch_size=8, learning_rate=3e-3,
                                    num_train_epochs=2, save_strategy="no", report_to=[], seed=cfg.seed,
                                    remove_unused_columns=False, disable_tqdm=True, use_cpu=True, logging_steps=1)
    return CoTTrainer(model=model, args=args, train_dataset=train, cot=cfg, data_collator=CoTCollator(tok.pad_token_id))


def test_variational_with_beta_zero_is_dss_exactly(tiny_seq2seq, tmp_path):  # noqa: F811
    dss = _trainer(tiny_seq2seq, tmp_path / "a", mode="dss")
    dss.train()
    var = _trainer(tiny_seq2seq, tmp_path / "b", mode="dss_mi", mi_mode="variational", beta=0.0)
    var.train()
    assert var.critic is None
    for p, q in zip(dss.model.parameters(), var.model.parameters(), strict=True):
        assert torch.equal(p, q)
    assert [r["total"] for r in dss.term_log] == [r["total"] for r in var.term_log]


def test_variational_critic_trains_jointly(tiny_seq2seq, tmp_path):  # noqa: F811
    trainer = _trainer(tiny_seq2seq, tmp_path, mode="dss_mi", mi_mode="variational", beta=0.5)
    before = [p.detach().clone() for p in trainer.critic.parameters()]
    trainer.train()
    in_optimiser = {id(p) for g in trainer.optimizer.param_groups for p in g["params"]}
    assert all(id(p) in in_optimiser for p in trainer.critic.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(before, trainer.critic.parameters(), strict=True))
    mi = [r["mi"] for r in trainer.term_log]
    assert all(-math.log(8) - 1e-4 <= -v <= math.log(8) + 1e-4 for v in mi)  # -L_MI is a bound <= log B
    assert "mi" in trainer.term_log[0] and math.isfinite(mi[-1])


def test_choice_predictions_rank_by_length_normalised_likelihood(tiny_seq2seq):  # noqa: F811
    model, tok = build_seq2seq(str(tiny_seq2seq))
    x = "where would you keep a coin?"
    choices = ["box", "shelf of books", "car", "pocket", "bank account"]
    (pred,) = choice_predictions(model, tok, [x], [choices], max_label_length=8)
    scores = []
    with torch.no_grad():
        for c in choices:  # one choice at a time, by hand
            enc = tok(["predict: " + x], return_tensors="pt")
            target = tok([c])["input_ids"][0][1:]  # without [CLS]; ends with [SEP]
            logits = model(**enc, labels=torch.tensor([target])).logits[0]
            lp = torch.log_softmax(logits, -1)[torch.arange(len(target)), torch.tensor(target)]
            scores.append(float(lp.mean()))
    assert pred == max(range(5), key=scores.__getitem__)


def test_teacher_answer_parsing():
    assert teacher_answer("cqa", "Beavers need wood. So the answer is (c) wooded area.\n\nQ: x",
                          ["a", "b", "wooded area", "d", "e"]) == "wooded area"
    assert teacher_answer("svamp", "10 * 45 is 450. The answer is (10 * 45).\n\nQ: more") == "10 * 45"
    assert teacher_answer("cqa", "No answer here.", ["a"] * 5) == ""


def test_llm_teacher_accuracy_on_real_cqa():
    cot = _shared_cot()
    if cot is None:
        pytest.skip("CoT data not found")
    test = load_cot("cqa", cot)["test"]
    acc = teacher_accuracy("cqa", test["teacher_answer"], test["label"])
    assert 0.74 < acc < 0.82  # PaLM's few-shot answers on the CQA test split (about 77-79 %)
    svamp = load_cot("svamp", cot)["test"]
    assert 0.3 < teacher_accuracy("svamp", svamp["teacher_answer"], svamp["label"]) <= 1.0


def test_suite_records_choice_accuracy_references_and_table(tiny_seq2seq, tmp_path):  # noqa: F811
    write_cot(tmp_path / "cot", n_train=16, n_test=4, files=2)
    overrides = dict(model=str(tiny_seq2seq), max_train_samples=None, max_eval_samples=None, epochs=1, batch_size=8,
                     learning_rate=3e-3, max_rationale_length=24, max_label_length=6)
    records = run_cot_suite("cqa", "cpu_seq2seq", seeds=(0, 1), modes=("label_only", "dss_mi", "dss_mi_var"),
                            source=tmp_path / "cot", results_dir=tmp_path / "r", overrides=overrides, progress=False,
                            check_counts=False)
    assert len(records) == 6 and len({r["key"] for r in records}) == 6
    for r in records:
        m = r["metrics"]
        assert 0 <= m["choice_accuracy"] <= 1 and 0 <= m["exact_match"] <= 1
        assert m["chance"] == 0.2 and m["teacher_accuracy"] == 1.0 and r["provenance"]["torch"]
    table = cot_table(records)
    assert "choice accuracy (%)" in table and "DSS + MI (variational, InfoNCE)" in table
    assert "chance 20 %" in table and "the LLM teacher's own answers 100.00 %" in table
    assert "[" in table and ("no difference detected" in table or "better" in table or "worse" in table)


def test_checkpoint_is_chosen_on_heldout_training_data(tiny_seq2seq, tmp_path):  # noqa: F811
    from cmi_toolkit.cot import run_cot

    write_cot(tmp_path / "cot", n_train=20, n_test=4, files=2)
    cfg = CoTConfig(dataset="cqa", mode="dss", model=str(tiny_seq2seq), max_train_samples=None, max_eval_samples=None,
                    batch_size=8, max_steps=6, learning_rate=3e-3, max_rationale_length=24, max_label_length=6,
                    heldout_samples=4, eval_every=2)
    rec = run_cot(cfg, tmp_path / "cot", progress=False, check_counts=False, n_examples=0)
    curve = rec["metrics"]["heldout_curve"]
    assert [step for step, _ in curve] == [2, 4, 6] and rec["n_train"] == 16 and rec["steps"] == 6
    best = max(score for _, score in curve)
    assert rec["metrics"]["selected_step"] == next(step for step, score in curve if score == best)
