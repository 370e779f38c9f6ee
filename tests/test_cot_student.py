"""The CPU CoT student (shared encoder, label head, rationale decoder), e-SNLI, bad CoT input and the CoT suite."""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from cmi_toolkit.cot import CoTConfig, CoTFormatError, load_cot, run_cot
from cmi_toolkit.cot.data import CoTDataWarning, esnli_answer, esnli_rationale

from .test_cot import _shared_cot, write_cot

WORDS = ("entailment", "neutral", "contradiction")


def write_esnli(root: Path, n_train: int = 24, n_test: int = 9, completions=None) -> Path:
    """A tiny e-SNLI folder in the released layout (valid and test splits, two numbered LLM files each).

    The label is readable from the hypothesis ("... yes" / "... maybe" / "... no"), so a student can learn it."""
    folder = root / "esnli"
    (folder / "llm").mkdir(parents=True, exist_ok=True)
    cue = ("yes", "maybe", "no")
    for split, n in (("valid", n_train), ("test", n_test)):
        rows = [{"premise": f"a person number {i} walks", "hypothesis": f"someone walks {cue[i % 3]}",
                 "label": i % 3, "explanation_1": f"walking is {cue[i % 3]}", "explanation_2": "", "explanation_3": ""}
                for i in range(n)]
        (folder / f"esnli_{split}.json").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
        comps = completions if completions is not None and split == "valid" else [
            f"the person walks so it is {cue[i % 3]}.\nAnswer: {WORDS[i % 3]}\n\nPremise: x\nHypothesis: y"
            for i in range(n)]
        half = len(comps) // 2
        (folder / "llm" / f"{split}_CoT_0.json").write_text(json.dumps(comps[:half]))
        (folder / "llm" / f"{split}_CoT_1.json").write_text(json.dumps(comps[half:]))
    return root


def test_esnli_rationale_is_the_text_before_its_answer_line():
    c = "The church choir sings, so the church is filled with song.\nAnswer: entailment\n\nPremise: p\nAnswer: neutral"
    assert esnli_rationale(c) == "The church choir sings, so the church is filled with song."
    assert esnli_answer(c) == "entailment"
    assert esnli_rationale("A toddler is a child. A child is a person.") is None
    assert esnli_answer("no line here") is None


def test_real_esnli_rows(cot_dir):
    with pytest.warns(CoTDataWarning) as caught:
        ds = load_cot("esnli", cot_dir)
    assert (len(ds["train"]), len(ds["test"])) == (9842, 9824)
    test = ds["test"][1]
    assert test["rationale"] == "The church choir is singing joyous songs from the book."
    assert test["label"] == "entailment" and test["label_id"] == 0 and test["teacher_answer"] == "entailment"
    assert test["explanation"].startswith('"Filled with song" is a rephrasing')
    # the released validation split has four completions with no 'Answer:' line: each named, none trained on
    missing = [str(w.message) for w in caught if "no 'Answer:' line" in str(w.message)]
    assert len(missing) == 4 and "valid_CoT_0.json, row 134" in missing[0]
    assert sum(not ok for ok in ds["train"]["rationale_ok"]) == 4 and all(ds["test"]["rationale_ok"])
    assert all(r and "Answer:" not in r for r in ds["test"]["rationale"][:500])


@pytest.fixture(scope="module")
def cot_dir():
    path = _shared_cot()
    if path is None or not (path / "esnli").is_dir():
        pytest.skip("CoT data with e-SNLI not found beside the repo")
    return path


def test_bad_esnli_input_is_one_named_line_each(tmp_path):
    write_esnli(tmp_path)
    rows = (tmp_path / "esnli" / "esnli_valid.json").read_text().splitlines()
    # a label outside {0, 1, 2}
    bad = json.loads(rows[2]) | {"label": 3}
    (tmp_path / "esnli" / "esnli_valid.json").write_text("\n".join(rows[:2] + [json.dumps(bad)] + rows[3:]) + "\n")
    with pytest.raises(CoTFormatError, match=r"esnli_valid.json, example 3: label: .*less than or equal to 2"):
        load_cot("esnli", tmp_path, check_counts=False)
    # a row missing a field
    bad = {k: v for k, v in json.loads(rows[4]).items() if k != "hypothesis"}
    (tmp_path / "esnli" / "esnli_valid.json").write_text("\n".join(rows[:4] + [json.dumps(bad)] + rows[5:]) + "\n")
    with pytest.raises(CoTFormatError, match=r"esnli_valid.json, example 5: hypothesis: missing"):
        load_cot("esnli", tmp_path, check_counts=False)
    # a rationale file with another number of rows than the data
    write_esnli(tmp_path, completions=["r.\nAnswer: neutral"] * 23)
    with pytest.raises(CoTFormatError, match=r"esnli_valid.json has 24 examples but .* hold 23 LLM completions"):
        load_cot("esnli", tmp_path, check_counts=False)


def test_missing_answer_line_and_unknown_label_word_are_named(tmp_path):
    comps = [f"reason {i}.\nAnswer: {WORDS[i % 3]}" for i in range(24)]
    comps[3] = "a rambling completion with no answer line"
    comps[20] = "reason 20.\nAnswer: maybe"
    write_esnli(tmp_path, completions=comps)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = load_cot("esnli", tmp_path, check_counts=False)
    said = [str(w.message) for w in caught if issubclass(w.category, CoTDataWarning)]
    assert any("valid_CoT_0.json, row 4: no 'Answer:' line" in s for s in said)
    assert any("valid_CoT_1.json, row 9: answer 'maybe' is not one of" in s for s in said)
    train = ds["train"]
    assert train["rationale_ok"][3] is False and train["rationale"][3] == ""  # never trained on: see split_pool
    assert train["teacher_answer"][20] == "" and train["rationale_ok"][20] is True


def test_teacher_files_with_no_parsable_answer_are_refused(tmp_path):
    write_esnli(tmp_path, completions=[f"reason {i}." for i in range(24)])
    with pytest.raises(CoTFormatError, match="none of the 24 valid completions states a parsable answer"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            load_cot("esnli", tmp_path, check_counts=False)


def test_cqa_answer_outside_its_choices_and_svamp_label_that_does_not_evaluate(tmp_path):
    write_cot(tmp_path, n_train=12, n_test=4, files=2)
    path = tmp_path / "cqa" / "cqa_test.json"
    rows = [json.loads(x) for x in path.read_text().splitlines()]
    rows[1]["answer"] = "garage"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    with pytest.raises(CoTFormatError, match=r"cqa_test.json, example 2: answer 'garage' is not one of its five"):
        load_cot("cqa", tmp_path, check_counts=False)
    svamp = tmp_path / "svamp"
    (svamp / "llm").mkdir(parents=True)
    for split, label in (("train", "( 84.0 / 2.0 )"), ("test", "( 84.0 / 0 )")):
        (svamp / f"svamp_{split}.json").write_text(json.dumps({"input": "q", "label": label}) + "\n")
        (svamp / "llm" / f"{split}_CoT_0.json").write_text(json.dumps(["So the answer is (84 / 2)."]))
    with pytest.raises(CoTFormatError, match=r"svamp_test.json, example 1: label '\( 84.0 / 0 \)' does not evaluate"):
        load_cot("svamp", tmp_path, check_counts=False)


def test_encoder_student_refuses_svamp():
    with pytest.raises(ValueError, match="svamp's answers are arithmetic expressions"):
        CoTConfig(dataset="svamp", student="encoder")


# -- the student -------------------------------------------------------------------------------------------------
def _student(tiny_model_dir, kind="pair", mi_mode=None, k=3):
    from cmi_toolkit.cot.student import CoTStudent, StudentConfig

    torch.manual_seed(0)
    return CoTStudent(str(tiny_model_dir), StudentConfig(kind=kind, num_labels=k, decoder_layers=1, mi_mode=mi_mode))


def _batch(tiny_model_dir, tmp_path, kind="pair", n=6):
    from transformers import AutoTokenizer

    from cmi_toolkit.cot.student import StudentCollator, encode_student

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    if kind == "pair":
        write_esnli(tmp_path)
        split = load_cot("esnli", tmp_path, check_counts=False)["train"]
    else:
        write_cot(tmp_path, n_train=12, n_test=4, files=2)
        split = load_cot("cqa", tmp_path, check_counts=False)["train"]
    enc = encode_student(split.select(range(n)), tok, kind, 64, 24)
    return StudentCollator(tok.pad_token_id)([enc[i] for i in range(n)]), enc, tok


def test_released_term_by_hand(tiny_model_dir, tmp_path):
    """L_MI = CE(u, softmax(z_label).detach()), u_k = mean over label k's word pieces of max_t p_dec(w)."""
    from cmi_toolkit.cot.student import student_terms

    student = _student(tiny_model_dir, mi_mode="released").eval()
    batch, _, tok = _batch(tiny_model_dir, tmp_path)
    terms = student_terms(student, batch, alpha=0.5, beta=0.1, label_only=False)
    logits, _, states, smask = student.encode(batch)
    vocab, _ = student.decode(batch["rationale_ids"], batch["rationale_mask"], states, smask)
    probs = torch.softmax(vocab[:, :-1].float(), -1)
    ids, mask = batch["rationale_ids"], batch["rationale_mask"]
    expected = []
    for b in range(ids.shape[0]):
        n_targets = int(mask[b, 1:].sum())
        v = probs[b, :n_targets].max(0).values
        u = torch.stack([v[tok(w, add_special_tokens=False)["input_ids"]].mean() for w in WORDS])
        p = torch.softmax(logits[b].float(), -1)
        expected.append(-(p * torch.log_softmax(u, -1)).sum())
    assert terms["mi"].item() == pytest.approx(torch.stack(expected).mean().item(), rel=1e-5)
    ce_r = F.cross_entropy(vocab[:, :-1].float().reshape(-1, vocab.shape[-1]),
                           ids[:, 1:].masked_fill(mask[:, 1:] == 0, -100).reshape(-1), ignore_index=-100)
    assert terms["ce_rationale"].item() == pytest.approx(ce_r.item(), rel=1e-5)
    assert terms["total"].item() == pytest.approx(0.5 * terms["ce_label"].item() + 0.5 * ce_r.item()
                                                  + 0.1 * terms["mi"].item(), rel=1e-5)


def test_label_target_of_the_released_term_is_detached(tiny_model_dir, tmp_path):
    from cmi_toolkit.cot.student import student_terms

    student = _student(tiny_model_dir, mi_mode="released")
    batch, _, _ = _batch(tiny_model_dir, tmp_path)
    student_terms(student, batch, alpha=0.5, beta=1.0, label_only=False)["mi"].backward()
    assert student.head.weight.grad is None or float(student.head.weight.grad.abs().sum()) == 0.0
    assert float(student.decoder.cls.predictions.transform.dense.weight.grad.abs().sum()) > 0


def test_label_only_never_reads_the_decoder_and_padding_is_never_a_target(tiny_model_dir, tmp_path):
    from cmi_toolkit.cot.student import student_terms

    student = _student(tiny_model_dir).eval()
    batch, _, _ = _batch(tiny_model_dir, tmp_path)
    only = student_terms(student, batch, alpha=0.5, beta=0.0, label_only=True)
    assert set(only) == {"ce_label", "total"}
    # a longer pad tail changes nothing
    padded = dict(batch)
    padded["rationale_ids"] = F.pad(batch["rationale_ids"], (0, 5), value=0)
    padded["rationale_mask"] = F.pad(batch["rationale_mask"], (0, 5), value=0)
    a = student_terms(student, batch, alpha=0.5, beta=0.0, label_only=False)["ce_rationale"]
    b = student_terms(student, padded, alpha=0.5, beta=0.0, label_only=False)["ce_rationale"]
    assert a.item() == pytest.approx(b.item(), rel=1e-5)


def test_choice_student_scores_each_pair_and_reads_all_pairs(tiny_model_dir, tmp_path):
    from cmi_toolkit.cot.student import student_terms

    student = _student(tiny_model_dir, kind="choice", mi_mode="variational", k=5).eval()
    batch, _, _ = _batch(tiny_model_dir, tmp_path, kind="choice")
    assert batch["input_ids"].shape[:2] == (6, 5)
    logits, h, states, smask = student.encode(batch)
    assert logits.shape == (6, 5) and h.shape == (6, 32) and states.shape[1] == 5 * batch["input_ids"].shape[2]
    # the score of a choice is that pair's own: permuting the choices permutes the scores
    perm = torch.tensor([2, 0, 4, 1, 3])
    swapped = {**batch, **{k: batch[k][:, perm] for k in ("input_ids", "attention_mask", "token_type_ids")}}
    assert torch.allclose(student.encode(swapped)[0], logits[:, perm], atol=1e-5)
    terms = student_terms(student, batch, alpha=0.5, beta=0.1, label_only=False)
    assert math.isfinite(terms["mi"].item()) and terms["mi"].item() >= -math.log(6) - 1e-5  # -I_NCE >= -log B


@pytest.mark.parametrize("variant", ["label_only", "dss", "dss_mi", "dss_mi_var"])
def test_student_run_learns_the_tiny_task_and_records_what_it_did(tiny_model_dir, tmp_path, variant):
    from cmi_toolkit.cot.runs import VARIANTS
    from cmi_toolkit.data.predictions import decode_predictions

    write_esnli(tmp_path / "cot", n_train=60, n_test=12)
    cfg = CoTConfig(**{**VARIANTS[variant], "dataset": "esnli", "student": "encoder", "model": str(tiny_model_dir),
                       "max_train_samples": None, "max_eval_samples": None, "epochs": 8, "batch_size": 8,
                       "learning_rate": 3e-3, "heldout_samples": 10, "max_input_length": 32,
                       "max_rationale_length": 16, "decoder_layers": 1, "rouge_rows": 4})
    rec = run_cot(cfg, tmp_path / "cot", progress=False, check_counts=False, n_examples=2)
    m = rec["metrics"]
    assert rec["n_train"] == 50 and rec["n_heldout"] == 10 and rec["n_test"] == 12
    assert m["accuracy"] > 0.6 and m["chance"] == pytest.approx(1 / 3)  # the cue word is learnable
    assert m["teacher_accuracy"] == 1.0 and m["majority_class"] == pytest.approx(4 / 12)
    assert decode_predictions(rec).pred.tolist() and (decode_predictions(rec).pred == decode_predictions(rec).labels
                                                      ).mean() == pytest.approx(m["accuracy"])
    assert rec["loss_end"]["total"] < rec["loss_start"]["total"]
    assert [s for s, _ in m["heldout_curve"]][-1] == rec["steps"] and m["selected_step"] in dict(m["heldout_curve"])
    if variant == "label_only":
        assert "ce_rationale" not in rec["loss_start"] and not rec["examples"] and "rouge_l_palm" not in m
        assert rec["checks"]["mechanism"]["passed"] is None
    else:
        assert 0.0 <= m["rouge_l_palm"] <= 1.0 and 0.0 <= m["rouge_l_human"] <= 1.0 and m["rouge_rows"] == 4
        assert rec["examples"][0]["palm"].startswith("the person walks") and "human" in rec["examples"][0]
        assert rec["checks"]["mechanism"]["checks"]["rationale CE fell"] is True
        assert ("mi" in rec["loss_start"]) == variant.startswith("dss_mi")
    assert "at_or_below_chance" not in rec["checks"]["flags"] and "one_class" not in rec["checks"]["flags"]


# -- the suite ---------------------------------------------------------------------------------------------------
SUITE = """suite: tiny_cot
kind: cot
preset: cpu
seeds: [0, 1]
modes: [label_only, dss]
common: {{model: {model}, data_seed: seed, epochs: 2.0, batch_size: 8, learning_rate: 0.005, heldout_samples: 6,
         max_input_length: 32, max_rationale_length: 16, decoder_layers: 1, rouge_rows: 3, bf16: false}}
datasets:
  esnli: {{max_train_samples: 40}}
family:
  - {{method: dss, baseline: label_only}}
plan:
  hypotheses: ["DSS - label-only = 0"]
  primary_metric: {{esnli: accuracy}}
  seeds: {{start: 2, max: 3}}
  stopping: "none"
results_dir: {results}
"""


def test_cot_suite_runs_its_plan_resumes_and_reports_the_family(tiny_model_dir, tmp_path):
    from cmi_toolkit.cot.suite import cot_report, load_cot_suite, run_cot_verdict

    write_esnli(tmp_path / "cot", n_train=96, n_test=9)
    path = tmp_path / "suite.yaml"
    path.write_text(SUITE.format(model=tiny_model_dir, results=tmp_path / "r"))
    spec = load_cot_suite(path)
    records = run_cot_verdict(spec, tmp_path / "cot", progress=False, check_counts=False, seeds=[0])
    assert len(records) == 2 and {r["arm"] for r in records} == {"label_only", "dss"}
    assert all(r["params"]["data_seed"] == 0 and r["n_train"] == 40 for r in records)
    out = cot_report(spec, tmp_path / "cot")
    text = out["md"].read_text()
    assert out["missing"] == ["esnli/label_only/seed1", "esnli/dss/seed1"] and "2 of 4 planned runs" in text
    assert "no record yet for esnli/label_only/seed1" in text and "So far (partial)" in text
    again = run_cot_verdict(spec, tmp_path / "cot", progress=False, check_counts=False)  # resumes: seed 1 only
    assert [r["key"] for r in again[:2]] == [r["key"] for r in records[:1]] + [records[1]["key"]]
    out = cot_report(spec, tmp_path / "cot")
    row = next(r for r in out["rows"] if r["task"] == "esnli")
    # a tiny random model learns unevenly: a flagged (degenerate) seed is left out of the comparison, never counted
    flagged = {r["params"]["seed"] for r in again if r["checks"]["flags"]}
    assert row["question"] == "DSS − label-only" and row["n"] == 2 - len(flagged) and row["left_out"] == len(flagged)
    assert "p_holm" in row and row["verdict"] in ("better", "worse", "no difference detected", "too few seeds")
    text = out["md"].read_text()
    assert "Does the rationale task help" in text and "4 of 4 planned runs" in text and "| esnli | DSS (β = 0) | 2 |" in text


@pytest.mark.parametrize("change,expected", [
    ("suite: tiny_cot", "suite: '../../x' is not a safe name"),
    ("modes: [label_only, dss]", "modes: unknown mode(s) ['dsss']"),
    ("  esnli: {max_train_samples: 40}", "datasets.esnli: unknown key(s) ['max_train_rows']"),
])
def test_cot_suite_file_mistakes_are_one_named_line(tmp_path, change, expected):
    from cmi_toolkit.cot.suite import load_cot_suite

    bad = {"suite: tiny_cot": "suite: ../../x", "modes: [label_only, dss]": "modes: [label_only, dsss]",
           "  esnli: {max_train_samples: 40}": "  esnli: {max_train_rows: 40}"}[change]
    text = SUITE.format(model="minilm-l6", results=tmp_path / "r").replace(change, bad)
    path = tmp_path / "suite.yaml"
    path.write_text(text)
    with pytest.raises(ValueError) as err:
        load_cot_suite(path)
    assert str(path) in str(err.value) and expected in str(err.value) and "\n" not in str(err.value)


def test_a_term_that_drifts_at_the_7th_digit_has_not_moved():
    """The released L_MI (probabilities read as logits) sits at ln K: a change of 1e-7 is no mechanism passed."""
    from cmi_toolkit.cot.student_run import mechanism

    start, end = {"ce_rationale": 10.3, "mi": 1.0986127}, {"ce_rationale": 3.1, "mi": 1.0986126}
    m = mechanism("dss_mi", "released", start, end)
    assert m["checks"] == {"rationale CE fell": True, "released L_MI fell": False} and m["passed"] is False
    assert mechanism("dss_mi", "released", start, {**end, "mi": 0.9})["passed"] is True
    var = mechanism("dss_mi", "variational", {"ce_rationale": 9.0, "mi": 0.01}, {"ce_rationale": 3.0, "mi": -0.5})
    assert var["passed"] is True
    assert mechanism("dss_mi", "variational", {"ce_rationale": 9.0, "mi": 0.01}, {"ce_rationale": 3.0, "mi": 0.0}
                     )["passed"] is False
    assert mechanism("label_only", "released", {"ce_label": 1.1}, {"ce_label": 0.5})["passed"] is None


def test_the_decoder_learns_at_its_own_rate(tiny_model_dir, tmp_path):
    from transformers import TrainingArguments

    from cmi_toolkit.cot.student_run import StudentTrainer

    student = _student(tiny_model_dir)
    cfg = CoTConfig(dataset="esnli", student="encoder", mode="dss", decoder_lr_scale=10.0)
    args = TrainingArguments(output_dir=str(tmp_path), learning_rate=2e-4, weight_decay=0.01, report_to=[],
                             use_cpu=True)
    trainer = StudentTrainer(model=student, args=args, cot=cfg)
    groups = trainer.create_optimizer().param_groups
    decoder = {id(p) for p in student.decoder.parameters()}
    for g in groups:
        in_decoder = {id(p) in decoder for p in g["params"]}
        assert len(in_decoder) == 1  # a group is all decoder or none of it
        assert g["lr"] == pytest.approx(2e-3 if in_decoder.pop() else 2e-4)
    assert sum(len(g["params"]) for g in groups) == len(list(student.parameters()))
