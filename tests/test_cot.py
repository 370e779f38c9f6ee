import json
import math
import os
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from cmi_toolkit.cot import (
    COT_DIR_ENV,
    CoTConfig,
    CoTFormatError,
    answers_match,
    evaluate_expression,
    load_cot,
    mi_loss_released,
    rationale_of,
    run_cot,
)

from .conftest import REPO


def _shared_cot() -> Path | None:
    env = os.environ.get(COT_DIR_ENV)
    for cand in ([Path(env)] if env else []) + [REPO.parent / "shared" / "data" / "cot"]:
        if (cand / "cqa" / "cqa_train.json").is_file():
            return cand
    return None


@pytest.fixture(scope="module")
def cot_dir():
    path = _shared_cot()
    if path is None:
        pytest.skip(f"CoT data not found: set {COT_DIR_ENV} or place ../shared/data/cot beside the repo")
    return path


def write_cot(root: Path, n_train: int = 12, n_test: int = 4, files: int = 11) -> Path:
    """A tiny CQA folder in the released layout; the train completions are split over ``files`` numbered files."""
    folder = root / "cqa"
    (folder / "llm").mkdir(parents=True, exist_ok=True)
    for split, n in (("train", n_train), ("test", n_test)):
        rows = [{"id": str(i), "question": f"where would you keep item {i}?",
                 "choices": ["box", "shelf", "car", "pocket", "bank"], "answer": ["box", "shelf"][i % 2]}
                for i in range(n)]
        (folder / f"cqa_{split}.json").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
        comps = [f"Item {i} goes in a {['box', 'shelf'][i % 2]}. So the answer is ({'ab'[i % 2]}) {['box', 'shelf'][i % 2]}."
                 "\n\nQ: next" for i in range(n)]
        k = files if split == "train" else 1
        bounds = [j * n // k for j in range(k + 1)]  # contiguous, non-empty chunks in example order
        for j in range(k):
            (folder / "llm" / f"{split}_CoT_{j}.json").write_text(json.dumps(comps[bounds[j]:bounds[j + 1]]))
    return root


def test_real_counts(cot_dir):
    for name, (n_train, n_test) in {"cqa": (9741, 1221), "svamp": (800, 200)}.items():
        ds = load_cot(name, cot_dir)
        assert (len(ds["train"]), len(ds["test"])) == (n_train, n_test)
        assert all(r.strip() and "\n\n" not in r for r in ds["train"]["rationale"][:200])
    cqa = load_cot("cqa", cot_dir)["train"][0]
    assert cqa["label"] == "math problem" and "(d) math problem" in cqa["input"]
    svamp = load_cot("svamp", cot_dir)["train"][0]
    assert evaluate_expression(svamp["label"]) == 42.0 and "84 / 2 = 42" in svamp["rationale"]


def test_fixture_order_and_errors(tmp_path):
    write_cot(tmp_path, n_train=12, files=11)  # files 0..10: numeric, not lexicographic, order
    ds = load_cot("cqa", tmp_path, check_counts=False)
    assert [r.split(" ")[1] for r in ds["train"]["rationale"]] == [str(i) for i in range(12)]
    assert ds["train"]["rationale"][0] == "Item 0 goes in a box. So the answer is (a) box."
    with pytest.raises(CoTFormatError, match="expected 9741"):
        load_cot("cqa", tmp_path)
    (tmp_path / "cqa" / "llm" / "train_CoT_10.json").unlink()
    with pytest.raises(CoTFormatError, match=r"has 12 examples but .* hold 1[01] LLM completions"):
        load_cot("cqa", tmp_path, check_counts=False)
    write_cot(tmp_path, n_train=12, files=11)
    (tmp_path / "cqa" / "cqa_test.json").write_text('{"id": 1, "question": "q"\n')
    with pytest.raises(CoTFormatError, match=r"cqa_test.json, line 1"):
        load_cot("cqa", tmp_path, check_counts=False)


def test_rationale_is_text_before_first_blank_line():
    assert rationale_of("a b.\nc d.\n\nQ: more\n\nA: x") == "a b.\nc d."


@pytest.mark.parametrize("text,value", [
    ("( 84.0 / 2.0 )", 42.0), ("-3 + 4 * 2", 5.0), ("((1 + 2) * (3 - 5)) / -2", 3.0), ("( 84. 0 / 2. 0 )", 42.0),
    ("7", 7.0), ("+2.5", 2.5),
])
def test_safe_evaluator_accepts_arithmetic(text, value):
    assert evaluate_expression(text) == pytest.approx(value)


@pytest.mark.parametrize("text", [
    "__import__('os').system('touch /tmp/pwned')", "open('/etc/passwd').read()", "x + 1", "(1).real",
    "2 ** 10", "9 ** 9 ** 9", "1e300 * 1e300", "1 / 0", "1 if 1 else 2", "[1, 2]", "'a' * 3", "lambda: 1",
    "1 < 2", "10000000000000000 + 1", "(" * 500 + "1" + ")" * 500, "1" * 300, "True + 1", "1; 2", "", None,
    "1 // 2", "7 % 3", "~1",
])
def test_safe_evaluator_refuses_everything_else(text):
    assert evaluate_expression(text) is None
    assert not Path("/tmp/pwned").exists()


def test_answer_matching():
    assert answers_match("svamp", "( 42 / 1 )", "( 84.0 / 2.0 )")
    assert not answers_match("svamp", "os.system('x')", "( 84.0 / 2.0 )")
    assert answers_match("cqa", " Math Problem ", "math problem") and not answers_match("cqa", "park", "garden")


def test_released_loss_by_hand():
    g = torch.Generator().manual_seed(0)
    zl = torch.randn(2, 3, 5, generator=g, dtype=torch.float64)  # B x T_label x V
    zr = torch.randn(2, 4, 5, generator=g, dtype=torch.float64)
    loss = mi_loss_released(zl, zr).item()
    expected = 0.0
    for b in range(2):
        pl = [max(math.exp(zl[b, t, v]) / sum(math.exp(zl[b, t, u]) for u in range(5)) for t in range(3)) for v in range(5)]
        pr = [max(math.exp(zr[b, t, v]) / sum(math.exp(zr[b, t, u]) for u in range(5)) for t in range(4)) for v in range(5)]
        log_norm = math.log(sum(math.exp(x) for x in pr))
        expected += -sum(pl[v] * (pr[v] - log_norm) for v in range(5))
    assert loss == pytest.approx(expected / 2)
    # gradient reaches the rationale logits only (the label vector is a detached target)
    zl.requires_grad_(True)
    zr.requires_grad_(True)
    mi_loss_released(zl, zr).backward()
    assert zl.grad is None or torch.all(zl.grad == 0)
    assert zr.grad.abs().sum() > 0


def test_masking_leaves_padding_out():
    zl = torch.zeros(1, 3, 4)
    zl[0, 2, 1] = 20.0  # a padding position with a confident distribution
    zr = torch.randn(1, 2, 4)
    mask_l = torch.tensor([[True, True, False]])
    masked = mi_loss_released(zl, zr, mask_l, torch.ones(1, 2, dtype=torch.bool))
    truncated = mi_loss_released(zl[:, :2], zr)
    unmasked = mi_loss_released(zl, zr)
    assert masked.item() == pytest.approx(truncated.item())
    assert unmasked.item() != pytest.approx(masked.item())
    target = torch.softmax(zl[:, :2], -1).max(1).values
    assert masked.item() == pytest.approx(F.cross_entropy(torch.softmax(zr, -1).max(1).values, target).item())


@pytest.fixture(scope="module")
def tiny_seq2seq(tmp_path_factory):
    from transformers import BertConfig, EncoderDecoderConfig, EncoderDecoderModel

    from cmi_toolkit.data.models import load_tokenizer

    tok = load_tokenizer("minilm-l6")
    small = dict(vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                 intermediate_size=64, max_position_embeddings=256)
    cfg = EncoderDecoderConfig.from_encoder_decoder_configs(BertConfig(**small),
                                                            BertConfig(**small, is_decoder=True, add_cross_attention=True))
    torch.manual_seed(0)
    model = EncoderDecoderModel(cfg)
    for c in (model.config, model.generation_config):
        c.decoder_start_token_id, c.pad_token_id, c.eos_token_id = tok.cls_token_id, tok.pad_token_id, tok.sep_token_id
    path = tmp_path_factory.mktemp("tiny-seq2seq")
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path


@pytest.mark.parametrize("mode", ["label_only", "dss", "dss_mi"])
def test_few_steps_lower_the_loss(tmp_path, tiny_seq2seq, mode, capfd):
    write_cot(tmp_path / "cot", n_train=16, n_test=4, files=2)
    cfg = CoTConfig(dataset="cqa", mode=mode, model=str(tiny_seq2seq), max_train_samples=None, max_eval_samples=None,
                    epochs=6, batch_size=8, learning_rate=3e-3, max_rationale_length=24, max_label_length=6)
    rec = run_cot(cfg, tmp_path / "cot", progress=False, check_counts=False, n_examples=2)
    assert rec["steps"] == 12 and rec["n_test"] == 4 and 0.0 <= rec["accuracy"] <= 1.0
    assert rec["loss_end"]["total"] < rec["loss_start"]["total"]
    assert ("mi" in rec["loss_start"]) == (mode == "dss_mi")
    assert ("ce_rationale" in rec["loss_start"]) == (mode != "label_only")
    out = capfd.readouterr()
    assert "'loss':" not in out.out + out.err and "tokenise" not in out.err  # no log dicts, no library bars


def test_cot_student_trains_under_cpu_bf16_autocast(tmp_path, tiny_seq2seq):
    write_cot(tmp_path / "cot", n_train=16, n_test=4, files=2)
    cfg = CoTConfig(dataset="cqa", mode="dss_mi", model=str(tiny_seq2seq), max_train_samples=None, max_eval_samples=None,
                    epochs=6, batch_size=8, learning_rate=3e-3, max_rationale_length=24, max_label_length=6, bf16=True)
    rec = run_cot(cfg, tmp_path / "cot", progress=False, check_counts=False, n_examples=2)
    assert rec["loss_end"]["total"] < rec["loss_start"]["total"] and math.isfinite(rec["loss_end"]["mi"])
    p = rec["predictions"]  # per-example test predictions that reproduce the headline metric
    assert p["n"] == 4 and p["correct"].count("1") / 4 == pytest.approx(rec["metrics"]["choice_accuracy"])
