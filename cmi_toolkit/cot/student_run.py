"""One run of the encoder student (:mod:`~cmi_toolkit.cot.student`): train, choose the checkpoint, score, record.

* Training pool: the dataset's training split (e-SNLI: its released validation split) less the rows whose teacher
  completion gives no rationale (named when the data is read). ``heldout_samples`` rows of it, drawn with
  ``data_seed``, choose the checkpoint (label accuracy, every half epoch and at the end); ``max_train_samples`` of
  the rest, drawn with the same seed, train. Every mode of a seed trains on the same rows.
* The loss is :func:`~cmi_toolkit.cot.student.student_terms` through ``transformers.Trainer`` (``compute_loss``);
  batches are grouped by length, linear warm-up over the first 6 % of steps, bf16 autocast when ``bf16``.
* Scoring, once, on the full test split (or ``max_eval_samples`` of it) in fp32: accuracy of the label head, its
  per-example predictions, the degenerate flags, the majority-class share and chance; the PaLM teacher's own accuracy
  on the same rows. Students with a rationale task also write greedy rationales for the first ``rouge_rows`` test
  rows: ROUGE-L against PaLM's rationale (and against the first human explanation on e-SNLI).
* Mechanism checks (was each term trained?): the rationale CE fell over training (DSS); the released L_MI fell; the
  variational bound I_NCE ended above 0 nats and above where it started.
"""

from __future__ import annotations

import math
import os
import time
from typing import Any

import numpy as np
import torch
from transformers import Trainer, TrainerCallback

from .trainer import CoTConfig

__all__ = ["run_student", "StudentTrainer", "split_pool"]

#: chance accuracy of each dataset's label task (e-SNLI 3 classes, CQA 5 choices)
CHANCE = {"esnli": 1 / 3, "cqa": 1 / 5}
NUM_LABELS = {"esnli": 3, "cqa": 5}


class StudentTrainer(Trainer):
    """``transformers.Trainer`` whose loss is the student's weighted named terms (kept per step in ``term_log``)."""

    def __init__(self, *args, cot: CoTConfig, **kwargs):
        super().__init__(*args, **kwargs)
        self.cot = cot
        self.term_log: list[dict[str, float]] = []

    def create_optimizer(self, model=None):
        """The Trainer's optimiser over four groups: (encoder and heads | decoder) x (decay | no decay); the
        decoder's learning rate is ``decoder_lr_scale`` times the rest (its cross-attention starts from nothing)."""
        if self.optimizer is None:
            model = model or self.model
            decay = set(self.get_decay_parameter_names(model))
            groups = []
            for in_decoder in (False, True):
                for decays in (True, False):
                    params = [p for n, p in model.named_parameters() if p.requires_grad
                              and n.startswith("decoder.") == in_decoder and (n in decay) == decays]
                    if params:
                        groups.append({"params": params, "weight_decay": self.args.weight_decay if decays else 0.0,
                                       "lr": self.args.learning_rate * (self.cot.decoder_lr_scale if in_decoder
                                                                        else 1.0)})
            optimizer_cls, kwargs = self.get_optimizer_cls_and_kwargs(self.args, model)
            kwargs.pop("lr", None)
            self.optimizer = optimizer_cls(groups, lr=self.args.learning_rate, **kwargs)
        return self.optimizer

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        from ..method.losses import check_finite
        from .student import student_terms

        terms = student_terms(model, inputs, alpha=self.cot.alpha, beta=self.cot.effective_beta,
                              label_only=self.cot.mode == "label_only")
        check_finite(terms, f"alpha={self.cot.alpha}, beta={self.cot.effective_beta}")
        if model.training:
            self.term_log.append({k: float(v.detach()) for k, v in terms.items()})
        return (terms["total"], terms) if return_outputs else terms["total"]


class _HeldoutChooser(TrainerCallback):
    """Label accuracy on the held-out training rows every ``every`` steps and at the end; keeps the best weights.

    The test split is never looked at: the checkpoint is chosen on training rows alone."""

    def __init__(self, heldout, collator, every: int):
        self.heldout, self.collator, self.every = heldout, collator, max(1, every)
        self.best, self.best_step, self.state, self.curve = -1.0, 0, None, []

    def _evaluate(self, model, step: int) -> None:
        from .student import predict_labels

        with torch.random.fork_rng(devices=[]):
            preds, _ = predict_labels(model, self.heldout, self.collator)
        model.train()
        score = float(np.mean(np.asarray(preds) == np.asarray(self.heldout["labels"])))
        self.curve.append([step, score])
        if score > self.best:
            self.best, self.best_step = score, step
            self.state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}

    def on_step_end(self, args, state, control, model=None, **kwargs):
        if state.global_step % self.every == 0:
            self._evaluate(model, state.global_step)

    def on_train_end(self, args, state, control, model=None, **kwargs):
        if not self.curve or self.curve[-1][0] != state.global_step:
            self._evaluate(model, state.global_step)


def split_pool(train, heldout_samples: int, max_train_samples: int | None, data_seed: int):
    """(training rows, held-out rows, rows left out for want of a rationale) of a training split.

    Rows without a rationale (``rationale_ok`` False) leave the pool for every mode alike; the held-out rows are a
    seeded draw from the pool, the training rows a seeded subset of the rest (all of it when None).
    """
    from ..data.loading import subset

    ok = np.flatnonzero(np.asarray(train["rationale_ok"], dtype=bool))
    missing = len(train) - len(ok)
    pool = train.select(ok.tolist())
    heldout = None
    if heldout_samples:
        if heldout_samples >= len(pool):
            raise ValueError(f"heldout_samples {heldout_samples} leaves no training data ({len(pool)} rows)")
        parts = pool.train_test_split(test_size=heldout_samples, seed=data_seed)
        pool, heldout = parts["train"], parts["test"]
    return subset(pool, max_train_samples, data_seed), heldout, missing


def _mean_terms(rows: list[dict[str, float]]) -> dict[str, float]:
    return {k: sum(r[k] for r in rows) / len(rows) for k in rows[0]} if rows else {}


#: a term "fell" only when it ended at least this share of its start below it (a drift at the 7th digit is no fall)
MOVED = 0.01


def mechanism(mode: str, mi_mode: str, start: dict[str, float], end: dict[str, float]) -> dict[str, Any]:
    """Did each trained term move the way the objective asks? (``passed`` None for label-only: nothing to check.)

    DSS: the rationale CE fell by at least :data:`MOVED` of its start. Released MI: L_MI fell by as much. Variational:
    I_NCE = -L_MI ended above 0 nats and above its start by at least 0.01 nats (the two tasks' representations came
    to share information the critic can read)."""
    if mode == "label_only" or "ce_rationale" not in start:
        return {"passed": None, "what": "label-only: no rationale or MI term"}

    def fell(term: str) -> bool:
        return end[term] < start[term] - MOVED * abs(start[term])

    checks = {"rationale CE fell": fell("ce_rationale")}
    if mode == "dss_mi" and "mi" in start:
        if mi_mode == "variational":
            checks["I_NCE ended above 0 and above its start"] = -end["mi"] > max(0.0, -start["mi"] + 0.01)
        else:
            checks["released L_MI fell"] = fell("mi")
    return {"passed": all(checks.values()), "checks": checks, "start": start, "end": end}


def run_student(cfg: CoTConfig, source: str | os.PathLike | None = None, progress: bool = True,
                n_examples: int = 5, check_counts: bool = True) -> dict[str, Any]:
    """Train one encoder student and score it (module docstring); returns its record."""
    from transformers import AutoTokenizer, TrainingArguments, set_seed

    from ..data.models import resolve_model
    from ..data.predictions import encode_predictions
    from ..progress import quiet_trainer_logs
    from ..runs.checks import degenerate_flags
    from ..runs.provenance import provenance, run_start
    from .data import load_cot, teacher_coverage
    from .evaluation import teacher_accuracy
    from .student import (
        KINDS,
        CoTStudent,
        StudentCollator,
        StudentConfig,
        encode_student,
        greedy_rationales,
        predict_labels,
        rouge_l,
        token_count,
    )

    if cfg.dataset not in KINDS:
        raise ValueError(f"the encoder student reads {', '.join(KINDS)}; {cfg.dataset} needs student seq2seq")
    started = run_start()  # the time and the commit the run starts from
    set_seed(cfg.seed)
    ds = load_cot(cfg.dataset, source, check_counts=check_counts)
    train, heldout, missing = split_pool(ds["train"], cfg.heldout_samples, cfg.max_train_samples, cfg.data_seed)
    from ..data.loading import subset

    test = subset(ds["test"], cfg.max_eval_samples, cfg.data_seed)
    kind = KINDS[cfg.dataset]
    path = resolve_model("minilm-l6" if cfg.model in ("minilm2minilm", "minilm-l6") else cfg.model)
    tok = AutoTokenizer.from_pretrained(path, trust_remote_code=False)
    label_only = cfg.mode == "label_only"
    student = CoTStudent(path, StudentConfig(
        kind=kind, num_labels=NUM_LABELS[cfg.dataset], decoder_layers=0 if label_only else cfg.decoder_layers,
        mi_mode=cfg.mi_mode if cfg.effective_beta > 0 else None, critic_seed=cfg.seed,
        rationale_grad_scale=cfg.rationale_grad_scale))

    def encode(split, rationale=True):
        return encode_student(split, tok, kind, cfg.max_input_length, cfg.max_rationale_length, rationale)

    train_tok = encode(train, not label_only)
    train_tok = train_tok.add_column("length", [token_count(r) + len(q) for r, q in zip(
        train_tok["input_ids"], train_tok["rationale_ids"] if not label_only else [[]] * len(train_tok), strict=True)])
    collator = StudentCollator(tok.pad_token_id)
    steps_per_epoch = math.ceil(len(train_tok) / cfg.batch_size)
    args = TrainingArguments(
        output_dir=os.path.join(os.environ.get("TMPDIR", "/tmp"), f"cot_student_{os.getpid()}"),
        per_device_train_batch_size=cfg.batch_size, learning_rate=cfg.learning_rate, num_train_epochs=cfg.epochs,
        max_steps=cfg.max_steps, warmup_steps=0.06, weight_decay=0.01, logging_steps=10, save_strategy="no",
        report_to=[], seed=cfg.seed, remove_unused_columns=False, disable_tqdm=not progress,
        use_cpu=not torch.cuda.is_available(), dataloader_pin_memory=torch.cuda.is_available(), bf16=cfg.bf16,
        train_sampling_strategy="group_by_length", length_column_name="length")
    trainer = StudentTrainer(model=student, args=args, train_dataset=train_tok, data_collator=collator, cot=cfg)
    quiet_trainer_logs(trainer)
    chooser = None
    if heldout is not None:
        chooser = _HeldoutChooser(encode(heldout, False), collator, max(1, steps_per_epoch // 2))
        trainer.add_callback(chooser)
    t0 = time.perf_counter()
    trainer.train()
    if chooser is not None and chooser.state is not None:
        student.load_state_dict(chooser.state)
    train_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    test_tok = encode(test, not label_only)
    preds, probs = predict_labels(student, test_tok, collator)
    labels = list(test["label_id"])
    hits = np.asarray(preds) == np.asarray(labels)
    counts = np.bincount(preds, minlength=NUM_LABELS[cfg.dataset])
    # the loss terms' start and end: the mean of the first and last 10 steps (a quarter of a shorter run each)
    window = max(1, min(10, len(trainer.term_log) // 4))
    start, end = _mean_terms(trainer.term_log[:window]), _mean_terms(trainer.term_log[-window:])
    coverage = teacher_coverage(test)
    metrics: dict[str, Any] = {
        "accuracy": float(hits.mean()), "chance": CHANCE[cfg.dataset],
        "majority_class": float(np.bincount(labels).max() / len(labels)),
        "teacher_accuracy": teacher_accuracy(cfg.dataset, test["teacher_answer"], test["label"]),
        "teacher_answer_share": coverage["share"], "mean_max_prob": float(np.mean(probs))}
    flags = degenerate_flags(end.get("ce_label"), NUM_LABELS[cfg.dataset], float(counts.max() / counts.sum()),
                             metrics["mean_max_prob"])
    if metrics["accuracy"] <= metrics["chance"]:
        flags.append("at_or_below_chance")
    examples: list[dict[str, str]] = []
    if not label_only and cfg.rouge_rows:
        rows = min(cfg.rouge_rows, len(test))
        generated = greedy_rationales(student, test_tok.select(range(rows)), collator, tok,
                                      max_new_tokens=cfg.max_rationale_length)
        palm = list(test["rationale"][:rows])
        scored = [i for i in range(rows) if palm[i]]
        metrics["rouge_l_palm"] = rouge_l([generated[i] for i in scored], [palm[i] for i in scored])
        metrics["rouge_rows"] = rows
        if "explanation" in test.column_names:
            metrics["rouge_l_human"] = rouge_l(generated, list(test["explanation"][:rows]))
        for i in range(min(n_examples, rows)):
            ex = {"input": test["input"][i], "label": test["label"][i],
                  "predicted": test["choices"][i][preds[i]], "rationale": generated[i], "palm": palm[i]}
            if "explanation" in test.column_names:
                ex["human"] = test["explanation"][i]
            examples.append(ex)
    eval_s = time.perf_counter() - t0
    if chooser is not None:
        metrics["selected_step"] = chooser.best_step
        metrics["heldout_curve"] = chooser.curve
    return {"params": {**cfg.__dict__, "task": cfg.dataset}, "metrics": metrics, "accuracy": metrics["accuracy"],
            "headline_metric": "accuracy", "n_test": len(test), "n_train": len(train_tok),
            "n_heldout": len(heldout) if heldout is not None else 0, "left_out_no_rationale": missing,
            "predictions": encode_predictions(preds, probs, labels),
            "checks": {"flags": flags, "mechanism": mechanism(cfg.mode, cfg.mi_mode, start, end)},
            "examples": examples, "loss_start": start, "loss_end": end, "steps": trainer.state.global_step,
            "train_s": train_s, "eval_s": eval_s,
            "provenance": provenance(next(student.parameters()).device, started=started)}
