"""``cmi-toolkit runs``: the runs of a store listed, filtered, and their kept models pruned."""

from __future__ import annotations

from dataclasses import dataclass, field

from .. import defaults as D
from .common import _parser


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
    from ..data.tasks import get_task
    from ..runs.catalog import find_runs, prune_models, run_row
    from ..runs.store import ResultStore

    (args,) = _parser(RunsArgs).parse_args_into_dataclasses(argv)
    store = ResultStore(args.results_dir)
    if not store.runs.is_dir():  # a mistyped folder must not read as an empty store
        raise FileNotFoundError(f"{store.runs}: no result store here (no runs/ folder); pass --results_dir with a "
                                "folder that holds runs/<key>.json records (e.g. results, results/lab)")
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
