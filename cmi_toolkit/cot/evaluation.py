"""How a CoT student is scored, and the reference lines it is read against.

* CQA **choice accuracy**: each of the five choices c is scored by the student's length-normalised
  log-likelihood under the label prompt, score(c) = (1/|c|) sum_t log p(c_t | c_<t, "predict: x"),
  and the best-scoring choice is the prediction. A student that cannot yet write a choice verbatim
  can still rank them, so this measures what it knows rather than its spelling.
* **Exact match** of the greedy generation against the reference (CQA: the answer text; SVAMP:
  numeric equality through the safe evaluator).
* References: chance (1/5 on CQA), and the LLM teacher's own answers on the same examples.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .arithmetic import answers_match
from .trainer import _target_ids

__all__ = ["choice_predictions", "choice_accuracy", "exact_match", "teacher_accuracy", "CHANCE"]

CHANCE = {"cqa": 0.2, "svamp": None}


@torch.no_grad()
def choice_predictions(model, tokenizer, inputs: Sequence[str], choices: Sequence[Sequence[str]],
                       prefix: str = "predict: ", batch_size: int = 16, max_input_length: int = 256,
                       max_label_length: int = 24) -> list[int]:
    """Index of the choice with the highest length-normalised log-likelihood, per example."""
    model.eval()
    device = next(model.parameters()).device
    out: list[int] = []
    for start in range(0, len(inputs), batch_size):
        xs, cs = inputs[start:start + batch_size], choices[start:start + batch_size]
        k = len(cs[0])
        if any(len(c) != k for c in cs):
            raise ValueError("every example needs the same number of choices")
        enc = tokenizer([prefix + x for x in xs for _ in range(k)], return_tensors="pt", padding=True,
                        truncation=True, max_length=max_input_length).to(device)
        targets = _target_ids(tokenizer, [c for row in cs for c in row], max_label_length)
        width = max(len(t) for t in targets)
        labels = torch.tensor([t + [-100] * (width - len(t)) for t in targets], device=device)
        logits = model(**enc, labels=labels).logits.float()
        mask = labels != -100
        token_lp = torch.log_softmax(logits, -1).gather(-1, labels.clamp_min(0)[..., None]).squeeze(-1)
        score = (token_lp * mask).sum(1) / mask.sum(1).clamp_min(1)
        out.extend(score.view(len(xs), k).argmax(1).tolist())
    return out


def choice_accuracy(predicted: Sequence[int], choices: Sequence[Sequence[str]], answers: Sequence[str]) -> float:
    """Share of examples whose predicted choice is the answer."""
    hits = [row[i].strip().lower() == a.strip().lower() for i, row, a in zip(predicted, choices, answers, strict=True)]
    return sum(hits) / max(1, len(hits))


def exact_match(dataset: str, generated: Sequence[str], references: Sequence[str]) -> float:
    """Share of generations that match their reference (:func:`~cmi_toolkit.cot.arithmetic.answers_match`)."""
    hits = [answers_match(dataset, p, r) for p, r in zip(generated, references, strict=True)]
    return sum(hits) / max(1, len(hits))


def teacher_accuracy(dataset: str, teacher_answers: Sequence[str], references: Sequence[str]) -> float:
    """The LLM teacher's accuracy on the same examples (its stated answers; none stated counts as wrong)."""
    return exact_match(dataset, teacher_answers, references)
