"""Chain-of-thought distillation that maximises mutual information (Chen et al., ACL Findings 2024).

Distilling Step-by-Step (DSS, Hsieh et al. 2023) trains one seq2seq student on two tasks from the
same input x: ``"predict: x" -> label`` and ``"explain: x" -> rationale`` (an LLM's rationale).
Chen et al. add a term that couples the two tasks:

    loss = alpha * CE_label + (1 - alpha) * CE_rationale + beta * L_MI

``mi_mode="released"`` reproduces the released code's L_MI: the softmax over the vocabulary of each
pass's decoder logits, max-pooled over target positions (a B x V vector per pass), then the
cross-entropy of the rationale vector (treated as logits) against the detached label vector
(treated as soft targets). The released code max-pooled over padding positions too;
``mask_padding=True`` (the kit's default) leaves them out, ``False`` reproduces that behaviour.
``beta = 0`` is DSS; ``mode="label_only"`` is plain label fine-tuning.

Data: CommonsenseQA and SVAMP with PaLM rationales, read from a folder given explicitly or by
``$CMI_TOOLKIT_COT_DIR`` (``cqa/cqa_{train,test}.json`` JSON Lines and ``cqa/llm/{split}_CoT_{i}.json``
arrays, concatenated in numeric order; the rationale is the completion before the first blank line).

Evaluation: CQA by exact match of the generated answer text; SVAMP by numeric equality of the
generated and reference expressions, computed by :func:`evaluate_expression`, a safe evaluator of
numbers, + - * /, unary minus and parentheses (never ``eval``).
"""

from __future__ import annotations

import ast
import json
import math
import os
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from transformers import Seq2SeqTrainer

from .losses import check_finite

__all__ = [
    "COT_DIR_ENV",
    "COUNTS",
    "CoTFormatError",
    "load_cot",
    "evaluate_expression",
    "answers_match",
    "mi_loss_released",
    "CoTConfig",
    "CoTTrainer",
    "build_seq2seq",
    "run_cot",
]

# EncoderDecoderModel warns on every forward with labels about a change made in transformers 4.12; the kit
# builds its models after that change, so the warning says nothing here.
warnings.filterwarnings("ignore", message="Version v4.12.0 introduces a better way", category=FutureWarning)

COT_DIR_ENV = "CMI_TOOLKIT_COT_DIR"
COUNTS = {"cqa": {"train": 9741, "test": 1221}, "svamp": {"train": 800, "test": 200}}


class CoTFormatError(ValueError):
    """CoT files are missing, malformed or do not match each other; the message names the file."""


# --------------------------------------------------------------------------------------------- data
def _cot_root(source: str | os.PathLike | None) -> Path:
    root = source or os.environ.get(COT_DIR_ENV)
    if not root:
        raise CoTFormatError(f"no CoT data folder: pass one or set {COT_DIR_ENV} (a folder holding cqa/ and svamp/)")
    root = Path(root).expanduser()
    if not root.is_dir():
        raise CoTFormatError(f"{root}: CoT data folder not found (set {COT_DIR_ENV})")
    return root


def _read_text(path: Path) -> str:
    """UTF-8 text of ``path``; a bad byte is an error naming the file and line."""
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise CoTFormatError(f"{path}, line {line}: byte {raw[exc.start:exc.start + 1]!r} is not UTF-8; "
                             "re-save the file as UTF-8") from None


def _read_jsonl(path: Path) -> list[dict]:
    if not path.is_file():
        raise CoTFormatError(f"{path}: missing file")
    rows = []
    for lineno, line in enumerate(_read_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise CoTFormatError(f"{path}, line {lineno}: not a JSON object ({exc.msg})") from None
    return rows


def _read_llm(folder: Path, split: str) -> tuple[list[str], list[Path]]:
    """The completions of ``<split>_CoT_0.json``, ``_1``, ... concatenated in numeric order.

    Any other file that starts with ``<split>_CoT_`` (``train_CoT_old.json``), or a gap in the
    numbering, is an error naming the file: a stray file must never be read or skipped silently.
    """
    pattern = re.compile(rf"^{re.escape(split)}_CoT_(\d+)\.json$")
    numbered: dict[int, Path] = {}
    for f in sorted(folder.glob(f"{split}_CoT_*")):
        m = pattern.match(f.name)
        if not m:
            raise CoTFormatError(f"{f}: not a numbered LLM file ({split}_CoT_<i>.json); move it out of {folder}")
        numbered[int(m.group(1))] = f
    if not numbered:
        raise CoTFormatError(f"{folder}: no {split}_CoT_<i>.json files")
    missing = sorted(set(range(max(numbered) + 1)) - set(numbered))
    if missing:
        raise CoTFormatError(f"{folder}: {split}_CoT_{missing[0]}.json is missing (the files are numbered 0, 1, ...)")
    files = [numbered[i] for i in sorted(numbered)]
    out: list[str] = []
    for f in files:
        try:
            data = json.loads(_read_text(f))
        except json.JSONDecodeError as exc:
            raise CoTFormatError(f"{f}, line {exc.lineno}: not a JSON array ({exc.msg})") from None
        if not isinstance(data, list) or not all(isinstance(x, str) for x in data):
            raise CoTFormatError(f"{f}: expected a JSON array of completion strings")
        out.extend(data)
    return out, files


def rationale_of(completion: str) -> str:
    """The LLM completion before its first blank line."""
    return re.split(r"\n\s*\n", completion.strip(), maxsplit=1)[0].strip()


def _cqa_input(row: dict, where: str) -> str:
    choices = row.get("choices")
    if not isinstance(choices, list) or len(choices) != 5 or "question" not in row or "answer" not in row:
        raise CoTFormatError(f"{where}: a CQA row needs question, answer and 5 choices")
    letters = "abcde"
    return row["question"].strip() + "\nAnswer Choices:\n" + "\n".join(f"({letters[i]}) {c}" for i, c in enumerate(choices))


def load_cot(dataset: str, source: str | os.PathLike | None = None, check_counts: bool = True):
    """A DatasetDict (train, test) with ``input``, ``label``, ``rationale`` columns.

    CQA: input = question + its five answer choices, label = the answer text.
    SVAMP: input = the problem, label = the arithmetic expression.
    """
    from datasets import Dataset, DatasetDict

    if dataset not in COUNTS:
        raise ValueError(f"dataset must be one of {list(COUNTS)}, got {dataset!r}")
    folder = _cot_root(source) / dataset
    splits = {}
    for split in ("train", "test"):
        path = folder / f"{dataset}_{split}.json"
        rows = _read_jsonl(path)
        completions, files = _read_llm(folder / "llm", split)
        if len(completions) != len(rows):
            raise CoTFormatError(
                f"{path} has {len(rows)} examples but {', '.join(f.name for f in files)} hold {len(completions)} "
                "LLM completions: the files must be in the same order and of the same length")
        if check_counts and len(rows) != COUNTS[dataset][split]:
            raise CoTFormatError(f"{path}: {len(rows)} examples, expected {COUNTS[dataset][split]} (the released split)")
        if dataset == "cqa":
            inputs = [_cqa_input(r, f"{path}, example {i + 1}") for i, r in enumerate(rows)]
            labels = [r["answer"].strip() for r in rows]
        else:
            for i, r in enumerate(rows):
                if "input" not in r or "label" not in r:
                    raise CoTFormatError(f"{path}, example {i + 1}: a SVAMP row needs input and label")
            inputs = [r["input"].strip() for r in rows]
            labels = [str(r["label"]).strip() for r in rows]
        splits[split] = Dataset.from_dict({"input": inputs, "label": labels,
                                           "rationale": [rationale_of(c) for c in completions]})
    return DatasetDict(splits)


# ---------------------------------------------------------------------------------- safe evaluator
_MAX_LEN = 256
_MAX_LITERAL = 1e15
_BINOPS = {ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b, ast.Mult: lambda a, b: a * b,
           ast.Div: lambda a, b: a / b}


def _normalise_expression(text: str) -> str:
    t = text.strip()
    t = re.sub(r"(\d)\s*\.\s*(\d)", r"\1.\2", t)  # WordPiece decodes "84.0" as "84. 0"
    return t


def evaluate_expression(text: str) -> float | None:
    """Value of an arithmetic expression of numbers, + - * /, unary minus and parentheses; else None.

    Parsed with :mod:`ast` and walked node by node; names, calls, attributes, powers, comparisons,
    literals above 1e15, strings over 256 characters, division by zero and non-finite results are
    refused (None). Nothing is ever executed.
    """
    if not isinstance(text, str) or len(text) > _MAX_LEN:
        return None
    try:
        tree = ast.parse(_normalise_expression(text), mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None

    def walk(node: ast.AST) -> float:
        if isinstance(node, ast.Expression):
            return walk(node.body)
        if isinstance(node, ast.Constant) and type(node.value) in (int, float):
            if abs(node.value) > _MAX_LITERAL:
                raise ValueError("literal too large")
            return float(node.value)
        if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
            return _BINOPS[type(node.op)](walk(node.left), walk(node.right))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            value = walk(node.operand)
            return -value if isinstance(node.op, ast.USub) else value
        raise ValueError(f"refused: {type(node).__name__}")

    try:
        value = walk(tree)
    except (ValueError, ZeroDivisionError, OverflowError, RecursionError):
        return None
    return value if math.isfinite(value) else None


def answers_match(dataset: str, predicted: str, reference: str) -> bool:
    """CQA: exact match after trimming and lower-casing; SVAMP: numeric equality of the expressions."""
    if dataset == "svamp":
        a, b = evaluate_expression(predicted), evaluate_expression(reference)
        return a is not None and b is not None and math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-6)
    return predicted.strip().lower() == reference.strip().lower()


# ------------------------------------------------------------------------------------------- loss
def mi_loss_released(label_logits: Tensor, rationale_logits: Tensor, label_mask: Tensor | None = None,
                     rationale_mask: Tensor | None = None) -> Tensor:
    """L_MI of the released code.

    v_label = max_t softmax(z_label[:, t, :]),  v_rat = max_t softmax(z_rat[:, t, :])  (B x V each);
    L_MI = CE(v_rat as logits, v_label.detach() as soft target) = -mean_b sum_v v_label log_softmax(v_rat).
    Masks (B x T, True for real target positions) leave padding out of the max-pool; None keeps it.
    """

    def pooled(logits: Tensor, mask: Tensor | None) -> Tensor:
        probs = torch.softmax(logits, dim=-1)
        if mask is not None:
            probs = probs * mask[..., None].to(probs.dtype)  # probabilities >= 0: a zeroed row never wins the max
        return probs.max(dim=1).values

    v_label = pooled(label_logits, label_mask)
    v_rat = pooled(rationale_logits, rationale_mask)
    return F.cross_entropy(v_rat, v_label.detach())


# ------------------------------------------------------------------------------------------ model
def build_seq2seq(model_id: str = "minilm2minilm"):
    """(model, tokenizer): a hub/local seq2seq model, or ``minilm2minilm``.

    ``minilm2minilm`` (offline default) is an encoder-decoder warm-started from the offline
    MiniLM for both encoder and decoder; the decoder's cross-attention is newly initialised.
    """
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer, EncoderDecoderModel
    from transformers.utils import logging as hf_logging

    from .models import resolve_model

    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        if model_id == "minilm2minilm":
            path = resolve_model("minilm-l6")
            tok = AutoTokenizer.from_pretrained(path)
            model = EncoderDecoderModel.from_encoder_decoder_pretrained(path, path)
            for cfg in (model.config, model.generation_config):
                cfg.decoder_start_token_id = tok.cls_token_id
                cfg.pad_token_id = tok.pad_token_id
                cfg.eos_token_id = tok.sep_token_id
            return model, tok
        path = resolve_model(model_id)
        return AutoModelForSeq2SeqLM.from_pretrained(path), AutoTokenizer.from_pretrained(path)
    finally:
        hf_logging.set_verbosity(verbosity)


def _target_ids(tokenizer, texts: list[str], max_length: int) -> list[list[int]]:
    ids = tokenizer(texts, truncation=True, max_length=max_length)["input_ids"]
    cls = tokenizer.cls_token_id
    if cls is not None:  # BERT-style: drop [CLS]; the decoder start token takes its place
        ids = [x[1:] if x and x[0] == cls else x for x in ids]
    return ids


def tokenize_cot(dataset, tokenizer, max_input_length: int = 256, max_label_length: int = 16,
                 max_rationale_length: int = 128):
    """Columns for the two tasks: pred_* ("predict: x" -> label) and expl_* ("explain: x" -> rationale)."""

    def encode(batch):
        pred = tokenizer(["predict: " + x for x in batch["input"]], truncation=True, max_length=max_input_length)
        expl = tokenizer(["explain: " + x for x in batch["input"]], truncation=True, max_length=max_input_length)
        return {"pred_input_ids": pred["input_ids"], "pred_attention_mask": pred["attention_mask"],
                "pred_labels": _target_ids(tokenizer, batch["label"], max_label_length),
                "expl_input_ids": expl["input_ids"], "expl_attention_mask": expl["attention_mask"],
                "expl_labels": _target_ids(tokenizer, batch["rationale"], max_rationale_length)}

    return dataset.map(encode, batched=True, desc="tokenise")


class CoTCollator:
    """Pads each of the two tasks' inputs (pad id) and targets (-100) to the batch's longest."""

    def __init__(self, pad_token_id: int):
        self.pad = pad_token_id

    @staticmethod
    def _pad(seqs: list[list[int]], value: int) -> Tensor:
        width = max(len(s) for s in seqs)
        return torch.tensor([list(s) + [value] * (width - len(s)) for s in seqs], dtype=torch.long)

    def __call__(self, rows: list[dict]) -> dict[str, Tensor]:
        out = {}
        for task in ("pred", "expl"):
            out[f"{task}_input_ids"] = self._pad([r[f"{task}_input_ids"] for r in rows], self.pad)
            out[f"{task}_attention_mask"] = self._pad([r[f"{task}_attention_mask"] for r in rows], 0)
            out[f"{task}_labels"] = self._pad([r[f"{task}_labels"] for r in rows], -100)
        return out


# --------------------------------------------------------------------------------------- training
MODES = ("label_only", "dss", "dss_mi")


@dataclass
class CoTConfig:
    """One CoT-distillation run. Presets: ``cpu`` (offline minilm2minilm, subsets) and ``paper`` (t5-base)."""

    dataset: str = field(default="cqa", metadata={"help": "cqa or svamp"})
    mode: str = field(default="dss_mi", metadata={"help": f"one of {MODES}"})
    model: str = field(default="minilm2minilm", metadata={"help": "minilm2minilm (offline) or a seq2seq model id/folder"})
    seed: int = field(default=0, metadata={"help": "training seed"})
    max_train_samples: int | None = field(default=1000, metadata={"help": "seeded training subset (None: all)"})
    max_eval_samples: int | None = field(default=300, metadata={"help": "seeded test subset (None: all)"})
    data_seed: int = field(default=0, metadata={"help": "seed of the subsets"})
    epochs: float = field(default=5.0, metadata={"help": "training epochs"})
    batch_size: int = field(default=32, metadata={"help": "batch size"})
    learning_rate: float = field(default=1e-4, metadata={"help": "peak learning rate"})
    alpha: float = field(default=0.5, metadata={"help": "weight of the label loss; 1 - alpha for the rationale"})
    beta: float = field(default=0.1, metadata={"help": "weight of L_MI (dss_mi only)"})
    mi_mode: str = field(default="released", metadata={"help": "released: the released code's L_MI"})
    mask_padding: bool = field(default=True, metadata={"help": "leave padding out of the MI max-pool"})
    max_input_length: int = field(default=256, metadata={"help": "input tokens"})
    max_rationale_length: int = field(default=128, metadata={"help": "rationale tokens"})
    max_label_length: int = field(default=24, metadata={"help": "label tokens"})

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")
        if self.mi_mode != "released":
            raise ValueError("mi_mode: only 'released' is implemented")
        if not 0 <= self.alpha <= 1 or self.beta < 0:
            raise ValueError("alpha must lie in [0, 1] and beta be non-negative")

    @property
    def effective_beta(self) -> float:
        return self.beta if self.mode == "dss_mi" else 0.0


PRESETS: dict[str, dict[str, Any]] = {
    "cpu": {},
    # the same offline student on all 9,741 CQA training examples: hours on 2 CPU cores, minutes on a GPU
    "gpu": {"max_train_samples": None, "max_eval_samples": None, "epochs": 2.0, "learning_rate": 3e-4},
    "paper": {"model": "t5-base", "max_train_samples": None, "max_eval_samples": None, "epochs": 20.0,
              "batch_size": 64, "learning_rate": 5e-5, "max_rationale_length": 256},
}


class CoTTrainer(Seq2SeqTrainer):
    """Two teacher-forced passes per batch; loss = alpha CE_label + (1-alpha) CE_rationale + beta L_MI."""

    loss_is_scaled_for_ga = False

    def __init__(self, *args, cot: CoTConfig, **kwargs):
        super().__init__(*args, **kwargs)
        self.cot = cot
        self.term_log: list[dict[str, float]] = []

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        pred = model(input_ids=inputs["pred_input_ids"], attention_mask=inputs["pred_attention_mask"],
                     labels=inputs["pred_labels"])
        terms = {"ce_label": pred.loss}
        if self.cot.mode == "label_only":
            total = pred.loss
        else:
            expl = model(input_ids=inputs["expl_input_ids"], attention_mask=inputs["expl_attention_mask"],
                         labels=inputs["expl_labels"])
            terms["ce_rationale"] = expl.loss
            total = self.cot.alpha * pred.loss + (1 - self.cot.alpha) * expl.loss
            if self.cot.effective_beta > 0:
                masks = ((inputs["pred_labels"] != -100), (inputs["expl_labels"] != -100)) \
                    if self.cot.mask_padding else (None, None)
                terms["mi"] = mi_loss_released(pred.logits, expl.logits, *masks)
                total = total + self.cot.effective_beta * terms["mi"]
        terms["total"] = total
        check_finite(terms, f"alpha={self.cot.alpha}, beta={self.cot.effective_beta}")
        if model.training:
            self.term_log.append({k: float(v.detach()) for k, v in terms.items()})
        return (total, pred) if return_outputs else total


@torch.no_grad()
def generate(model, tokenizer, inputs: list[str], prefix: str, max_new_tokens: int, batch_size: int = 32,
             max_input_length: int = 256) -> list[str]:
    """Greedy generations for ``prefix + x``, batched in length order."""
    model.eval()
    device = next(model.parameters()).device
    order = sorted(range(len(inputs)), key=lambda i: len(inputs[i]))
    out: list[str] = [""] * len(inputs)
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        enc = tokenizer([prefix + inputs[i] for i in idx], return_tensors="pt", padding=True, truncation=True,
                        max_length=max_input_length).to(device)
        gen = model.generate(**enc, max_new_tokens=max_new_tokens, num_beams=1, do_sample=False)
        for i, text in zip(idx, tokenizer.batch_decode(gen, skip_special_tokens=True), strict=True):
            out[i] = text.strip()
    return out


def run_cot(cfg: CoTConfig, source: str | os.PathLike | None = None, output_dir: str | os.PathLike | None = None,
            progress: bool = True, n_examples: int = 5, check_counts: bool = True) -> dict[str, Any]:
    """Train one CoT student and score its label accuracy on the test subset; returns a record."""
    import tempfile
    import time

    from transformers import Seq2SeqTrainingArguments, set_seed

    from .data import subset

    set_seed(cfg.seed)
    ds = load_cot(cfg.dataset, source, check_counts=check_counts)
    train = subset(ds["train"], cfg.max_train_samples, cfg.data_seed)
    test = subset(ds["test"], cfg.max_eval_samples, cfg.data_seed)
    model, tok = build_seq2seq(cfg.model)
    train_tok = tokenize_cot(train, tok, cfg.max_input_length, cfg.max_label_length, cfg.max_rationale_length)
    args = Seq2SeqTrainingArguments(
        output_dir=str(output_dir or tempfile.mkdtemp(prefix="cot_")), per_device_train_batch_size=cfg.batch_size,
        learning_rate=cfg.learning_rate, num_train_epochs=cfg.epochs, warmup_steps=0.1, weight_decay=0.01,
        logging_steps=10, save_strategy="no", report_to=[], seed=cfg.seed, remove_unused_columns=False,
        disable_tqdm=not progress, use_cpu=not torch.cuda.is_available(),
        dataloader_pin_memory=torch.cuda.is_available())
    trainer = CoTTrainer(model=model, args=args, train_dataset=train_tok, cot=cfg,
                                    data_collator=CoTCollator(tok.pad_token_id))
    t0 = time.perf_counter()
    trainer.train()
    train_s = time.perf_counter() - t0
    inputs = list(test["input"])
    t0 = time.perf_counter()
    preds = generate(trainer.model, tok, inputs, "predict: ", cfg.max_label_length,
                     max_input_length=cfg.max_input_length)
    correct = [answers_match(cfg.dataset, p, r) for p, r in zip(preds, test["label"], strict=True)]
    examples = []
    if cfg.mode != "label_only" and n_examples:
        rats = generate(trainer.model, tok, inputs[:n_examples], "explain: ", cfg.max_rationale_length,
                        max_input_length=cfg.max_input_length)
        examples = [{"input": x, "label": y, "predicted": p, "rationale": r}
                    for x, y, p, r in zip(inputs[:n_examples], test["label"][:n_examples], preds[:n_examples], rats,
                                          strict=True)]
    first, last = trainer.term_log[:5], trainer.term_log[-5:]

    def mean_terms(rows):
        return {k: sum(r[k] for r in rows) / len(rows) for k in rows[0]} if rows else {}

    from . import __version__

    return {"params": {**cfg.__dict__}, "accuracy": sum(correct) / len(correct), "n_test": len(correct),
            "n_train": len(train), "examples": examples, "loss_start": mean_terms(first), "loss_end": mean_terms(last),
            "steps": trainer.state.global_step, "train_s": train_s, "eval_s": time.perf_counter() - t0,
            "version": __version__, "device": str(next(trainer.model.parameters()).device)}


def run_cot_suite(dataset: str = "cqa", preset: str = "cpu", seeds: tuple[int, ...] = (0, 1, 2),
                  modes: tuple[str, ...] = MODES, source: str | os.PathLike | None = None,
                  results_dir: str | os.PathLike = "results/cot", overrides: dict[str, Any] | None = None,
                  progress: bool = True) -> list[dict[str, Any]]:
    """Every (mode, seed) run of a preset, skipping those already in the store; returns the records."""
    from tqdm.auto import tqdm

    from .results import ResultStore, run_key

    if preset not in PRESETS:
        raise ValueError(f"preset must be one of {list(PRESETS)}, got {preset!r}")
    store = ResultStore(results_dir)
    records = []
    jobs = [(m, s) for s in seeds for m in modes]
    for mode, seed in tqdm(jobs, desc=f"CoT {dataset}", disable=not progress):
        cfg = CoTConfig(**{**PRESETS[preset], **(overrides or {}), "dataset": dataset, "mode": mode, "seed": seed})
        key = run_key({"kind": "cot", **cfg.__dict__})
        record = store.load(key)
        if record is None:
            record = {**run_cot(cfg, source, progress=False), "key": key, "metrics": {}}
            record["metrics"] = {"accuracy": record["accuracy"]}
            store.save(key, record)
        records.append(record)
    return records


def cot_table(records: list[dict[str, Any]]) -> str:
    """Markdown: label accuracy per mode, mean ± std over seeds, paired difference against label-only."""
    import numpy as np

    by: dict[str, dict[int, float]] = {}
    for r in records:
        by.setdefault(r["params"]["mode"], {})[r["params"]["seed"]] = r["accuracy"]
    names = {"label_only": "label-only fine-tuning", "dss": "DSS (beta = 0)", "dss_mi": "DSS + MI (released L_MI)"}
    lines = ["| method | seeds | accuracy (%) | Δ vs label-only (seeds won) |", "|---|---|---|---|"]
    base = by.get("label_only", {})
    for mode in MODES:
        if mode not in by:
            continue
        acc = np.array([by[mode][s] for s in sorted(by[mode])])
        std = acc.std(ddof=1) if len(acc) > 1 else 0.0
        diff = ""
        shared = sorted(set(by[mode]) & set(base))
        if mode != "label_only" and shared:
            d = np.array([by[mode][s] - base[s] for s in shared])
            dstd = d.std(ddof=1) if len(d) > 1 else 0.0
            diff = f"{100 * d.mean():+.2f} ± {100 * dstd:.2f} ({int((d > 0).sum())}/{len(d)})"
        lines.append(f"| {names[mode]} | {len(acc)} | {100 * acc.mean():.2f} ± {100 * std:.2f} | {diff} |")
    return "\n".join(lines)
