"""The CPU student: one pretrained encoder, a label head and a rationale decoder (Distilling Step-by-Step on a CPU).

The seq2seq student of the paper (T5) writes its label as text, so on two CPU cores it must first learn to *generate*
through a cross-attention that starts from nothing (``minilm2minilm`` never beat chance here). This student keeps the
two tasks of Distilling Step-by-Step on one shared encoder and learns the label task the way an encoder classifier
does:

* **encoder**: the offline MiniLM-L6 (384 wide), read once per input and shared by both tasks;
* **label task**: e-SNLI's (premise, hypothesis) pair through a 3-way head on the pooled [CLS] state; CQA through a
  multiple-choice head that scores each (question, choice) pair, score_k = w . pool(enc(q, c_k)) + b, softmax over
  the five choices;
* **rationale task**: a ``decoder_layers``-layer BERT decoder warm-started from MiniLM's first layers (new
  cross-attention and LM-head transform, output layer tied to its word embeddings), teacher-forced on the LLM's
  rationale while it cross-attends to the same encoder states (CQA: the five pairs' states side by side).

    loss = alpha * CE_label + (1 - alpha) * CE_rationale + beta * L_MI          (label_only: CE_label alone)

**The rationale gradient's share of the encoder** (``rationale_grad_scale`` g, a departure the paper's T5 student does
not need): the decoder reads the encoder states forward unchanged, but only g of the rationale side's gradient flows
back into the shared encoder. With g = 1 the rationale task's token CE through a new cross-attention dominates
Adam's second moments of the shared encoder, and the label task stays at chance (e-SNLI, 4,000 rows: 33.4 % test
accuracy, every run flagged degenerate; gradient clipping changes nothing). On held-out training rows g = 0.1 and
0.01 learn the label task as fast as label-only or faster (``benchmarks/cot_grad_scale.py``,
``results/cot/pilot/grad_scale.txt``); the cpu preset uses 0.1. With Adam the weights alpha and (1 - alpha) matter
only on the shared encoder, so g is what sets the two tasks' balance there while alpha and beta keep their meaning.
The decoder learns at ``decoder_lr_scale`` times the encoder's rate (the cpu preset: 10): at the same rate it wrote one
rationale for every input after 250 steps; at 10x it reads its input (``benchmarks/cot_decoder_lr.py``).

Both MI terms couple the two tasks' views of one input x:

* ``released``: the released code's heuristic on this student's outputs. The rationale pass's vocabulary
  distributions are max-pooled over its target positions, v_rat[w] = max_t p_dec(w | r_<t, x) (as in the released
  code), and read at the label words' word pieces, u_k = mean_{w in pieces(label_k)} v_rat[w]; the label pass's
  vector is its own class distribution p = softmax(z_label). L_MI = CE(u as logits, p.detach()) =
  -sum_k p_k log softmax(u)_k. *Departure from the paper*: T5 writes the label as text, so the released code
  compares two max-pooled vocabulary vectors; here the label pass has a class head, so its vector is the head's
  distribution and the rationale pass's vector is restricted to the label words' coordinates.
* ``variational``: the InfoNCE lower bound I(H; R) >= log B + mean_i [S_ii - logsumexp_j S_ij] between the label
  task's representation h (e-SNLI: the pooled state the head reads; CQA: the pooled pair states weighted by the
  head's choice distribution) and the rationale task's r (the mean of the decoder's last hidden states over the
  rationale's target positions), with a learned critic (:class:`~cmi_toolkit.cot.mi.InfoNCECritic`); L_MI = -I_NCE.
  *Departure*: the paper's representations are two decoder passes of one seq2seq model; here the label task has no
  decoder pass, so its representation is the encoder state its head reads.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .mi import InfoNCECritic, pooled_states

__all__ = ["token_count", "rouge_l", "StudentConfig", "CoTStudent", "StudentCollator", "encode_student", "student_terms", "greedy_rationales",
           "predict_labels", "KINDS"]

#: how each dataset's label task is read: a pair classifier or a multiple-choice scorer
KINDS = {"esnli": "pair", "cqa": "choice"}


@dataclass
class StudentConfig:
    """The shape of a :class:`CoTStudent`."""

    kind: str = "pair"
    num_labels: int = 3
    decoder_layers: int = 2
    mi_mode: str | None = None  # None (no MI term), "released" or "variational"
    critic_seed: int = 0
    #: the share of the rationale task's gradient that reaches the shared encoder (1: all of it; forward unchanged)
    rationale_grad_scale: float = 1.0


def _load_bert(path: str, **overrides):
    """A BERT config from a local folder, refusing remote code and unknown model types (no code from a folder runs)."""
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(path, trust_remote_code=False)
    if config.model_type != "bert":
        raise ValueError(f"{path}: the CPU student needs a BERT encoder (model_type 'bert'), got {config.model_type!r}")
    for key, value in overrides.items():
        setattr(config, key, value)
    return config


class CoTStudent(nn.Module):
    """Shared encoder + label head + rationale decoder (module docstring). ``forward`` returns the loss terms."""

    def __init__(self, encoder_path: str, config: StudentConfig):
        super().__init__()
        from transformers import BertLMHeadModel, BertModel
        from transformers.utils import logging as hf_logging

        if config.kind not in ("pair", "choice"):
            raise ValueError(f"kind must be pair or choice, got {config.kind!r}")
        self.config_ = config
        verbosity = hf_logging.get_verbosity()
        hf_logging.set_verbosity_error()  # the new head and cross-attention weights are meant to start afresh
        try:
            self.encoder = BertModel.from_pretrained(encoder_path, config=_load_bert(encoder_path),
                                                     use_safetensors=True)
            self.decoder = None
            if config.decoder_layers > 0:
                dec_cfg = _load_bert(encoder_path, is_decoder=True, add_cross_attention=True,
                                     num_hidden_layers=config.decoder_layers, tie_word_embeddings=True)
                self.decoder = BertLMHeadModel.from_pretrained(encoder_path, config=dec_cfg, use_safetensors=True)
        finally:
            hf_logging.set_verbosity(verbosity)
        width = self.encoder.config.hidden_size
        self.dropout = nn.Dropout(self.encoder.config.hidden_dropout_prob)
        # seeded apart from the caller's stream, so a mode's extra modules never shift another's initialisation
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.critic_seed)
            self.head = nn.Linear(width, config.num_labels if config.kind == "pair" else 1)
            nn.init.normal_(self.head.weight, std=self.encoder.config.initializer_range)
            nn.init.zeros_(self.head.bias)
            self.critic = InfoNCECritic(width, width) if config.mi_mode == "variational" else None

    # -- the label task ------------------------------------------------------------------------------------------
    def encode(self, batch: dict[str, Tensor]) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """(label logits B x K, label representation h B x H, encoder states B x L' x H, their mask B x L').

        ``pair``: one pass over the pair; ``choice``: the K pairs of each row in one pass of B*K rows, whose states
        are laid side by side (B x K*L x H) for the decoder to read.
        """
        ids, mask = batch["input_ids"], batch["attention_mask"]
        types = batch.get("token_type_ids")
        shape = ids.shape
        if self.config_.kind == "choice":  # B x K x L -> B*K x L
            ids, mask = ids.flatten(0, 1), mask.flatten(0, 1)
            types = types.flatten(0, 1) if types is not None else None
        out = self.encoder(input_ids=ids, attention_mask=mask, token_type_ids=types)
        pooled = out.pooler_output
        scores = self.head(self.dropout(pooled))
        states = out.last_hidden_state
        if self.config_.kind == "pair":
            return scores, pooled, states, mask
        b, k = shape[0], shape[1]
        logits = scores.view(b, k)
        weights = torch.softmax(logits.float(), -1).to(pooled.dtype)
        h = (weights[..., None] * pooled.view(b, k, -1)).sum(1)
        return logits, h, states.reshape(b, -1, states.shape[-1]), mask.reshape(b, -1)

    # -- the rationale task --------------------------------------------------------------------------------------
    def decode(self, rationale_ids: Tensor, rationale_mask: Tensor, states: Tensor, states_mask: Tensor
               ) -> tuple[Tensor, Tensor]:
        """(vocabulary logits B x R x V, last hidden states B x R x H) of the decoder, teacher-forced."""
        if self.decoder is None:
            raise ValueError("this student has no rationale decoder (decoder_layers = 0)")
        g = self.config_.rationale_grad_scale
        if g != 1.0:  # same values forward; backward, g of the gradient flows into the encoder
            states = g * states + (1 - g) * states.detach()
        out = self.decoder.bert(input_ids=rationale_ids, attention_mask=rationale_mask, encoder_hidden_states=states,
                                encoder_attention_mask=states_mask)
        hidden = out.last_hidden_state
        return self.decoder.cls(hidden), hidden

    def forward(self, **batch: Tensor) -> dict[str, Tensor]:
        return student_terms(self, batch, alpha=1.0, beta=0.0, label_only=True)


def student_terms(student: CoTStudent, batch: dict[str, Tensor], alpha: float, beta: float,
                  label_only: bool) -> dict[str, Tensor]:
    """The named loss terms of one batch and their weighted ``total`` (module docstring's formula).

    ``ce_label`` = mean CE of the label logits; ``ce_rationale`` = mean next-token CE over the rationale's
    target positions; ``mi`` = L_MI of the student's ``mi_mode``.
    """
    logits, h, states, states_mask = student.encode(batch)
    terms = {"ce_label": F.cross_entropy(logits.float(), batch["labels"])}
    if label_only:
        terms["total"] = terms["ce_label"]
        return terms
    ids, mask = batch["rationale_ids"], batch["rationale_mask"]
    vocab_logits, hidden = student.decode(ids, mask, states, states_mask)
    # next-token prediction: position t predicts token t+1; padding (mask 0) is never a target. One log-softmax over
    # the vocabulary serves the rationale's CE and the released MI term's max-pool.
    target = ids[:, 1:].masked_fill(mask[:, 1:] == 0, -100)
    log_p = torch.log_softmax(vocab_logits[:, :-1].float(), -1)
    terms["ce_rationale"] = F.nll_loss(log_p.reshape(-1, log_p.shape[-1]), target.reshape(-1), ignore_index=-100)
    total = alpha * terms["ce_label"] + (1 - alpha) * terms["ce_rationale"]
    mode = student.config_.mi_mode
    if beta > 0 and mode is not None:
        positions = target != -100
        if mode == "variational":
            r = pooled_states(hidden[:, :-1].float(), positions)
            terms["mi"] = student.critic(h.float(), r)
        else:
            # v[w] = max_t p(w | r_<t, x) over target positions (probabilities >= 0: a zeroed row never wins)
            v = (log_p.exp() * positions[..., None]).max(1).values  # B x V
            pieces, piece_mask = batch["label_pieces"], batch["label_piece_mask"]  # B x K x P
            picked = v.gather(1, pieces.flatten(1)).view(pieces.shape) * piece_mask
            u = picked.sum(-1) / piece_mask.sum(-1).clamp_min(1)
            terms["mi"] = F.cross_entropy(u, torch.softmax(logits.float(), -1).detach())
        total = total + beta * terms["mi"]
    terms["total"] = total
    return terms


# -- tokenisation and batches ------------------------------------------------------------------------------------
def _pieces(tokenizer, words: list[str], width: int = 8) -> list[list[int]]:
    return [tokenizer(w, add_special_tokens=False)["input_ids"][:width] or [tokenizer.unk_token_id] for w in words]


def encode_student(split, tokenizer, kind: str, max_length: int = 128, max_rationale_length: int = 64,
                   with_rationale: bool = True):
    """Token columns of a CoT split for :class:`CoTStudent` (``datasets.map``; the libraries' bars are the caller's).

    pair: ``input_ids`` (premise, hypothesis); choice: ``input_ids`` as K lists, one per (question, choice) pair.
    ``labels`` (the label id), ``label_pieces`` (word pieces of each label word or choice) and, when
    ``with_rationale``, ``rationale_ids``: [CLS] rationale [SEP], truncated to ``max_rationale_length``.
    """

    def encode(batch):
        out: dict[str, Any] = {}
        if kind == "pair":
            enc = tokenizer(batch["premise"], batch["hypothesis"], truncation=True, max_length=max_length)
            out.update(input_ids=enc["input_ids"], token_type_ids=enc["token_type_ids"])
        else:
            ids, types = [], []
            for question, choices in zip(batch["question"], batch["choices"], strict=True):
                enc = tokenizer([question] * len(choices), choices, truncation=True, max_length=max_length)
                ids.append(enc["input_ids"])
                types.append(enc["token_type_ids"])
            out.update(input_ids=ids, token_type_ids=types)
        out["labels"] = batch["label_id"]
        out["label_pieces"] = [_pieces(tokenizer, c) for c in batch["choices"]]
        if with_rationale:
            out["rationale_ids"] = tokenizer(batch["rationale"], truncation=True,
                                             max_length=max_rationale_length)["input_ids"]
        return out

    keep = [c for c in split.column_names if c in ("rationale_ok",)]
    return split.map(encode, batched=True, remove_columns=[c for c in split.column_names if c not in keep])


class StudentCollator:
    """Pads inputs (pad id), masks, choices and rationales to the batch's longest; label pieces to the longest word."""

    def __init__(self, pad_token_id: int):
        self.pad = pad_token_id

    @staticmethod
    def _pad(seqs: list[list[int]], value: int, width: int | None = None) -> Tensor:
        width = width or max(len(s) for s in seqs)
        return torch.tensor([list(s) + [value] * (width - len(s)) for s in seqs], dtype=torch.long)

    def __call__(self, rows: list[dict[str, Any]]) -> dict[str, Tensor]:
        out: dict[str, Tensor] = {"labels": torch.tensor([r["labels"] for r in rows], dtype=torch.long)}
        first = rows[0]["input_ids"]
        if first and isinstance(first[0], list):  # choice: B x K x L
            width = max(len(s) for r in rows for s in r["input_ids"])
            out["input_ids"] = torch.stack([self._pad(r["input_ids"], self.pad, width) for r in rows])
            out["token_type_ids"] = torch.stack([self._pad(r["token_type_ids"], 0, width) for r in rows])
            out["attention_mask"] = torch.stack([self._pad([[1] * len(s) for s in r["input_ids"]], 0, width)
                                                 for r in rows])
        else:
            out["input_ids"] = self._pad([r["input_ids"] for r in rows], self.pad)
            out["token_type_ids"] = self._pad([r["token_type_ids"] for r in rows], 0)
            out["attention_mask"] = self._pad([[1] * len(r["input_ids"]) for r in rows], 0)
        pieces = [p for r in rows for p in r["label_pieces"]]
        k, width = len(rows[0]["label_pieces"]), max(len(p) for p in pieces)
        out["label_pieces"] = self._pad(pieces, 0, width).view(len(rows), k, width)
        out["label_piece_mask"] = self._pad([[1] * len(p) for p in pieces], 0, width).view(len(rows), k, width).float()
        if "rationale_ids" in rows[0]:
            out["rationale_ids"] = self._pad([r["rationale_ids"] for r in rows], self.pad)
            out["rationale_mask"] = self._pad([[1] * len(r["rationale_ids"]) for r in rows], 0)
        return out


# -- inference ---------------------------------------------------------------------------------------------------
def token_count(ids: list) -> int:
    """Tokens of one row's ``input_ids``: a pair's list, or the K lists of a choice row."""
    return sum(len(x) for x in ids) if ids and isinstance(ids[0], list) else len(ids)


def _batches(split, collator: StudentCollator, batch_size: int):
    """(row indices, batch) over ``split`` in order of input length, so a batch pads little; callers put the
    outputs back in row order."""
    lengths = [token_count(ids) for ids in split["input_ids"]]
    order = sorted(range(len(split)), key=lambda i: lengths[i])
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        yield idx, collator([split[i] for i in idx])


@torch.no_grad()
def predict_labels(student: CoTStudent, split, collator: StudentCollator, batch_size: int = 64
                   ) -> tuple[list[int], list[float]]:
    """(predicted label id, its probability) of every row of an :func:`encode_student` split, in fp32."""
    student.eval()
    device = next(student.parameters()).device
    preds: list[int] = [0] * len(split)
    probs: list[float] = [0.0] * len(split)
    for idx, batch in _batches(split, collator, batch_size):
        batch = {k: v.to(device) for k, v in batch.items() if k not in ("rationale_ids", "rationale_mask")}
        top = torch.softmax(student.encode(batch)[0].float(), -1).max(-1)
        for i, c, p in zip(idx, top.indices.tolist(), top.values.tolist(), strict=True):
            preds[i], probs[i] = c, p
    return preds, probs


@torch.no_grad()
def greedy_rationales(student: CoTStudent, split, collator: StudentCollator, tokenizer, max_new_tokens: int = 64,
                      batch_size: int = 32) -> list[str]:
    """The decoder's greedy rationale for each row: start at [CLS], stop at [SEP] or ``max_new_tokens``."""
    student.eval()
    device = next(student.parameters()).device
    cls, sep = tokenizer.cls_token_id, tokenizer.sep_token_id
    texts: list[str] = [""] * len(split)
    for idx, batch in _batches(split, collator, batch_size):
        batch = {k: v.to(device) for k, v in batch.items()}
        _, _, states, states_mask = student.encode(batch)
        ids = torch.full((states.shape[0], 1), cls, dtype=torch.long, device=device)
        done = torch.zeros(states.shape[0], dtype=torch.bool, device=device)
        for _ in range(max_new_tokens):
            logits, _ = student.decode(ids, torch.ones_like(ids), states, states_mask)
            nxt = logits[:, -1].argmax(-1)
            nxt = torch.where(done, torch.full_like(nxt, sep), nxt)
            ids = torch.cat([ids, nxt[:, None]], 1)
            done |= nxt == sep
            if bool(done.all()):
                break
        for i, text in zip(idx, tokenizer.batch_decode(ids[:, 1:], skip_special_tokens=True), strict=True):
            texts[i] = text.strip()
    return texts


def rouge_l(predictions: list[str], references: list[str]) -> float:
    """Mean ROUGE-L F-measure (Google's ``rouge_score``, stemmed) of ``predictions`` against ``references``."""
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    scores = [scorer.score(r, p)["rougeL"].fmeasure for p, r in zip(predictions, references, strict=True)]
    return float(sum(scores) / len(scores)) if scores else math.nan
