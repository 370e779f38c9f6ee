"""``cmi-toolkit evaluate``, ``predict``, ``measure`` and ``predictions``: a model (or a recorded run) scored on
GLUE or the user's own rows.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from .. import defaults as D
from .common import DataArgs, ModelArgs, _load, _parser, _split, _stores, check_output
from .suites import SuiteArgs
from .training import StoreArgs


@dataclass
class EvaluateArgs:
    model: str = field(default=D.MODEL, metadata={
        "help": "comma-separated run keys (their kept models) or model folders; two give a paired comparison"})
    data: str | None = field(default=None, metadata={
        "help": "a labelled .tsv, .csv or .jsonl file (default: the task's GLUE dev file)"})
    task: str = field(default="sst2", metadata={"help": "the task the models were fine-tuned on (its labels and metric)"})
    text_columns: str | None = field(default=None, metadata={
        "help": "comma-separated text column(s) of --data (default: the task's, e.g. sentence or sentence1,sentence2)"})
    label_column: str = field(default="label", metadata={"help": "label column of --data"})
    results_dir: str | None = field(default=None, metadata={
        "help": f"store whose kept models a run key names (default: {D.ADHOC_RESULTS_DIR}, {D.SUITE_RESULTS_DIR}, "
                f"{D.LAB_RESULTS_DIR})"})
    glue_dir: str | None = field(default=None, metadata={"help": "GLUE folder when --data is not given"})
    max_length: int = field(default=128, metadata={"help": "truncate inputs to this many tokens"})
    batch_size: int = field(default=64, metadata={"help": "evaluation batch size"})
    output: str | None = field(default=None, metadata={"help": "write the results (with per-example predictions) as JSON here"})


def _examples(args, task, labelled: bool):
    """The examples to score: --data (read alone), or the task's GLUE dev file (only that file is read)."""
    from ..data.user_files import read_examples

    if args.data:
        return read_examples(args.data, task, _split(args.text_columns, name="--text_columns"), args.label_column,
                             labelled=labelled), args.data
    from ..data.loading import _task_folder, read_glue_split, resolve_source

    source = resolve_source(args.glue_dir)
    if source == "hub":
        raise ValueError("pass --data with a labelled file, or --glue_dir / $CMI_TOOLKIT_GLUE_DIR for the GLUE dev set")
    folder = _task_folder(task, Path(source))
    split = task.validation_splits[0]
    path = folder / task.splits[split]
    return read_glue_split(task, path), str(path)


def _scored(args, labelled: bool = True) -> tuple[list[dict], object, str]:
    """Each --model measured on the examples: (rows, task, data name)."""
    from ..data.loading import tokenize_glue
    from ..data.models import load_classifier, load_tokenizer
    from ..data.tasks import get_task
    from ..data.user_files import check_label_names
    from ..method.measure import measure
    from ..runs.catalog import resolve_kept_model

    task = get_task(args.task)
    stores = _stores(args.results_dir)
    loaded = []
    for model_id in _split(args.model, name="--model") or []:  # every model is checked before any data is read
        folder, record = (Path(model_id), None) if model_id == D.MODEL else resolve_kept_model(model_id, stores)
        path = str(folder) if model_id != D.MODEL else model_id
        model = load_classifier(path, num_labels=task.num_labels, trained_head=True)
        check_label_names(task, getattr(model.config, "id2label", None), path)
        limit = getattr(model.config, "max_position_embeddings", None)
        if isinstance(limit, int) and args.max_length > limit:  # the tensors would not fit the position table
            raise ValueError(f"--max_length {args.max_length} exceeds the {limit} positions of model {model_id}; "
                             f"pass --max_length {limit} or less")
        loaded.append((model_id, folder, record, path, model))
    examples, name = _examples(args, task, labelled)
    rows = []
    for model_id, folder, record, path, model in loaded:
        tokenizer = load_tokenizer(path)
        measured = (record or {}).get("measured_with") or {}
        temperature = measured.get("temperature", D.TEMPERATURE)
        pooling = measured.get("pooling", D.POOLING)
        report = measure(model, tokenize_glue(examples, tokenizer, task, args.max_length), tokenizer, task=task,
                         batch_size=args.batch_size, pooling=pooling, temperature=temperature, progress=False)
        rows.append({"model": model_id, "folder": str(folder), "report": report, "temperature": temperature})
    return rows, task, name


def cmd_evaluate(argv: list[str]) -> int:
    """Score models (run keys or folders) on any labelled file: metrics, CMI, predictions; two: paired comparison."""
    (args,) = _parser(EvaluateArgs).parse_args_into_dataclasses(argv)
    check_output(args.output, [args.data, *(_split(args.model, name="--model") or []), args.glue_dir])
    t0 = time.perf_counter()
    rows, task, name = _scored(args)
    metric = task.metric_names[0]
    n = rows[0]["report"].num_samples if rows else 0
    print(f"{task.name}, {n:,} examples of {name}")
    print(f"{'model':28s} {metric:>22s} {'accuracy':>9s} {'feat CMI':>9s} {'out CMI':>9s} {'T':>5s}")
    for r in rows:
        rep = r["report"]
        print(f"{r['model'][:28]:28s} {rep.metrics[metric]:22.4f} {rep.accuracy:9.4f} {rep.feature.cmi:9.4f} "
              f"{rep.output.cmi:9.4f} {r['temperature']:5g}")
    comparison = None
    if len(rows) == 2:
        from ..data.predictions import decode_predictions
        from ..evidence.statistics import mcnemar_per_seed, paired_bootstrap

        a, b = (decode_predictions(r["report"].prediction_block()) for r in rows)
        boot = paired_bootstrap([a], [b], metric, task.num_labels)
        mc = mcnemar_per_seed([a], [b])[0]
        comparison = {"metric": metric, **{k: boot[k] for k in ("mean", "low", "high", "p")}, "mcnemar": mc}
        print(f"\n{rows[0]['model']} - {rows[1]['model']}: {100 * boot['mean']:+.2f} points of {metric}, 95 % "
              f"bootstrap interval over examples [{100 * boot['low']:+.2f}, {100 * boot['high']:+.2f}], p "
              f"{boot['p']:.3g}; McNemar: {mc['method_only']} examples right only for the first, "
              f"{mc['baseline_only']} only for the second, p {mc['p']:.3g}")
    if args.output:
        from ..files import write_json

        write_json(args.output, {"task": task.hub_config, "data": name, "comparison": comparison,
                                 "models": [{"model": r["model"], "folder": r["folder"], **r["report"].summary(),
                                             "predictions": r["report"].prediction_block()} for r in rows]})
        print(f"written: {args.output}")
    print(f"done in {time.perf_counter() - t0:.1f} s")
    return 0


@dataclass
class PredictArgs(EvaluateArgs):
    output: str | None = field(default=None, metadata={"help": "where the predictions go (.tsv); required"})


def cmd_predict(argv: list[str]) -> int:
    """Predict labels and class probabilities of unlabelled rows (a .tsv, .csv or .jsonl file) with one model."""
    import csv

    (args,) = _parser(PredictArgs).parse_args_into_dataclasses(argv)
    if not args.data or not args.output:
        raise ValueError("predict needs --data (the rows) and --output (a .tsv for the predictions)")
    if len(_split(args.model, name="--model") or []) != 1:
        raise ValueError("predict takes one --model")
    check_output(args.output, [args.data, args.model])
    rows, task, _ = _scored(args, labelled=False)
    import torch

    rep = rows[0]["report"]
    probs = torch.softmax(rep.logits.double(), -1)  # P(y | x) at T = 1
    path = Path(args.output)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, delimiter="\t", lineterminator="\n")
        w.writerow(["idx", "prediction", *[f"p_{n}" for n in task.label_names]])
        for i, pred in enumerate(rep.predicted.tolist()):
            w.writerow([i, task.label_names[pred], *[f"{x:.6f}" for x in probs[i].tolist()]])
    os.replace(tmp, path)
    print(f"{len(rep.predicted):,} predictions written to {path}")
    return 0


@dataclass
class PredictionArgs:
    retrain: bool = field(default=False, metadata={
        "help": "train runs without a kept model again (deterministic on the CPU) and add their predictions only "
                "if every metric matches the record exactly (fp32 on another instruction set: accuracy and the "
                "headline metric exactly, the CMIs within 1e-4 relative)"})


def cmd_predictions(argv: list[str]) -> int:
    """Add per-example dev predictions to a suite's records that lack them (from kept models, or --retrain)."""
    from ..runs.execute import add_predictions
    from ..runs.store import ResultStore
    from ..runs.suites import load_suite, suite_records

    parser = _parser((StoreArgs, SuiteArgs, PredictionArgs))
    parser.set_defaults(results_dir=D.SUITE_RESULTS_DIR)
    store_args, suite_args, pred_args = parser.parse_args_into_dataclasses(argv)
    store = ResultStore(store_args.results_dir)
    spec = load_suite(suite_args.suite)
    records, _ = suite_records(store, spec, tasks=_split(suite_args.tasks, name="--tasks"),
                               seeds=_split(suite_args.seeds, int, "--seeds"),
                               methods=_split(suite_args.methods, name="--methods"))
    scratch = ResultStore(store.root / "scratch" / "predictions") if pred_args.retrain else None
    order = {m: i for i, m in enumerate(("ce", "mcmi", "student", "cmi", "kd_ce", "kd_mcmi"))}
    todo = sorted((r for r in records if "predictions" not in r),
                  key=lambda r: (r["params"]["task"], order.get(r["params"]["method"], 9), r["params"]["seed"]))
    print(f"{len(records) - len(todo)} of {len(records)} records of suite {suite_args.suite} already keep predictions")
    from tqdm.auto import tqdm

    for r in tqdm(todo, desc="predictions", unit="run"):
        p = r["params"]
        r = {k: v for k, v in r.items() if k != "arm"}
        print(f"{r['key']} {p['task']}/{p['method']}/seed{p['seed']}: "
              f"{add_predictions(r, store, store_args.glue_dir, scratch)}", flush=True)
    return 0


@dataclass
class MeasureArgs:
    split: str | None = field(default=None, metadata={"help": "split to measure (default: the first validation split)"})
    output: str | None = field(default=None, metadata={"help": "write the summary as JSON here"})


def cmd_measure(argv: list[str]) -> int:
    """Accuracy, CMI, separation and NCMI (both spaces, per class) of a model on a GLUE split."""
    from ..method.measure import measure

    data, model_args, margs = _parser((DataArgs, ModelArgs, MeasureArgs)).parse_args_into_dataclasses(argv)
    check_output(margs.output, [model_args.model, getattr(data, "glue_dir", None)])
    task, ds, tokenizer, model, tok = _load(data, model_args)
    split = margs.split or task.validation_splits[0]
    if split not in tok:
        raise ValueError(f"--split {split!r}: {task.name} has no such split; pass one of {', '.join(tok)}")
    report = measure(model, tok[split], tokenizer, task=task, batch_size=model_args.batch_size,
                     pooling=model_args.pooling, temperature=model_args.temperature, keep_outputs=False)
    summary = {"task": task.hub_config, "split": split, "model": model_args.model, **report.summary(),
               "feature_per_class_cmi": report.feature.per_class_cmi,
               "output_per_class_cmi": report.output.per_class_cmi}
    text = json.dumps(summary, indent=2)
    print(text)
    if margs.output:
        from ..files import atomic_write_text

        atomic_write_text(margs.output, text + "\n")
    return 0
