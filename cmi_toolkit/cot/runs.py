"""CoT runs: one student trained and scored, a preset's seeds and variants, the table.

A variant names the method: ``label_only``, ``dss`` (beta = 0), ``dss_mi`` (the released L_MI)
and ``dss_mi_var`` (the variational InfoNCE bound). Records are keyed by the configuration and
the fingerprint of the data files read; a rerun skips finished runs.
"""

from __future__ import annotations

import hashlib
import os
from typing import Any

import torch
from transformers import TrainerCallback

from ..progress import quiet_trainer_logs
from .data import COT_DIR_ENV, load_cot
from .evaluation import CHANCE, choice_accuracy, choice_predictions, exact_match, teacher_accuracy
from .trainer import (
    LEGACY_DEFAULTS,
    PRESETS,
    CoTCollator,
    CoTConfig,
    CoTTrainer,
    build_seq2seq,
    generate,
    tokenize_cot,
)

__all__ = ["VARIANTS", "run_cot", "run_cot_suite", "cot_table", "cot_fingerprint", "preset_records", "headline",
           "variant_intervals"]

VARIANTS: dict[str, dict[str, str]] = {
    "label_only": {"mode": "label_only"},
    "dss": {"mode": "dss"},
    "dss_mi": {"mode": "dss_mi", "mi_mode": "released"},
    "dss_mi_var": {"mode": "dss_mi", "mi_mode": "variational"},
}
NAMES = {"label_only": "label-only fine-tuning", "dss": "DSS (β = 0)", "dss_mi": "DSS + MI (released L_MI)",
         "dss_mi_var": "DSS + MI (variational, InfoNCE)"}
#: bump when what a record measures changes, so older records are not taken for new ones
EVAL_VERSION = 2


def variant_of(params: dict[str, Any]) -> str:
    """The variant name of a record's parameters."""
    if params["mode"] != "dss_mi":
        return params["mode"]
    return "dss_mi_var" if params.get("mi_mode") == "variational" else "dss_mi"


def cot_fingerprint(dataset: str, source: str | os.PathLike | None = None) -> str:
    """16 hex digits of the SHA-256 of every file :func:`load_cot` reads for ``dataset``."""
    from pathlib import Path

    root = Path(source or os.environ.get(COT_DIR_ENV, "")) / dataset
    h = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*.json") if p.is_file()):
        h.update(path.relative_to(root).as_posix().encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def _score(cfg: CoTConfig, model, tok, split) -> float:
    """The headline metric of ``model`` on ``split``: choice accuracy (CQA) or numeric exact match (SVAMP)."""
    inputs = list(split["input"])
    if "choices" in split.column_names:
        ranked = choice_predictions(model, tok, inputs, split["choices"], max_input_length=cfg.max_input_length,
                                    max_label_length=cfg.max_label_length)
        return choice_accuracy(ranked, split["choices"], split["label"])
    preds = generate(model, tok, inputs, "predict: ", cfg.max_label_length, max_input_length=cfg.max_input_length)
    return exact_match(cfg.dataset, preds, split["label"])


class HeldoutSelector(TrainerCallback):
    """Scores the student on held-out training examples every ``eval_every`` steps and keeps the best weights.

    The test split is never looked at: the checkpoint is chosen on training data alone.
    """

    def __init__(self, cfg: CoTConfig, tokenizer, heldout):
        self.cfg, self.tok, self.heldout = cfg, tokenizer, heldout
        self.best, self.best_step, self.state, self.curve = -1.0, 0, None, []

    def _evaluate(self, model, step: int) -> None:
        with torch.random.fork_rng(devices=[]):
            score = _score(self.cfg, model, self.tok, self.heldout)
        model.train()
        self.curve.append([step, score])
        if score > self.best:
            self.best, self.best_step = score, step
            self.state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}

    def on_step_end(self, args, state, control, model=None, **kwargs):
        if state.global_step % self.cfg.eval_every == 0:
            self._evaluate(model, state.global_step)

    def on_train_end(self, args, state, control, model=None, **kwargs):
        if not self.curve or self.curve[-1][0] != state.global_step:
            self._evaluate(model, state.global_step)

    def restore(self, model) -> None:
        """Load the best held-out weights into ``model``."""
        if self.state is not None:
            model.load_state_dict(self.state)


def run_cot(cfg: CoTConfig, source: str | os.PathLike | None = None, output_dir: str | os.PathLike | None = None,
            progress: bool = True, n_examples: int = 5, check_counts: bool = True) -> dict[str, Any]:
    """Train one CoT student and score its label accuracy on the test subset; returns a record.

    The libraries' own bars (tokenise, weight loading) are off; ``progress`` shows the training bar."""
    from ..progress import library_bars_off

    with library_bars_off():
        if cfg.student == "encoder":
            from .student_run import run_student

            return run_student(cfg, source, progress, n_examples, check_counts)
        return _run_cot(cfg, source, output_dir, progress, n_examples, check_counts)


def _run_cot(cfg: CoTConfig, source: str | os.PathLike | None, output_dir: str | os.PathLike | None,
             progress: bool, n_examples: int, check_counts: bool) -> dict[str, Any]:
    import tempfile
    import time

    from transformers import Seq2SeqTrainingArguments, set_seed

    from ..data.loading import subset
    from ..runs.provenance import provenance, run_start

    started = run_start()  # the time and the commit the run starts from
    set_seed(cfg.seed)
    ds = load_cot(cfg.dataset, source, check_counts=check_counts)
    train = subset(ds["train"], cfg.max_train_samples, cfg.data_seed)
    test = subset(ds["test"], cfg.max_eval_samples, cfg.data_seed)
    heldout = None
    if cfg.heldout_samples:
        if cfg.heldout_samples >= len(train):
            raise ValueError(f"heldout_samples {cfg.heldout_samples} leaves no training data ({len(train)} examples)")
        parts = train.train_test_split(test_size=cfg.heldout_samples, seed=cfg.data_seed)
        train, heldout = parts["train"], parts["test"]
    model, tok = build_seq2seq(cfg.model)
    train_tok = tokenize_cot(train, tok, cfg.max_input_length, cfg.max_label_length, cfg.max_rationale_length)
    args = Seq2SeqTrainingArguments(
        output_dir=str(output_dir or tempfile.mkdtemp(prefix="cot_")), per_device_train_batch_size=cfg.batch_size,
        learning_rate=cfg.learning_rate, num_train_epochs=cfg.epochs, max_steps=cfg.max_steps, warmup_steps=0.1,
        weight_decay=0.01, logging_steps=10, save_strategy="no", report_to=[], seed=cfg.seed,
        remove_unused_columns=False, disable_tqdm=not progress, use_cpu=not torch.cuda.is_available(),
        dataloader_pin_memory=torch.cuda.is_available(), bf16=cfg.bf16)
    trainer = CoTTrainer(model=model, args=args, train_dataset=train_tok, cot=cfg,
                         data_collator=CoTCollator(tok.pad_token_id))
    quiet_trainer_logs(trainer)
    selector = None
    if heldout is not None:
        selector = HeldoutSelector(cfg, tok, heldout)
        trainer.add_callback(selector)
    t0 = time.perf_counter()
    trainer.train()
    if selector is not None:
        selector.restore(trainer.model)
    train_s = time.perf_counter() - t0
    inputs = list(test["input"])
    t0 = time.perf_counter()
    preds = generate(trainer.model, tok, inputs, "predict: ", cfg.max_label_length,
                     max_input_length=cfg.max_input_length)
    metrics = {"exact_match": exact_match(cfg.dataset, preds, test["label"]),
               "teacher_accuracy": teacher_accuracy(cfg.dataset, test["teacher_answer"], test["label"]),
               "chance": CHANCE[cfg.dataset]}
    if "choices" in test.column_names:
        ranked = choice_predictions(trainer.model, tok, inputs, test["choices"], max_input_length=cfg.max_input_length,
                                    max_label_length=cfg.max_label_length)
        metrics["choice_accuracy"] = choice_accuracy(ranked, test["choices"], test["label"])
    metrics["accuracy"] = metrics.get("choice_accuracy", metrics["exact_match"])
    from .arithmetic import answers_match

    # per-example test predictions (one character each): correct by the headline metric, and the chosen choice
    if "choices" in test.column_names:
        hits = [row[i].strip().lower() == a.strip().lower() for i, row, a in zip(ranked, test["choices"], test["label"],
                                                                                   strict=True)]
        predictions = {"n": len(hits), "correct": "".join("1" if h else "0" for h in hits),
                       "choice": "".join(str(i) for i in ranked) if max(ranked, default=0) < 10 else None}
    else:
        hits = [answers_match(cfg.dataset, p, r) for p, r in zip(preds, test["label"], strict=True)]
        predictions = {"n": len(hits), "correct": "".join("1" if h else "0" for h in hits)}
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

    if selector is not None:
        metrics["selected_step"] = selector.best_step
        metrics["heldout_curve"] = selector.curve
    return {"params": {**cfg.__dict__}, "metrics": metrics, "accuracy": metrics["accuracy"], "n_test": len(inputs),
            "predictions": predictions,
            "n_train": len(train), "examples": examples, "loss_start": mean_terms(first), "loss_end": mean_terms(last),
            "steps": trainer.state.global_step, "train_s": train_s, "eval_s": time.perf_counter() - t0,
            "provenance": provenance(next(trainer.model.parameters()).device, started=started)}


def _cot_record(cfg: CoTConfig, source: str, key: str, preset: str, data: str,
                check_counts: bool = True) -> dict[str, Any]:
    """The record of one CoT run of a preset (the body of an engine job)."""
    return {**run_cot(cfg, source, progress=False, check_counts=check_counts), "key": key, "preset": preset,
            "arm": variant_of(cfg.__dict__), "data": {"digest": data}}


def cot_key(cfg: CoTConfig, data: str) -> str:
    """The store key of a run: its parameters (fields at their :data:`LEGACY_DEFAULTS` left out, so records made
    before those fields existed keep their keys), the evaluation version and the data's fingerprint."""
    from ..runs.store import run_key

    params = {k: v for k, v in cfg.__dict__.items() if k not in LEGACY_DEFAULTS or v != LEGACY_DEFAULTS[k]}
    return run_key({"kind": "cot", "eval_version": EVAL_VERSION, "data": data, **params})


def run_cot_suite(dataset: str = "cqa", preset: str = "cpu", seeds: tuple[int, ...] = (0, 1, 2),
                  modes: tuple[str, ...] = tuple(VARIANTS), source: str | os.PathLike | None = None,
                  results_dir: str | os.PathLike = "results/cot", overrides: dict[str, Any] | None = None,
                  progress: bool = True, engine=None, check_counts: bool = True) -> list[dict[str, Any]]:
    """Every (variant, seed) run of a preset, skipping those already in the store; returns the records.

    ``check_counts``: refuse a data folder whose example counts differ from the released files' (off for
    small fixtures). ``engine`` (:class:`~cmi_toolkit.runs.engine.EngineArgs`, default local) runs the missing ones: one after
    another here, or fanned out over Ray.
    """
    from ..runs.engine import Job, run_jobs
    from ..runs.store import ResultStore, legacy_run_key
    from .data import _cot_root

    if preset not in PRESETS:
        raise ValueError(f"--preset must be one of {', '.join(PRESETS)}, got {preset!r}")
    unknown = [m for m in modes if m not in VARIANTS]
    if unknown:
        raise ValueError(f"--modes: unknown {unknown}; choose from {', '.join(VARIANTS)}")
    store = ResultStore(results_dir)
    root = _cot_root(source).resolve()  # absolute: a Ray worker elsewhere reads the same folder
    load_cot(dataset, root, check_counts=check_counts)  # a data mistake is one line here, before any run starts
    data = cot_fingerprint(dataset, root)
    configs = [CoTConfig(**{**PRESETS[preset], **(overrides or {}), **VARIANTS[m], "dataset": dataset, "seed": s})
               for s in seeds for m in modes]
    jobs = []
    for cfg in configs:
        key = cot_key(cfg, data)
        params = {k: v for k, v in cfg.__dict__.items() if k not in LEGACY_DEFAULTS or v != LEGACY_DEFAULTS[k]}
        identity = {"kind": "cot", "eval_version": EVAL_VERSION, "data": data, **params}
        # a record filed before numbers were canonicalised (epochs 5.0 and 5 are one run) is the same run
        legacy = legacy_run_key(identity)
        if store.load(key) is None and store.load(legacy) is not None:
            key = legacy
        jobs.append(Job(key, f"{dataset}/{cfg.mode}/seed{cfg.seed}", _cot_record,
                        (cfg, str(root), key, preset, data, check_counts)))
    batch = run_jobs(jobs, store, engine, desc=f"CoT {dataset}", progress=progress)
    if batch.failed:
        raise RuntimeError("; ".join(f"{key}: {why}" for key, why in batch.failed.items()))
    return batch.records


def preset_records(records: list[dict[str, Any]], dataset: str, preset: str,
                   overrides: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """The records whose parameters are exactly those of ``preset`` (with ``overrides``) on ``dataset``.

    Two records for the same (variant, seed) raise :class:`~cmi_toolkit.runs.store.DuplicateRunError`.
    """
    from dataclasses import asdict

    from ..runs.store import DuplicateRunError

    wanted = {}
    for variant, fields in VARIANTS.items():
        cfg = CoTConfig(**{**PRESETS[preset], **(overrides or {}), **fields, "dataset": dataset})
        params = asdict(cfg)
        params.pop("seed")
        wanted[variant] = params
    defaults = asdict(CoTConfig())
    found: dict[tuple[str, int], dict[str, Any]] = {}
    for r in records:
        # fields added after a record was made hold their default in it
        p = {k: r["params"].get(k, defaults[k]) for k in defaults if k != "seed"}
        variant = variant_of(r["params"])
        if wanted.get(variant) != p:
            continue
        slot = (variant, r["params"]["seed"])
        if slot in found:
            raise DuplicateRunError(f"records {found[slot].get('key')} and {r.get('key')} both claim CoT {dataset} "
                                    f"preset {preset}, {variant}, seed {slot[1]}; move one out of the store")
        found[slot] = r
    return list(found.values())


def _metric(record: dict[str, Any], name: str) -> float:
    """A record's metric; records made before choice ranking hold exact match as ``accuracy``."""
    m = record.get("metrics", {})
    if name == "exact_match" and name not in m:
        return m["accuracy"]
    return m[name]


def headline(records: list[dict[str, Any]]) -> str:
    """The metric the records are read by: choice accuracy where they have it (CQA since choice ranking), else
    exact match (SVAMP, and CQA records made before choice ranking)."""
    return "choice_accuracy" if any("choice_accuracy" in r.get("metrics", {}) for r in records) else "exact_match"


def variant_intervals(records: list[dict[str, Any]], metric: str | None = None,
                      confidence: float = 0.95) -> dict[str, dict[str, float]]:
    """Per variant (in :data:`VARIANTS` order): ``mean``, ``low``, ``high`` and ``n`` of ``metric`` (default
    :func:`headline`) over its seeds: mean ± t_{(1+c)/2, n-1} · sd / sqrt(n); a single seed has no width."""
    import numpy as np
    from scipy.stats import t as student_t

    metric = metric or headline(records)
    out = {}
    for variant in VARIANTS:
        values = np.array([_metric(r, metric) for r in records if variant_of(r["params"]) == variant], dtype=float)
        if not len(values):
            continue
        half = (student_t.ppf((1 + confidence) / 2, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values))
                if len(values) > 1 else 0.0)
        out[variant] = {"mean": float(values.mean()), "low": float(values.mean() - half),
                        "high": float(values.mean() + half), "n": len(values)}
    return out


def cot_table(records: list[dict[str, Any]]) -> str:
    """Markdown: each variant's accuracies (mean ± sd over seeds) and paired 95 % intervals.

    The headline metric is choice accuracy on CQA and exact (numeric) match on SVAMP; each
    variant is compared with label-only fine-tuning and the MI variants also with DSS, paired by
    seed (:func:`cmi_toolkit.evidence.statistics.paired_comparison`). Reference lines: chance and the LLM
    teacher's own accuracy on the same examples.
    """
    import numpy as np

    from ..evidence.statistics import paired_comparison

    by: dict[str, dict[int, dict]] = {}
    for r in records:
        by.setdefault(variant_of(r["params"]), {})[r["params"]["seed"]] = r
    head = headline(records)

    def pct(values):
        a = np.asarray(values, dtype=float)
        return f"{100 * a.mean():.2f} ± {100 * (a.std(ddof=1) if len(a) > 1 else 0.0):.2f}"

    def versus(variant, base):
        shared = sorted(set(by.get(variant, {})) & set(by.get(base, {})))
        if variant == base or not shared:
            return ""
        c = paired_comparison([_metric(by[variant][s], head) for s in shared],
                              [_metric(by[base][s], head) for s in shared])
        if c["n"] < 2:
            return f"{100 * c['mean']:+.2f} (1 seed)"
        return (f"{100 * c['mean']:+.2f} [{100 * c['low']:+.2f}, {100 * c['high']:+.2f}], "
                f"{c['won']}/{c['n']}, {c['verdict']}")

    choice = head == "choice_accuracy"
    lines = [f"| method | seeds |{' choice accuracy (%) |' if choice else ''} exact match (%) | "
             "Δ vs label-only [95 % CI], seeds won, verdict | Δ vs DSS |",
             "|---|---|---|---|---|" + ("---|" if choice else "")]
    for variant in VARIANTS:
        if variant not in by:
            continue
        rows = [by[variant][s] for s in sorted(by[variant])]
        lines.append(f"| {NAMES[variant]} | {len(rows)} |{' ' + pct([_metric(r, head) for r in rows]) + ' |' if choice else ''} "
                     f"{pct([_metric(r, 'exact_match') for r in rows])} | {versus(variant, 'label_only')} | "
                     f"{versus(variant, 'dss') if variant.startswith('dss_mi') else ''} |")
    any_rec = records[0]["metrics"] if records else {}
    refs = []
    if any_rec.get("chance") is not None:
        refs.append(f"chance {100 * any_rec['chance']:.0f} %")
    if "teacher_accuracy" in any_rec:
        refs.append(f"the LLM teacher's own answers {100 * any_rec['teacher_accuracy']:.2f} % on the same examples")
    if refs:
        lines += ["", "Reference lines: " + "; ".join(refs) + "."]
    legacy = sum("provenance" not in r for r in records)
    if legacy:
        lines += ["", f"{legacy} record(s) predate choice ranking, reference lines and provenance: exact match only."]
    return "\n".join(lines)
