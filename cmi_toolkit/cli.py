"""The ``cmi-toolkit`` command line.

``cmi-toolkit COMMAND [--option value ...]``; each command's options are a dataclass parsed by
transformers' ``HfArgumentParser`` (``cmi-toolkit COMMAND --help`` lists them).

A user's mistake (a bad option value, a malformed data file, an unwritable results folder, ...)
prints one line, ``error: ...``, naming the file (and line) and the fix, and exits with 2;
``--debug`` (anywhere on the line) or ``CMI_TOOLKIT_DEBUG=1`` shows the traceback instead.
Ctrl-C prints how to resume and exits with 130.
"""

from __future__ import annotations

import json
import os
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from . import defaults as D

__all__ = ["main", "COMMANDS"]


@dataclass
class DataArgs:
    task: str = field(default="sst2", metadata={"help": "GLUE task (sst2, mrpc, rte, wnli, cola, qqp, qnli, mnli, stsb)"})
    glue_dir: str | None = field(default=None, metadata={"help": "GLUE folder; default $CMI_TOOLKIT_GLUE_DIR, else the hub"})
    max_train_samples: int | None = field(default=None, metadata={"help": "seeded subset of the training split (all: every row)"})
    max_eval_samples: int | None = field(default=None, metadata={"help": "seeded subset of the validation split"})
    max_length: int = field(default=128, metadata={"help": "truncate inputs to this many tokens"})
    data_seed: int = field(default=0, metadata={"help": "seed of the subsets"})


@dataclass
class ModelArgs:
    model: str = field(default=D.MODEL, metadata={"help": "alias minilm-l6 (offline), a local folder or a hub id"})
    pooling: str = field(default=D.POOLING, metadata={"help": "h_x: auto, pooler, cls or mean"})
    temperature: float = field(default=D.TEMPERATURE, metadata={"help": "T of f_x = softmax(h_x / T)"})
    batch_size: int = field(default=64, metadata={"help": "evaluation batch size"})


class _OneLineParser:
    """Mixin: argparse's usage dump on a bad value becomes one line (``--seed: invalid int value: '1.5'``)."""

    def error(self, message: str):
        raise ValueError(f"{message} (the command's --help lists its options)")


def _parser(types):
    """transformers' HfArgumentParser over ``types`` (a dataclass or a tuple of them) whose errors are one line
    and which reads a negative number after an option as its value (``--learning_rate -1e-5``)."""
    from transformers import HfArgumentParser

    cls = type("Parser", (_OneLineParser, HfArgumentParser), {})
    parser = cls(types)
    parser.parse_args_into_dataclasses = _negative_values(parser.parse_args_into_dataclasses)
    return parser


def _negative_values(parse):
    """Wrap a parse function so that ``--opt -1e-5`` (argparse takes ``-1e-5`` for an option) is ``--opt=-1e-5``."""
    def wrapped(args=None, *a, **kw):
        out: list[str] = []
        for item in list(args or []):
            if out and out[-1].startswith("--") and "=" not in out[-1] and item.startswith("-") and _is_number(item):
                out[-1] = f"{out[-1]}={item}"
            else:
                out.append(item)
        return parse(out, *a, **kw)

    return wrapped


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _load(data: DataArgs, model_args: ModelArgs):
    from .data import load_glue, tokenize_glue
    from .models import load_classifier, load_tokenizer
    from .tasks import get_task

    task = get_task(data.task)
    ds = load_glue(task, source=data.glue_dir, max_train_samples=data.max_train_samples,
                   max_eval_samples=data.max_eval_samples, seed=data.data_seed)
    tokenizer = load_tokenizer(model_args.model)
    model = load_classifier(model_args.model, num_labels=task.num_labels, trained_head=True)
    return task, ds, tokenizer, model, tokenize_glue(ds, tokenizer, task, max_length=data.max_length)


@dataclass
class DemoArgs:
    task: str = field(default="sst2", metadata={"help": "GLUE task"})
    glue_dir: str | None = field(default=None, metadata={"help": "GLUE folder; default $CMI_TOOLKIT_GLUE_DIR, else the hub"})
    model: str = field(default=D.MODEL, metadata={"help": "alias, local folder or hub id"})
    max_train_samples: int = field(default=2000, metadata={"help": "training subset (the CPU suite's SST-2 size)"})
    epochs: float = field(default=3.0, metadata={"help": "training epochs"})
    seed: int = field(default=0, metadata={"help": "training seed"})
    output_dir: str = field(default="runs/demo", metadata={"help": "result store of the demo"})


def cmd_demo(argv: list[str]) -> int:
    """CE vs CMI-minimised fine-tuning of the offline model on a real GLUE task (a few minutes)."""
    from .experiments import RunConfig, execute
    from .reproduce import load_suite
    from .results import ResultStore

    (args,) = _parser(DemoArgs).parse_args_into_dataclasses(argv)
    common = load_suite("cpu")["common"]
    store = ResultStore(args.output_dir)
    t0 = time.perf_counter()
    rows = []
    for method in ("ce", "cmi"):
        cfg = RunConfig(**{**common, "task": args.task, "model": args.model, "method": method, "seed": args.seed,
                           "max_train_samples": args.max_train_samples, "epochs": args.epochs})
        print(f"== {method}: {'cross-entropy' if method == 'ce' else 'CE + lambda * CMI'} on {cfg.task}, "
              f"{cfg.max_train_samples} training examples, {cfg.epochs:g} epochs")
        rec = execute(cfg, store, glue_dir=args.glue_dir)
        rows.append((method, rec))
    metric = rows[0][1]["headline_metric"]
    print(f"\n{'method':8s} {metric:>10s} {'feat CMI':>10s} {'feat NCMI':>10s} {'out CMI':>10s} {'train s':>8s}")
    for method, rec in rows:
        m = rec["metrics"]
        print(f"{method:8s} {m[metric]:10.4f} {m['feature_cmi']:10.4f} {m['feature_ncmi']:10.4f} "
              f"{m['output_cmi']:10.4f} {rec['timings']['train_s']:8.1f}")
    p = rows[1][1]["params"]
    print(f"(lambda={p['cmi_weight']}, space={p['space']}, T={p['temperature']}, centroids={p['centroid_mode']}; "
          f"{rows[0][1]['eval_samples']} dev examples; records in {store.runs}; {time.perf_counter() - t0:.0f} s)")
    return 0


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


def _stores(results_dir: str | None) -> list:
    from .results import ResultStore

    roots = [results_dir] if results_dir else [D.ADHOC_RESULTS_DIR, D.SUITE_RESULTS_DIR, D.LAB_RESULTS_DIR]
    return [ResultStore(r) for r in roots]


def _examples(args, task, labelled: bool):
    """The examples to score: --data (read alone), or the task's GLUE dev file (only that file is read)."""
    from .userdata import read_examples

    if args.data:
        return read_examples(args.data, task, _split(args.text_columns, name="--text_columns"), args.label_column,
                             labelled=labelled), args.data
    from .data import _task_folder, read_glue_split, resolve_source

    source = resolve_source(args.glue_dir)
    if source == "hub":
        raise ValueError("pass --data with a labelled file, or --glue_dir / $CMI_TOOLKIT_GLUE_DIR for the GLUE dev set")
    folder = _task_folder(task, Path(source))
    split = task.validation_splits[0]
    path = folder / task.splits[split]
    return read_glue_split(task, path), str(path)


def _scored(args, labelled: bool = True) -> tuple[list[dict], object, str]:
    """Each --model measured on the examples: (rows, task, data name)."""
    from .catalog import resolve_kept_model
    from .data import tokenize_glue
    from .information import measure
    from .models import load_classifier, load_tokenizer
    from .tasks import get_task
    from .userdata import check_label_names

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


def check_output(output: str | None, inputs: list[str | None], option: str = "--output") -> None:
    """Refuse, before any work, an output that is a folder, or that is (or links to) an input file or lies inside an
    input folder: the output is written atomically and would replace what it read."""
    if not output:
        return
    out = Path(output).expanduser()
    if out.is_dir():
        raise ValueError(f"{option} {output}: is a folder; name a file to write")
    target = out.resolve()
    for given in inputs:
        if not given:
            continue
        src = Path(given).expanduser()
        if not src.exists():
            continue
        src = src.resolve()
        if target == src or (src.is_dir() and src in target.parents):
            raise ValueError(f"{option} {output}: would replace the input {given}; name another file (inputs are "
                             "never overwritten)")


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
        from .evidence import mcnemar_per_seed, paired_bootstrap
        from .predictions import decode_predictions

        a, b = (decode_predictions(r["report"].prediction_block()) for r in rows)
        boot = paired_bootstrap([a], [b], metric, task.num_labels)
        mc = mcnemar_per_seed([a], [b])[0]
        comparison = {"metric": metric, **{k: boot[k] for k in ("mean", "low", "high", "p")}, "mcnemar": mc}
        print(f"\n{rows[0]['model']} - {rows[1]['model']}: {100 * boot['mean']:+.2f} points of {metric}, 95 % "
              f"bootstrap interval over examples [{100 * boot['low']:+.2f}, {100 * boot['high']:+.2f}], p "
              f"{boot['p']:.3g}; McNemar: {mc['method_only']} examples right only for the first, "
              f"{mc['baseline_only']} only for the second, p {mc['p']:.3g}")
    if args.output:
        from .results import write_json

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
class RunsArgs:
    results_dir: str = field(default=D.SUITE_RESULTS_DIR, metadata={"help": "the result store to list"})
    task: str | None = field(default=None, metadata={"help": "only this task"})
    method: str | None = field(default=None, metadata={"help": "only this method"})
    seed: str | None = field(default=None, metadata={"help": "only this seed"})
    suite: str | None = field(default=None, metadata={"help": "only runs this suite counts"})
    cmi_weight: str | None = field(default=None, metadata={"help": "only this lambda"})
    prune_models: bool = field(default=False, metadata={
        "help": "remove kept models nothing needs (no record, or neither kept on request nor a teacher / CE twin)"})
    prune_dependencies: bool = field(default=False, metadata={"help": "with --prune_models: teachers and CE twins too"})
    keys: bool = field(default=False, metadata={"help": "print only the matching keys, comma-separated (for --model)"})


def cmd_runs(argv: list[str]) -> int:
    """List the store's runs by what they are (task, method, seed, suite, lambda), with key, metric and model kept."""
    from .catalog import find_runs, prune_models, run_row
    from .results import ResultStore
    from .tasks import get_task

    (args,) = _parser(RunsArgs).parse_args_into_dataclasses(argv)
    store = ResultStore(args.results_dir)
    if args.prune_models:
        freed = prune_models(store, args.prune_dependencies)
        for folder, why, _ in freed:
            print(f"removed {folder} ({why})")
        print(f"{len(freed)} kept model(s) removed, {sum(b for *_, b in freed) / 1e6:.0f} MB freed")
        return 0
    task = get_task(args.task).hub_config if args.task else None
    found = find_runs(store, task=task, method=args.method, seed=args.seed, suite=args.suite,
                      cmi_weight=args.cmi_weight)
    if args.keys:
        print(",".join(key for key, _ in found))
        return 0
    print(f"{'key':16s}  {'task':5s} {'method':8s} {'seed':>4s} {'lambda':>6s}  {'metric':>22s} {'value':>7s}  "
          f"{'model':5s} {'flags':10s} suites")
    for key, record in found:
        r = run_row(store, key, record)
        lam = "" if r["lambda"] is None else f"{r['lambda']:g}"
        value = "" if r["value"] is None else f"{r['value']:.4f}"
        print(f"{r['key']:16s}  {r['task']:5s} {r['method']:8s} {r['seed']:>4} {lam:>6s}  {r['metric']:>22s} "
              f"{value:>7s}  {'kept' if r['model'] else '-':5s} {r['flags']:10s} {r['suites']}")
    print(f"{len(found)} run(s) in {store.runs}")
    return 0


@dataclass
class StoreArgs:
    results_dir: str = field(default=D.ADHOC_RESULTS_DIR, metadata={
        "help": f"result store (runs/<key>.json, models/); default {D.ADHOC_RESULTS_DIR} for train/distill, "
                f"{D.SUITE_RESULTS_DIR} for reproduce/report"})
    glue_dir: str | None = field(default=None, metadata={"help": "GLUE folder; default $CMI_TOOLKIT_GLUE_DIR, else the hub"})


def _run_one(argv: list[str], allowed: tuple[str, ...]) -> int:
    from .experiments import RunConfig, execute
    from .results import ResultStore

    parser = _parser((RunConfig, StoreArgs, KeepArgs, PresetArgs))
    for flag in ("--preset", "--suite"):
        if flag not in argv:
            continue
        i = argv.index(flag)
        if i + 1 >= len(argv) or argv[i + 1].startswith("--"):
            raise ValueError(f"{flag} needs a value: {', '.join(_preset_names())}, or a suite YAML file")
        name = argv[i + 1]
        argv = argv[:i] + argv[i + 2:]
        if name == "lab":  # the course's preset: the very runs (and keys) the notebooks train
            parser.set_defaults(**D.LAB_PRESET)
            continue
        # defaults from a suite's common and per-task settings (configs/<suite>/suite.yaml); flags override
        from .reproduce import load_suite
        from .tasks import get_task

        spec = load_suite(name)
        task = argv[argv.index("--task") + 1] if "--task" in argv and argv.index("--task") + 1 < len(argv) else RunConfig.task
        task = get_task(task).hub_config
        tasks = {get_task(t).hub_config: v for t, v in spec["tasks"].items()}
        if task not in tasks:
            raise ValueError(f"suite {spec.get('suite', argv[i])!r} has no task {task!r}; it has {', '.join(tasks)}")
        method = argv[argv.index("--method") + 1] if "--method" in argv and argv.index("--method") + 1 < len(argv) else None
        teacher = (spec.get("teacher") or {}) if method in ("mcmi", "kd_mcmi") else {}
        settings = {k: v for k, v in (tasks[task] or {}).items() if k not in ("methods", "teacher")}
        parser.set_defaults(**{**spec["common"], **settings, **teacher})
    argv = _all_rows(argv, parser)
    cfg, store_args, keep, _ = parser.parse_args_into_dataclasses(argv)
    if cfg.method not in allowed:
        raise ValueError(f"--method must be one of {', '.join(allowed)} here, got {cfg.method!r}")
    _refuse_ignored(argv, cfg.method)
    store = ResultStore(store_args.results_dir)
    rec = execute(cfg, store, glue_dir=store_args.glue_dir, keep_model=True if keep.keep_model else None)
    if "rank" not in rec:  # under torchrun, the main process reports
        print(json.dumps({k: rec[k] for k in ("key", "metrics", "timings", "train_steps")}, indent=2))
        _say_model(store, rec, keep.keep_model)
    return 0


def _say_model(store, record: dict, requested: bool) -> None:
    """Where the run's model is kept (or that it is not, and how to keep it), on stderr: stdout stays the
    record's JSON for scripts."""
    folder = store.root / "models" / record["key"]
    if (folder / "config.json").is_file():
        print(f"model kept in {folder} (`cmi-toolkit evaluate --model {record['key']} --data FILE` scores it)",
              file=sys.stderr)
    elif requested:
        print(f"warning: run {record['key']} was recorded before without its model; delete {store.path(record['key'])} "
              "and run again with --keep_model to keep it", file=sys.stderr)
    else:
        print(f"model not kept (pass --keep_model to keep it in {folder})", file=sys.stderr)


def _preset_names() -> list[str]:
    from .reproduce import SUITE_DIR

    return ["lab", *sorted(p.parent.name for p in SUITE_DIR.glob("*/suite.yaml"))]


@dataclass
class KeepArgs:
    keep_model: bool = field(default=False, metadata={
        "help": "keep the trained model in <results_dir>/models/<key> (save_pretrained folder with its tokenizer and "
                "card.json); by default only what later runs load is kept (CE and MCMI runs: teachers, CE twins)"})


@dataclass
class PresetArgs:
    preset: str | None = field(default=None, metadata={
        "help": "named settings: lab (the notebooks' runs: SST-2, 2,000 examples, 3 epochs; same keys) or a suite's "
                "(cpu, cpu5, cpu_verdict, paper, ...: its common and per-task settings); flags override"})
    suite: str | None = field(default=None, metadata={"help": "the same as --preset with a suite name or a suite YAML"})


def _refuse_ignored(argv: list[str], method: str) -> None:
    """An option given on the command line that ``method`` does not use is a mistake, not a no-op."""
    from .experiments import ignored_fields

    given = {a[2:].split("=")[0].replace("-", "_") for a in argv if a.startswith("--")}
    unused = sorted(given & set(ignored_fields(method)))
    if unused:
        raise ValueError(f"--{unused[0]} has no effect with --method {method}; drop it, or choose a method that uses it "
                         f"({'cmi or mcmi' if unused[0] not in ('student_layers', 'student_model', 'kd_alpha', 'kd_temperature') else 'kd_ce or kd_mcmi'})")


def _all_rows(argv: list[str], parser) -> list[str]:
    """``--max_train_samples all`` (or none/null) means every row: None, as ``null`` does in a suite file."""
    out = list(argv)
    for flag in ("--max_train_samples", "--max_eval_samples"):
        if flag in out:
            i = out.index(flag)
            if i + 1 < len(out) and out[i + 1].lower() in ("all", "none", "null"):
                del out[i:i + 2]
                parser.set_defaults(**{flag[2:]: None})
    return out


def cmd_train(argv: list[str]) -> int:
    """Fine-tune one model (--method ce | cmi | mcmi | student; --suite cpu for a preset) and record it."""
    return _run_one(argv, ("ce", "cmi", "mcmi", "student"))


def cmd_distill(argv: list[str]) -> int:
    """Distil a student from a CE (--method kd_ce) or CMI-maximised (kd_mcmi) teacher."""
    return _run_one(argv, ("kd_ce", "kd_mcmi"))


@dataclass
class SuiteArgs:
    suite: str = field(default="cpu", metadata={"help": "cpu, paper, or a suite YAML file"})
    tasks: str | None = field(default=None, metadata={"help": "comma-separated subset of the suite's tasks"})
    seeds: str | None = field(default=None, metadata={"help": "comma-separated seeds (default: the suite's)"})
    methods: str | None = field(default=None, metadata={"help": "comma-separated subset of methods"})
    report: bool = field(default=True, metadata={"help": "write the summary afterwards"})
    executor: str = field(default="package", metadata={"help": "package (direct) or papermill (notebook 04 per task and seed)"})
    figures_dir: str = field(default="figures", metadata={"help": "where the summary figure goes"})


def _split(text: str | None, cast=str, name: str = "option"):
    """``"a,b"`` -> [cast(a), cast(b)]; None stays None; an empty list or a bad item is a one-line error."""
    if text is None:
        return None
    items = [x.strip() for x in text.split(",") if x.strip()]
    if not items:
        raise ValueError(f"{name} is empty; give a comma-separated list such as 0,1,2")
    try:
        return [cast(x) for x in items]
    except ValueError:
        raise ValueError(f"{name} {text!r}: every item must be {'an integer' if cast is int else 'a name'}, "
                         "comma-separated (e.g. 0,1,2)") from None


def cmd_reproduce(argv: list[str]) -> int:
    """Run a suite's GLUE runs (skipping finished ones), then write the summary."""
    from .engine import EngineArgs
    from .reproduce import load_suite, report, run_suite
    from .results import ResultStore

    parser = _parser((SuiteArgs, StoreArgs, KeepArgs, EngineArgs))
    parser.set_defaults(results_dir=D.SUITE_RESULTS_DIR)
    suite_args, store_args, keep, engine = parser.parse_args_into_dataclasses(argv)
    spec = load_suite(suite_args.suite)
    store = ResultStore(store_args.results_dir)
    select = dict(tasks=_split(suite_args.tasks, name="--tasks"), seeds=_split(suite_args.seeds, int, "--seeds"),
                  methods=_split(suite_args.methods, name="--methods"))
    batch = run_suite(spec, store, glue_dir=store_args.glue_dir, engine=engine, executor=suite_args.executor,
                      suite=suite_args.suite, keep_model=True if keep.keep_model else None, **select)
    if hasattr(batch, "summary"):  # the package executor's batch (papermill returns the records)
        print(batch.summary(), file=sys.stderr, flush=True)
        if batch.failed:
            return 1
    if suite_args.report:
        paths = report(store, spec, figures_dir=suite_args.figures_dir)
        for kind, path in paths.items():
            print(f"{kind}: {path}")
        print(paths["md"].read_text())
    return 0


def cmd_report(argv: list[str]) -> int:
    """Write results/summary_<suite>.csv and .md and figures/glue_summary_<suite>.html from one suite's records."""
    from .reproduce import load_suite, report
    from .results import ResultStore

    parser = _parser((StoreArgs, SuiteArgs))
    parser.set_defaults(results_dir=D.SUITE_RESULTS_DIR)
    store_args, suite_args = parser.parse_args_into_dataclasses(argv)
    store = ResultStore(store_args.results_dir)
    if not store.runs.is_dir():
        raise FileNotFoundError(f"{store.runs}: no run records here; pass --results_dir with a result store, "
                                f"or run `cmi-toolkit reproduce --suite {suite_args.suite}` first")
    spec = load_suite(suite_args.suite)
    select = dict(tasks=_split(suite_args.tasks, name="--tasks"), seeds=_split(suite_args.seeds, int, "--seeds"),
                  methods=_split(suite_args.methods, name="--methods"))
    paths = report(store, spec, figures_dir=suite_args.figures_dir, **select)
    for kind, path in paths.items():
        print(f"{kind}: {path}")
    print(paths["md"].read_text())
    return 0


@dataclass
class PredictionArgs:
    retrain: bool = field(default=False, metadata={
        "help": "train runs without a kept model again (deterministic on the CPU) and add their predictions only "
                "if every metric matches the record exactly (fp32 on another instruction set: accuracy and the "
                "headline metric exactly, the CMIs within 1e-4 relative)"})


def cmd_predictions(argv: list[str]) -> int:
    """Add per-example dev predictions to a suite's records that lack them (from kept models, or --retrain)."""
    from .experiments import add_predictions
    from .reproduce import load_suite, suite_records
    from .results import ResultStore

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
    from .information import measure

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
        from .results import atomic_write_text

        atomic_write_text(margs.output, text + "\n")
    return 0


@dataclass
class CoTArgs:
    dataset: str = field(default="cqa", metadata={"help": "cqa, esnli or svamp"})
    preset: str = field(default="cpu", metadata={"help": "cpu (the CPU student: shared MiniLM encoder, label head, rationale decoder; cqa and esnli), cpu_seq2seq (the old seq2seq pipeline check), gpu (DSS schedule: batch 64, 4000 steps, checkpoint by held-out score), gpu2ep (the earlier 2-epoch GPU preset) or paper (t5-base)"})
    modes: str = field(default="label_only,dss,dss_mi,dss_mi_var", metadata={"help": "comma-separated: label_only, dss, dss_mi (released L_MI), dss_mi_var (variational InfoNCE bound)"})
    seeds: str = field(default="0,1,2", metadata={"help": "comma-separated seeds"})
    suite: str | None = field(default=None, metadata={"help": "a CoT verdict suite (e.g. cot_verdict, or a suite YAML): runs every planned run not yet recorded, then writes its report"})
    datasets: str | None = field(default=None, metadata={"help": "with --suite: comma-separated subset of its datasets"})
    report_only: bool = field(default=False, metadata={"help": "with --suite: write the report from the records, train nothing"})
    cot_dir: str | None = field(default=None, metadata={"help": "CoT data folder; default $CMI_TOOLKIT_COT_DIR"})
    results_dir: str = field(default="results/cot", metadata={"help": "result store of the CoT runs"})
    max_train_samples: int | None = field(default=None, metadata={"help": "override the preset's training subset"})
    max_eval_samples: int | None = field(default=None, metadata={"help": "override the preset's test subset"})
    epochs: float | None = field(default=None, metadata={"help": "override the preset's epochs"})
    beta: float | None = field(default=None, metadata={"help": "override the MI weight"})
    mask_padding: bool | None = field(default=None, metadata={"help": "override: leave padding out of the MI max-pool"})
    bf16: bool | None = field(default=None, metadata={"help": "bf16 autocast; default: on for the cpu preset where the CPU has native bf16, else off"})


def _native_bf16() -> bool:
    from .provenance import cpu_features

    return bool(cpu_features().get("cpu_bf16"))


def cmd_cot(argv: list[str]) -> int:
    """Chain-of-thought distillation: label-only vs DSS vs DSS+MI on CQA, e-SNLI or SVAMP over seeds, or a suite."""
    from .cot import cot_table, run_cot_suite
    from .engine import EngineArgs
    from .results import atomic_write_text

    args, engine = _parser((CoTArgs, EngineArgs)).parse_args_into_dataclasses(argv)
    if args.suite:
        return _cot_suite(args, engine)
    overrides = {k: getattr(args, k) for k in ("max_train_samples", "max_eval_samples", "epochs", "beta", "mask_padding",
                                               "bf16")
                 if getattr(args, k) is not None}
    if args.preset == "cpu" and args.bf16 is None:
        overrides["bf16"] = _native_bf16()
    if args.preset == "cpu_seq2seq":
        print("preset cpu_seq2seq: a pipeline check on 2 CPU cores; its numbers are not meaningful (use --preset cpu "
              "for the CPU student, or gpu)", file=sys.stderr)
    seeds = _split(args.seeds, int, "--seeds")
    modes = _split(args.modes, name="--modes")
    if seeds is None or modes is None:
        raise ValueError("--seeds and --modes need values, e.g. --seeds 0,1,2 --modes label_only,dss,dss_mi")
    records = run_cot_suite(args.dataset, args.preset, tuple(seeds), tuple(modes),
                            source=args.cot_dir, results_dir=args.results_dir, overrides=overrides, engine=engine)
    table = cot_table(records)
    atomic_write_text(f"{args.results_dir}/summary_{args.dataset}_{args.preset}.md", table + "\n")
    print(table)
    return 0


def _cot_suite(args: CoTArgs, engine) -> int:
    """``cot --suite``: the suite's missing runs (unless --report_only), then its report and forest plot."""
    from .cot.suite import cot_report, load_cot_suite, run_cot_verdict

    spec = load_cot_suite(args.suite)
    results = spec["results_dir"] if args.results_dir == "results/cot" else args.results_dir
    datasets = _split(args.datasets, name="--datasets")
    if datasets:
        unknown = [d for d in datasets if d not in spec["datasets"]]
        if unknown:
            raise ValueError(f"--datasets: {unknown} not in suite {spec['suite']} (it has {', '.join(spec['datasets'])})")
    if not args.report_only:
        if spec["common"].get("bf16") and not _native_bf16():
            raise ValueError(f"suite {spec['suite']} trains under bf16 autocast, but this CPU has no native bf16 "
                             "(lscpu shows no avx512_bf16), where bf16 is tens of times slower: run it on a CPU with "
                             "native bf16, or amend the plan (fp32 runs paired within their precision)")
        run_cot_verdict(spec, args.cot_dir, results, engine=engine, datasets=datasets)
    out = cot_report(spec, args.cot_dir, results, figures_dir="figures")
    print(Path(out["md"]).read_text(encoding="utf-8"))
    return 0


@dataclass
class SearchArgs:
    kind: str = field(default="minimiser", metadata={"help": "minimiser (CE + λ·CMI vs CE) or teacher (its student vs the CE teacher's)"})
    seeds: str = field(default="0,1,2", metadata={"help": "comma-separated seeds (at least 3)"})
    budgets: str = field(default="1,3", metadata={"help": "comma-separated epoch budgets of the successive halving"})
    grid: str | None = field(default=None, metadata={"help": "a YAML file mapping space/temperature/cmi_weight/centroid_mode to lists (default: the kit's grid)"})
    suite: str | None = field(default=None, metadata={
        "help": "run the search a suite declares (its search: section) on each of its tasks, e.g. cpu_verdict"})
    tasks: str | None = field(default=None, metadata={"help": "with --suite: comma-separated subset of its tasks"})


GRID_KEYS = ("space", "temperature", "cmi_weight", "centroid_mode")


def check_grid(grid: object, path: str, kind: str) -> None:
    """A --grid file maps some of :data:`GRID_KEYS` to non-empty lists of values; anything else is one named line."""
    if kind != "minimiser":
        raise ValueError(f"--grid {path}: a grid is for --kind minimiser (the teacher search has fixed candidates)")
    if not isinstance(grid, dict) or not grid:
        raise ValueError(f"--grid {path}: a grid is a YAML mapping of {', '.join(GRID_KEYS)} to lists of values")
    for key, values in grid.items():
        if key not in GRID_KEYS:
            raise ValueError(f"--grid {path}: unknown key {key!r}; a grid maps {', '.join(GRID_KEYS)} to lists")
        if not isinstance(values, list) or not values:
            raise ValueError(f"--grid {path}: {key} must be a non-empty list of values, got {values!r}")


def cmd_search(argv: list[str]) -> int:
    """Choose CMI settings on held-out training data (Optuna grid + successive halving); prints the table."""
    from .engine import EngineArgs
    from .experiments import RunConfig
    from .results import ResultStore, atomic_write_text
    from .search import search_settings

    parser = _parser((SearchArgs, RunConfig, StoreArgs, EngineArgs))
    parser.set_defaults(results_dir="results/search")
    args, base, store_args, engine = parser.parse_args_into_dataclasses(argv)
    if args.suite:
        from .reproduce import load_suite
        from .search import run_suite_search, search_table

        results = D.SUITE_RESULTS_DIR if store_args.results_dir == "results/search" else store_args.results_dir
        found = run_suite_search(load_suite(args.suite), args.kind, tasks=_split(args.tasks, name="--tasks"),
                                 glue_dir=store_args.glue_dir, results_root=Path(results), engine=engine)
        for result in found.values():
            print("\n".join(search_table(result)) + "\n")
        return 0
    grid = None
    if args.grid:
        import yaml

        try:
            with open(args.grid, encoding="utf-8") as fh:
                grid = yaml.safe_load(fh)
        except (OSError, yaml.YAMLError, UnicodeDecodeError) as exc:
            raise ValueError(f"{args.grid}: cannot read the grid ({' '.join(str(exc).split())})") from None
        check_grid(grid, args.grid, args.kind)
    out = search_settings(base, ResultStore(store_args.results_dir), grid, kind=args.kind,
                          seeds=_split(args.seeds, int, "--seeds"), budgets=_split(args.budgets, float, "--budgets"),
                          glue_dir=store_args.glue_dir, engine=engine)
    lines = [f"Held-out settings search, {base.task}, {args.kind}; rule: {out['rule']}.", "",
             "| space | T | λ | centroids | budget (epochs) | mean gain (points) | per seed | pruned |", "|---|---|---|---|---|---|---|---|"]
    for r in out["table"]:
        gain = "refused (mechanism)" if r["gain"] == float("-inf") else f"{100 * r['gain']:+.2f}"
        lines.append(f"| {r['space']} | {r['temperature']:g} | {r['cmi_weight']:g} | {r['centroid_mode']} | {r['budget']:g} | "
                     f"{gain} | {', '.join(f'{100 * g:+.2f}' for g in r['gains'])} | {'yes' if r['pruned'] else ''} |")
    w = out["winner"]
    lines += ["", "winner: " + (", ".join(f"{k}={w[k]}" for k in ("space", "temperature", "cmi_weight", "centroid_mode"))
                                if w else "none (every candidate was refused or pruned)")]
    text = "\n".join(lines)
    atomic_write_text(f"{store_args.results_dir}/search_{base.task}_{args.kind}.md", text + "\n")
    print(text)
    return 0


@dataclass
class LabCacheArgs:
    results_dir: str = field(default=D.LAB_RESULTS_DIR, metadata={"help": "the lab's result store"})
    glue_dir: str | None = field(default=None, metadata={"help": "GLUE folder; default $CMI_TOOLKIT_GLUE_DIR"})


def cmd_lab_cache(argv: list[str]) -> int:
    """Train what the course's lab cache lacks (the lambda sweep and notebook 03's views)."""
    from .engine import EngineArgs
    from .lab import build_cache

    args, engine = _parser((LabCacheArgs, EngineArgs)).parse_args_into_dataclasses(argv)
    print(build_cache(args.results_dir, args.glue_dir, engine))
    return 0


@dataclass
class CourseArgs:
    executed: str = field(default="notebooks/outputs/executed",
                          metadata={"help": "folder of the executed modules (NN_*.ipynb, e.g. from `make course`)"})
    out: str = field(default="notebooks/outputs/course", metadata={"help": "folder of the rendered pages"})


def cmd_course(argv: list[str]) -> int:
    """Render the executed course modules to static HTML pages with an index (see `make course`)."""
    from .course import render_course

    (args,) = _parser(CourseArgs).parse_args_into_dataclasses(argv)
    pages = render_course(args.executed, args.out)
    print(f"{len(pages) - 1} module(s) rendered: open {pages[-1]}")
    return 0


@dataclass
class ReadmeArgs:
    readme: str = field(default="README.md", metadata={"help": "the file whose '<!-- table: ... -->' blocks to regenerate"})
    check: bool = field(default=False, metadata={"help": "only compare: exit 1 when a block differs from the records"})


def cmd_readme(argv: list[str]) -> int:
    """Regenerate the README's result tables from the run records (--check only compares)."""
    from .readme import update

    (args,) = _parser(ReadmeArgs).parse_args_into_dataclasses(argv)
    changed = update(args.readme, check=args.check)
    verb = "differ from the records" if args.check else "regenerated"
    print(f"{len(changed)} table(s) {verb}" + (": " + "; ".join(changed) if changed else ""))
    return 1 if args.check and changed else 0


def cmd_tasks(argv: list[str]) -> int:
    """List the GLUE tasks the kit knows."""
    from .tasks import TASKS

    for t in TASKS.values():
        labels = ", ".join(t.label_names) if t.label_names else "regression"
        print(f"{t.hub_config:6s} {t.name:6s} columns={list(t.text_columns)} labels=[{labels}] metric={','.join(t.metric_names)}")
    return 0


COMMANDS: dict[str, Callable[[list[str]], int]] = {
    "demo": cmd_demo,
    "train": cmd_train,
    "distill": cmd_distill,
    "measure": cmd_measure,
    "evaluate": cmd_evaluate,
    "predict": cmd_predict,
    "runs": cmd_runs,
    "reproduce": cmd_reproduce,
    "report": cmd_report,
    "predictions": cmd_predictions,
    "cot": cmd_cot,
    "lab-cache": cmd_lab_cache,
    "course": cmd_course,
    "readme": cmd_readme,
    "search": cmd_search,
    "tasks": cmd_tasks,
}


def _usage() -> str:
    lines = ["usage: cmi-toolkit COMMAND [options]   (cmi-toolkit COMMAND --help for its options)", "", "commands:"]
    for name, fn in COMMANDS.items():
        lines.append(f"  {name:10s} {(fn.__doc__ or '').strip().splitlines()[0]}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0
    if argv[0] in ("-V", "--version"):
        from . import __version__

        print(__version__)
        return 0
    debug = "--debug" in argv or os.environ.get("CMI_TOOLKIT_DEBUG", "") not in ("", "0")
    argv = [a for a in argv if a != "--debug"]
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"error: unknown command {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    if not debug:
        warnings.showwarning = _one_line_warning
    try:
        return COMMANDS[name](rest)
    except KeyboardInterrupt:
        if debug:
            raise
        print("\ninterrupted; run the same command again to resume", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - every failure becomes one line unless --debug
        if debug:
            raise
        print(f"error: {_one_line(exc)}", file=sys.stderr)
        return 2 if _is_user_error(exc) else 1


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"warning: {str(message).splitlines()[0] if str(message) else category.__name__}", file=sys.stderr)


def _is_user_error(exc: BaseException) -> bool:
    """Errors that a user's input causes (bad values, files, folders), as opposed to bugs."""
    from .losses import NonFiniteLossError

    return isinstance(exc, (ValueError, OSError, NonFiniteLossError, LookupError)) or type(exc).__name__ in (
        "CorruptResultError", "StoreError", "DuplicateRunError", "HubUnavailableError")


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    if not _is_user_error(exc):
        text = f"{type(exc).__name__}: {text} (an unexpected failure: run again with --debug for the traceback)"
    return text


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
