"""One run = (task, method, model, seed, parameters): train, measure, record.

Methods:

* ``ce``: fine-tune with cross-entropy (the baseline).
* ``cmi``: fine-tune with CE + lambda * CMI (minimised).
* ``mcmi``: fine-tune a teacher with CE - lambda * CMI (maximised).
* ``student``: the student (``make_student`` of the model, or ``student_model``) fine-tuned alone with CE.
* ``kd_ce`` / ``kd_mcmi``: the student distilled from the ``ce`` / ``mcmi`` teacher of the same
  task, model and seed (that teacher run is executed first when it is not in the store).

:func:`execute` skips a run whose record exists, resumes an interrupted run from its last
complete checkpoint, and writes the record atomically (:mod:`cmi_toolkit.runs.store`). The record's
key hashes the run's parameters and the fingerprint of the data it reads; the record carries
provenance (:mod:`cmi_toolkit.runs.provenance`), the degenerate-run flags and, for ``cmi`` and
``mcmi``, the mechanism check against the CE twin (:mod:`cmi_toolkit.evidence.statistics`).
"""

from __future__ import annotations

import dataclasses
import math
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..progress import quiet_trainer_logs
from .config import RunConfig, dependencies
from .store import ResultStore, claimed_suites

__all__ = ["TrainedRun", "execute", "lambda_sweep", "sweep_row", "train_and_measure", "train_model", "prepare_data"]


def prepare_data(cfg: RunConfig, tokenizer, glue_dir: str | None = None, fingerprint: dict[str, Any] | None = None):
    """Tokenised (train, eval) datasets of a run, and the task.

    Given the ``fingerprint`` the run was keyed with, the bytes read must be the bytes it hashed
    (:func:`~cmi_toolkit.data.loading.verify_read`): a file changed in between fails the run with its name.
    """
    from ..data.loading import load_glue, tokenize_glue, verify_read
    from ..data.tasks import get_task

    task = get_task(cfg.task)
    ds = load_glue(task, source=glue_dir, max_train_samples=cfg.max_train_samples,
                   max_eval_samples=cfg.max_eval_samples, seed=cfg.data_seed)
    if fingerprint is not None:
        verify_read(fingerprint, task)
    limit = _position_limit(tokenizer)
    if limit and cfg.max_length > limit:
        raise ValueError(f"max_length {cfg.max_length} exceeds the {limit} positions of model {cfg.model}; use "
                         f"{limit} or less (--max_length on the command line, max_length: in a suite file)")
    train = ds["train"]
    if cfg.eval_on == "heldout":
        parts = train.train_test_split(test_size=cfg.heldout_fraction, seed=cfg.data_seed, stratify_by_column="label")
        train, evaluation = parts["train"], parts["test"]
    else:
        evaluation = ds[task.validation_splits[0]]
    train = tokenize_glue(train, tokenizer, task, cfg.max_length)
    evaluation = tokenize_glue(evaluation, tokenizer, task, cfg.max_length)
    return task, train, evaluation


def _position_limit(tokenizer) -> int | None:
    """The longest input the model takes (the tokenizer's ``model_max_length`` when it states a real one)."""
    limit = getattr(tokenizer, "model_max_length", None)
    return int(limit) if isinstance(limit, int) and 0 < limit < 1_000_000 else None


def _student_layers(cfg: RunConfig) -> tuple[int, ...]:
    return tuple(int(x) for x in str(cfg.student_layers).split(",") if x.strip())


def build_model(cfg: RunConfig, num_labels: int):
    from transformers import set_seed

    from ..data.models import load_classifier, make_student

    set_seed(cfg.seed)
    if cfg.method in ("student", "kd_ce", "kd_mcmi"):
        if cfg.student_model:
            return load_classifier(cfg.student_model, num_labels=num_labels)
        return make_student(load_classifier(cfg.model, num_labels=num_labels), _student_layers(cfg))
    return load_classifier(cfg.model, num_labels=num_labels)


def train_model(cfg: RunConfig, train, tokenizer, output_dir: str | Path, teacher=None, progress: bool = True,
                max_steps: int = -1, save_checkpoints: bool = True, callbacks: list | None = None,
                logging_steps: int = 10, save_steps: int | None = None, torch_compile: bool = False):
    """Train the model of ``cfg`` on the tokenised ``train`` set; returns (model, trainer).

    Checkpoints are saved every epoch (or every ``save_steps`` steps) into ``output_dir``; when
    it already holds a complete one, training resumes from it and ``trainer.resumed_from_step``
    says from which step (None for a fresh start).
    """
    from transformers import DataCollatorWithPadding, TrainingArguments

    from ..method.losses import CMILossConfig
    from ..method.trainers import CMITrainer, DistillationTrainer, last_complete_checkpoint

    model = build_model(cfg, num_labels=len(train.features["label"].names))
    if cfg.bf16 and not torch.cuda.is_available():
        from .provenance import cpu_features

        if not cpu_features()["cpu_bf16"]:
            print("notice: bf16 autocast on a CPU without native bf16 (no AVX-512 BF16 or AMX) is emulated: matrix "
                  "products run tens of times slower than in fp32; on this CPU train with --bf16 False",
                  file=sys.stderr, flush=True)
    args = TrainingArguments(
        output_dir=str(output_dir),
        per_device_train_batch_size=cfg.batch_size,
        learning_rate=cfg.learning_rate,
        weight_decay=cfg.weight_decay,
        warmup_steps=cfg.warmup_ratio,
        num_train_epochs=cfg.epochs,
        max_steps=max_steps,
        lr_scheduler_type="linear",
        train_sampling_strategy="group_by_length",
        logging_steps=logging_steps,
        save_strategy=("steps" if save_steps else "epoch") if save_checkpoints else "no",
        save_steps=save_steps or 500,
        save_total_limit=1,
        save_only_model=False,
        report_to=[],
        seed=cfg.seed,
        data_seed=cfg.seed,
        disable_tqdm=not progress,
        dataloader_num_workers=0,
        dataloader_pin_memory=torch.cuda.is_available(),
        use_cpu=not torch.cuda.is_available(),
        bf16=cfg.bf16,
        torch_compile=torch_compile,
        ddp_find_unused_parameters=False,  # every parameter of a sequence classifier takes part in the loss
        # several CPU processes (torchrun / accelerate launch) talk over gloo
        ddp_backend="gloo" if not torch.cuda.is_available() and int(os.environ.get("WORLD_SIZE", "1")) > 1 else None,
    )
    common = dict(model=model, args=args, train_dataset=train, processing_class=tokenizer,
                  data_collator=DataCollatorWithPadding(tokenizer), callbacks=callbacks)
    if cfg.method in ("kd_ce", "kd_mcmi"):
        trainer = DistillationTrainer(**common, teacher=teacher, alpha=cfg.kd_alpha, temperature=cfg.kd_temperature)
    else:
        weight = cfg.cmi_weight if cfg.method in ("cmi", "mcmi") else 0.0
        beta = cfg.separation_weight if cfg.method in ("cmi", "mcmi") else 0.0
        cmi = CMILossConfig(weight=weight, separation_weight=beta, space=cfg.space, temperature=cfg.temperature,
                            objective="maximize" if cfg.method == "mcmi" else "minimize")
        trainer = CMITrainer(**common, cmi=cmi, centroid_mode=cfg.centroid_mode, pooling=cfg.pooling,
                             ema_momentum=cfg.ema_momentum)
    quiet_trainer_logs(trainer)
    last = last_complete_checkpoint(output_dir, required=getattr(trainer, "resume_files", ())) \
        if save_checkpoints else None
    trainer.resumed_from_step = int(Path(last).name.split("-")[-1]) if last else None
    trainer.train(resume_from_checkpoint=last)
    return trainer.model, trainer


@dataclass
class TrainedRun:
    """What :func:`train_and_measure` returns: the model, its trainer and its measurements."""

    model: Any
    trainer: Any
    report: Any
    task: Any
    train: Any
    evaluation: Any
    tokenizer: Any
    timings: dict[str, float]


def train_and_measure(cfg: RunConfig, glue_dir: str | None = None, output_dir: str | Path | None = None,
                      teacher=None, progress: bool = True, tokenizer=None, callbacks: list | None = None,
                      keep_outputs: bool = False, save_checkpoints: bool = True,
                      fingerprint: dict[str, Any] | None = None) -> TrainedRun:
    """Prepare the data of ``cfg``, train, and :func:`~cmi_toolkit.method.measure.measure` the result.

    No result store involved: the notebooks call this directly; :func:`execute` wraps it.
    """
    import tempfile

    from ..data.models import load_tokenizer
    from ..method.measure import measure

    tokenizer = tokenizer or load_tokenizer(cfg.model)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    task, train, evaluation = prepare_data(cfg, tokenizer, glue_dir, fingerprint=fingerprint)
    timings["data_s"] = time.perf_counter() - t0
    output_dir = output_dir or tempfile.mkdtemp(prefix="cmi_toolkit_")
    t0 = time.perf_counter()
    model, trainer = train_model(cfg, train, tokenizer, output_dir, teacher=teacher, progress=progress,
                                 callbacks=callbacks, save_checkpoints=save_checkpoints)
    timings["train_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    report = measure(model, evaluation, tokenizer, task=task, pooling=cfg.pooling, temperature=cfg.temperature,
                     keep_outputs=keep_outputs, progress=progress)
    timings["eval_s"] = time.perf_counter() - t0
    return TrainedRun(model, trainer, report, task, train, evaluation, tokenizer, timings)


def sweep_row(cfg: RunConfig, run: TrainedRun) -> dict[str, Any]:
    """One row of a lambda sweep: the setting and what the model measured."""
    rep = run.report
    return {"lambda": cfg.cmi_weight if cfg.method in ("cmi", "mcmi") else 0.0, "space": cfg.space,
            "temperature": cfg.temperature, "accuracy": rep.accuracy, "cmi": getattr(rep, cfg.space).cmi,
            "ncmi": getattr(rep, cfg.space).ncmi, "separation": getattr(rep, cfg.space).separation,
            "train_s": run.timings["train_s"]}


def lambda_sweep(cfg: RunConfig, lambdas: list[float], glue_dir: str | None = None, progress: bool = True,
                 callbacks: list | None = None) -> list[dict[str, Any]]:
    """Train one model per lambda (0 = plain CE) with the other settings of ``cfg``; one row each."""
    from tqdm.auto import tqdm

    rows = []
    for lam in tqdm(lambdas, desc="lambda sweep", disable=not progress):
        c = dataclasses.replace(cfg, method="cmi" if lam > 0 else "ce", cmi_weight=lam)
        run = train_and_measure(c, glue_dir=glue_dir, progress=False, callbacks=callbacks, save_checkpoints=False)
        rows.append(sweep_row(c, run))
    return rows


def _final_train_ce(trainer) -> float | None:
    """Mean cross-entropy of the last logged training interval (None if nothing was logged)."""
    for entry in reversed(trainer.state.log_history):
        if "ce" in entry:
            return float(entry["ce"])
    return None


def _majority_score(task, train, evaluation) -> float:
    """The headline metric of always predicting the training set's majority class."""
    import numpy as np

    from ..data.tasks import compute_metrics

    majority = int(np.bincount(np.asarray(train["label"])).argmax())
    labels = np.asarray(evaluation["label"])
    return float(compute_metrics(task, np.full_like(labels, majority), labels)[task.metric_names[0]])


def execute(cfg: RunConfig, store: ResultStore, glue_dir: str | None = None, progress: bool = True,
            keep_model: bool | None = None, suite: str | None = None, callbacks: list | None = None,
            kept_by: str | None = None, checkpoint_dir: str | os.PathLike | None = None) -> dict[str, Any]:
    """Run ``cfg`` unless its record exists; return the record.

    The record is keyed by :meth:`RunConfig.store_key` (parameters and data). ``kd_*`` runs
    execute their teacher first, ``cmi`` / ``mcmi`` runs their CE twin (for the mechanism check).
    ``suite`` names the suite the run belongs to (recorded; ad-hoc runs have none). ``callbacks``
    (TrainerCallbacks, e.g. a notebook's progress bar) join this run's training, not its twin's.

    ``keep_model``: True keeps the trained model as ``<store>/models/<key>`` (a ``save_pretrained`` folder with
    its tokenizer, the task's label names and a ``card.json``); None keeps what later runs load (the ``ce``
    and ``mcmi`` runs: teachers and CE twins). ``kept_by`` says why (``request`` when ``keep_model`` is True).

    Processes sharing ``store`` never train one run twice: the second waits for the first's record
    (:meth:`~cmi_toolkit.runs.store.ResultStore.run_lock`), and a claim on a finished run is written under
    the store's lock, so concurrent claims for other suites are all kept.

    ``checkpoint_dir`` holds the run's checkpoints while it trains (``<checkpoint_dir>/<key>``; default
    ``<store>/checkpoints``): on storage every node of a cluster sees, a run retried elsewhere resumes there.
    """
    from ..progress import library_bars_off

    with library_bars_off():  # one bar per model (the kit's), not the libraries' tokenise / load / save bars
        return _execute(cfg, store, glue_dir, progress, keep_model, suite, callbacks, kept_by, checkpoint_dir)


def _execute(cfg: RunConfig, store: ResultStore, glue_dir: str | None, progress: bool, keep_model: bool | None,
             suite: str | None, callbacks: list | None, kept_by: str | None,
             checkpoint_dir: str | os.PathLike | None) -> dict[str, Any]:
    """:func:`execute`'s work, with the libraries' progress bars off."""
    fingerprint = cfg.data_fingerprint(glue_dir)
    key = cfg.store_key(fingerprint=fingerprint)
    record = _finished(store, key, suite)
    if record is not None:
        return record
    store.check_writable()  # before hours of training, not after
    # the ranks of one torchrun job are one run: only separate processes wait for each other
    lock = store.run_lock(key) if int(os.environ.get("WORLD_SIZE", "1")) == 1 else None
    if lock is not None:
        from filelock import Timeout

        try:
            lock.acquire(timeout=0)
        except Timeout:
            print(f"notice: another process is training run {key} ({cfg.task}/{cfg.method}/seed{cfg.seed}); "
                  "waiting for its record", file=sys.stderr, flush=True)
            lock.acquire()
    try:
        record = _finished(store, key, suite)  # the other process finished it meanwhile
        if record is not None:
            return record
        if kept_by is None:
            kept_by = "request" if keep_model else "dependency"
        return _execute_locked(cfg, store, key, fingerprint, glue_dir, progress, keep_model, suite, callbacks,
                               kept_by, checkpoint_dir)
    finally:
        if lock is not None:
            lock.release()


def _finished(store: ResultStore, key: str, suite: str | None) -> dict[str, Any] | None:
    """The record of ``key`` if it exists, with ``suite`` added to the suites it counts for (under the lock)."""
    record = store.load(key)
    if record is not None and suite and suite not in claimed_suites(record):  # the same run, now also this suite's
        record = store.claim(record.get("key") or key, suite)
    return record


def _execute_locked(cfg: RunConfig, store: ResultStore, key: str, fingerprint: dict[str, Any], glue_dir: str | None,
                    progress: bool, keep_model: bool | None, suite: str | None,
                    callbacks: list | None, kept_by: str = "dependency",
                    checkpoint_dir: str | os.PathLike | None = None) -> dict[str, Any]:
    """:func:`execute` of a run that has no record, while this process holds the run's lock."""
    from ..data.models import count_parameters, load_tokenizer
    from ..method.measure import measure
    from .checks import degenerate_flags, mechanism_check
    from .provenance import provenance, run_start

    started = run_start()  # the time and the commit the run starts from
    keep_model = cfg.method in ("ce", "mcmi") if keep_model is None else keep_model
    tokenizer = load_tokenizer(cfg.model)
    timings: dict[str, float] = {}
    teacher = None
    twin = None
    twin_missing = None
    if cfg.method in ("kd_ce", "kd_mcmi"):
        teacher = _load_saved(_kept_model(cfg.teacher(), store, glue_dir, progress, suite, checkpoint_dir))
    elif cfg.method in ("cmi", "mcmi"):
        try:
            twin = _kept_model(dataclasses.replace(cfg, method="ce"), store, glue_dir, progress, suite, checkpoint_dir)
        except FileNotFoundError as exc:  # the twin's record exists but its model was not kept
            twin_missing = str(exc)
    ckpt_dir = Path(checkpoint_dir or store.root / "checkpoints") / key
    run = train_and_measure(cfg, glue_dir=glue_dir, output_dir=ckpt_dir, teacher=teacher, progress=progress,
                            tokenizer=tokenizer, callbacks=callbacks, fingerprint=fingerprint)
    model, trainer, report, task, train, evaluation = (run.model, run.trainer, run.report, run.task, run.train,
                                                       run.evaluation)
    timings.update(run.timings)
    steps = trainer.state.global_step
    if trainer.args.process_index != 0:  # under torchrun only the main process writes
        return {"key": key, "params": cfg.params(), "metrics": report.summary(), "rank": trainer.args.process_index}
    summary = report.summary()
    final_ce = _final_train_ce(trainer)
    checks: dict[str, Any] = {
        "final_train_ce": final_ce,
        "flags": degenerate_flags(final_ce, task.num_labels, summary["majority_prediction_share"],
                                  summary["mean_max_prob"]),
    }
    if twin is not None:
        # CMI in the space and at the temperature the run trained with, on the same evaluation data
        kw = dict(task=task, pooling=cfg.pooling, temperature=cfg.temperature, output_temperature=cfg.temperature,
                  keep_outputs=False, progress=False)
        mine = getattr(measure(model, evaluation, tokenizer, **kw), cfg.space).cmi
        theirs = getattr(measure(_load_saved(twin).to(next(model.parameters()).device), evaluation, tokenizer,
                                 **kw), cfg.space).cmi
        checks["mechanism"] = mechanism_check(cfg.method, mine, theirs, cfg.space, cfg.temperature)
    elif twin_missing:
        checks["mechanism"] = {"passed": None, "expected": "lower" if cfg.method == "cmi" else "higher",
                               "unchecked": twin_missing}
    if keep_model:  # a folder transformers loads as it is, with the task's label names
        model.config.id2label = dict(enumerate(task.label_names))
        model.config.label2id = {n: i for i, n in enumerate(task.label_names)}
        model.save_pretrained(store.root / "models" / key)
        tokenizer.save_pretrained(store.root / "models" / key)
    record = {
        "key": key,
        "suite": suite,
        "params": cfg.params(),
        "metrics": {**summary,
                    "feature_per_class_cmi": report.feature.per_class_cmi,
                    "output_per_class_cmi": report.output.per_class_cmi},
        "headline_metric": task.metric_names[0],
        "majority_score": _majority_score(task, train, evaluation),
        "measured_with": {"temperature": cfg.temperature, "pooling": cfg.pooling, "split": cfg.eval_on},
        "checks": checks,
        "data": fingerprint,
        "train_steps": steps,
        "train_samples": len(train),
        "eval_samples": len(evaluation),
        "num_parameters": count_parameters(model),
        "timings": timings,
        "provenance": provenance(next(model.parameters()).device, started=started,
                                 resumed_from_step=getattr(trainer, "resumed_from_step", None)),
    }
    record["predictions"] = report.prediction_block()
    if keep_model:
        from .catalog import write_card

        write_card(store.root / "models" / key, record, kept_by)
    store.save(key, record)
    shutil.rmtree(ckpt_dir, ignore_errors=True)
    return record


def _kept_model(cfg: RunConfig, store: ResultStore, glue_dir: str | None, progress: bool, suite: str | None,
                checkpoint_dir: str | os.PathLike | None = None) -> Path:
    """Folder of the saved model of run ``cfg`` (a teacher, a CE twin), executing the run first if needed."""
    record = execute(cfg, store, glue_dir=glue_dir, progress=progress, keep_model=True, suite=suite,
                     kept_by="dependency", checkpoint_dir=checkpoint_dir)
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()  # under torchrun the main process has saved the model before any rank reads it
    path = store.root / "models" / record["key"]
    if not (path / "config.json").is_file() and (not dist.is_available() or not dist.is_initialized()):
        _recreate_model(cfg, record, store, glue_dir, progress)
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"{path}: saved model of run {record['key']} missing; "
                                f"delete {store.path(record['key'])} to retrain it")
    return path


def _recreate_model(cfg: RunConfig, record: dict[str, Any], store: ResultStore, glue_dir: str | None,
                    progress: bool) -> None:
    """Train a finished run again to get back its model (models are never committed, so a fresh clone has none).

    The run is made again in a scratch store, measured as its record was (temperature, pooling) and trained
    with as many threads as the record's (CPU training is deterministic for a given thread count); its model
    replaces the missing one only if its accuracy equals the record's exactly and its other metrics of
    :data:`IDENTITY_METRICS` do to the digit or, on a CPU whose kernels round otherwise, within
    :data:`RECREATE_RTOL` (the model card says which), so a later run's teacher or CE twin is the model its record
    describes. The record itself is left as it is.
    """
    import tempfile

    import torch

    measured = record.get("measured_with") or {}
    cfg = dataclasses.replace(cfg, **{k: measured[k] for k in ("temperature", "pooling") if k in measured})
    threads = (record.get("provenance") or {}).get("threads")
    key = record["key"]
    path = store.root / "models" / key
    from .provenance import recreation_blocker

    blocker = recreation_blocker(record, cfg.bf16)
    if blocker and not (path / "config.json").is_file():
        print(f"notice: run {key} ({cfg.task}/{cfg.method}/seed{cfg.seed}) has a record but no kept model, and it is "
              f"not trained again here: {blocker}", file=sys.stderr, flush=True)
        return
    with store.run_lock(key):  # one process re-creates it; another waits, then finds the folder
        if (path / "config.json").is_file():
            return
        print(f"notice: run {key} ({cfg.task}/{cfg.method}/seed{cfg.seed}) has a record but no kept model; "
              "training it again to get the model back", file=sys.stderr, flush=True)
        scratch_root = store.root / "checkpoints"
        scratch_root.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=f".recreate-{key}-", dir=scratch_root) as tmp:
            scratch = ResultStore(tmp)
            _lend_kept_dependencies(cfg, store, scratch, glue_dir)
            before = torch.get_num_threads()
            if isinstance(threads, int) and threads > 0:
                torch.set_num_threads(threads)
            try:
                fresh = execute(cfg, scratch, glue_dir=glue_dir, progress=progress, keep_model=True,
                                kept_by="dependency")
            finally:
                torch.set_num_threads(before)
            differs = _differing_metrics(fresh["metrics"], record)
            gap = _rounding_gap(fresh["metrics"], record, differs)
            if gap is None:
                print(f"notice: run {key} trained again gives other {', '.join(differs)} than its record "
                      f"({[fresh['metrics'].get(m) for m in differs]} vs {[record['metrics'][m] for m in differs]}); "
                      "its model is not used", file=sys.stderr, flush=True)
                return
            from .catalog import write_card

            made = scratch.root / "models" / fresh["key"]
            how = ("metrics identical to the record" if not differs else
                   f"accuracy identical to the record, {', '.join(differs)} within {gap:.1e} of it (relative): "
                   "the kernels of this CPU round otherwise")
            if differs:
                print(f"notice: run {key} trained again: {how}; its model is used", file=sys.stderr, flush=True)
            write_card(made, record, f"dependency (re-created: {how})")
            path.parent.mkdir(parents=True, exist_ok=True)
            os.replace(made, path)  # same file system: the folder appears whole or not at all


def _lend_kept_dependencies(cfg: RunConfig, store: ResultStore, scratch: ResultStore, glue_dir: str | None) -> None:
    """Give the scratch store of a re-creation the records and kept models (linked, not copied) of ``cfg``'s
    dependencies that ``store`` already has, so a CMI run made again does not train its CE twin a second time
    (a teacher or twin kept in ``store`` is the model its record describes)."""
    for dep in dependencies(cfg):
        canonical = dep.store_key(glue_dir)
        record, folder = store.load(canonical), store.root / "models" / store.file_key(canonical)
        if record is None or not (folder / "config.json").is_file():
            continue
        scratch.save(record.get("key") or canonical, record)
        (scratch.root / "models").mkdir(parents=True, exist_ok=True)
        (scratch.root / "models" / (record.get("key") or canonical)).symlink_to(folder.resolve(), target_is_directory=True)


def _load_saved(path: Path):
    from transformers import AutoModelForSequenceClassification

    from ..data.models import check_model_folder

    check_model_folder(path)
    return AutoModelForSequenceClassification.from_pretrained(str(path), trust_remote_code=False)


#: metrics a re-created run must match to the last digit before its predictions join the original record
IDENTITY_METRICS = ("accuracy", "feature_cmi", "output_cmi")


#: the largest relative difference of a re-created teacher's or CE twin's CMIs from its record that is taken for
#: kernel rounding (another CPU's instruction set: measured 2e-6 on CoLA) when its accuracy is identical
RECREATE_RTOL = 1e-4


def _rounding_gap(metrics: dict[str, Any], record: dict[str, Any], differs: list[str]) -> float | None:
    """The largest relative gap of the ``differs`` metrics when a run made again is its record's run up to kernel
    rounding (accuracy identical, the rest within :data:`RECREATE_RTOL`); None when it is not (0 when identical)."""
    if "accuracy" in differs:
        return None
    gaps = [abs(metrics[m] - record["metrics"][m]) / max(abs(record["metrics"][m]), 1e-12)
            for m in differs if isinstance(metrics.get(m), (int, float))]
    if len(gaps) < len(differs) or any(not math.isfinite(g) or g > RECREATE_RTOL for g in gaps):
        return None
    return max(gaps, default=0.0)


def _scored_from_block(block: dict[str, Any], metric: str | None, record: dict[str, Any]) -> float | None:
    """``metric`` computed from a predictions block when it differs from the record's (None: it agrees)."""
    from ..data.predictions import decode_predictions

    if metric not in (record.get("metrics") or {}) or metric not in ("accuracy", "f1", "matthews_correlation"):
        return None
    value = decode_predictions(block, f"record {record.get('key')}").score(metric)
    return None if abs(value - record["metrics"][metric]) <= 1e-9 else value


def _differing_metrics(metrics: dict[str, Any], record: dict[str, Any]) -> list[str]:
    """The metrics of :data:`IDENTITY_METRICS` in which a run made again differs from its record (to the digit)."""
    return [m for m in IDENTITY_METRICS if m in record["metrics"] and metrics.get(m) != record["metrics"][m]]


def add_predictions(record: dict[str, Any], store: ResultStore, glue_dir: str | None = None,
                    scratch: ResultStore | None = None, progress: bool = False) -> str:
    """Add per-example predictions to a record that has none; returns how (or why not).

    From the kept model (``<store>/models/<key>``) when there is one: measured again on the record's
    evaluation data. Otherwise, given a ``scratch`` store, the run is trained again there (CPU training
    is deterministic here; its teacher or CE twin is trained there too, once for the batch) and its
    predictions are taken only if every metric of :data:`IDENTITY_METRICS` equals the record's exactly.
    The record says which source its predictions came from; its data fingerprint must match the data.
    """
    from ..data.models import load_tokenizer
    from ..method.measure import measure

    if "predictions" in record:
        return "has predictions"
    measured = record.get("measured_with") or {}
    # a CE run's key holds no temperature or pooling; its record says which ones it was measured with
    cfg = RunConfig(**{**{k: measured[k] for k in ("temperature", "pooling") if k in measured}, **record["params"]})
    fingerprint = cfg.data_fingerprint(glue_dir)
    if record.get("data", {}).get("digest") not in (None, fingerprint["digest"]):
        return "data changed since the run: not added"
    model_dir = store.root / "models" / record["key"]
    if (model_dir / "config.json").is_file():
        tokenizer = load_tokenizer(str(model_dir))
        task, _, evaluation = prepare_data(cfg, tokenizer, glue_dir)
        report = measure(_load_saved(model_dir), evaluation, tokenizer, task=task, pooling=cfg.pooling,
                         temperature=cfg.temperature, keep_outputs=False, progress=progress)
        source, new, block = "kept model", report.summary(), report.prediction_block()
    elif scratch is not None:
        from .provenance import recreation_blocker

        blocker = recreation_blocker(record, cfg.bf16)
        if blocker:
            return f"not trained again here: {blocker}"
        fresh = execute(cfg, scratch, glue_dir=glue_dir, progress=progress)
        source, new, block = "retrained (metrics identical to the record)", fresh["metrics"], fresh["predictions"]
    else:
        return "no kept model (pass --retrain to train it again)"
    differs = _differing_metrics(new, record)
    headline = record.get("headline_metric")
    # an fp32 run made again on another instruction set: its predictions are the record's when every metric
    # computed from them (accuracy, the headline) is identical and only the CMIs moved by kernel rounding
    gap = (_rounding_gap(new, record, differs) if differs and source.startswith("retrained")
           and new.get(headline) == record["metrics"].get(headline) else None)
    if differs and gap is None:
        return (f"metrics {differs} differ from the record ({[new.get(m) for m in differs]} vs "
                f"{[record['metrics'][m] for m in differs]}): not added")
    scored = _scored_from_block(block, headline, record)
    if scored is not None:
        return f"the predictions give {headline} {scored}, the record {record['metrics'][headline]}: not added"
    if gap:
        capability = fresh["provenance"].get("cpu_capability", "another CPU")
        source = (f"retrained on {capability} (accuracy and {headline} identical to the record; {', '.join(differs)} "
                  f"within {gap:.1e} relative: another instruction set's kernel rounding)")
        record["predictions_rounding_gap"] = gap
    record["predictions"] = block
    record["predictions_source"] = source
    if scratch is not None and source.startswith("retrained"):
        record["reproduced"] = fresh["provenance"]  # the run made again, with its own commit
        made = scratch.root / "models" / record["key"]
        if made.is_dir() and not model_dir.exists() and not gap:  # the same run's model: later runs use it
            shutil.copytree(made, model_dir)
    store.save(record["key"], record)
    return f"added from the {source}"
