"""``cmi-toolkit train`` and ``distill``: one run from options or a preset, recorded in a store, its model kept
on request.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field

from .. import defaults as D
from .common import _parser


@dataclass
class StoreArgs:
    results_dir: str = field(default=D.ADHOC_RESULTS_DIR, metadata={
        "help": f"result store (runs/<key>.json, models/); default {D.ADHOC_RESULTS_DIR} for train/distill, "
                f"{D.SUITE_RESULTS_DIR} for reproduce/report"})
    glue_dir: str | None = field(default=None, metadata={"help": "GLUE folder; default $CMI_TOOLKIT_GLUE_DIR, else the hub"})


def _run_one(argv: list[str], allowed: tuple[str, ...]) -> int:
    from ..runs.config import RunConfig
    from ..runs.execute import execute
    from ..runs.store import ResultStore

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
        from ..data.tasks import get_task
        from ..runs.suites import load_suite

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
    from ..runs.suites import SUITE_DIR

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
    from ..runs.config import ignored_fields

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
