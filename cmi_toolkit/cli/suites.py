"""``cmi-toolkit reproduce``, ``report`` and ``search``: a suite's runs, its report, and its held-out searches."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

from .. import defaults as D
from .common import _parser, _split
from .training import KeepArgs, StoreArgs


@dataclass
class SuiteArgs:
    suite: str = field(default="cpu", metadata={"help": "cpu, paper, or a suite YAML file"})
    tasks: str | None = field(default=None, metadata={"help": "comma-separated subset of the suite's tasks"})
    seeds: str | None = field(default=None, metadata={"help": "comma-separated seeds (default: the suite's)"})
    methods: str | None = field(default=None, metadata={"help": "comma-separated subset of methods"})
    report: bool = field(default=True, metadata={"help": "write the summary afterwards"})
    executor: str = field(default="package", metadata={"help": "package (direct) or papermill (notebook 04 per task and seed)"})
    figures_dir: str = field(default="figures", metadata={"help": "where the summary figure goes"})


def cmd_reproduce(argv: list[str]) -> int:
    """Run a suite's GLUE runs (skipping finished ones), then write the summary."""
    from ..evidence.report import report
    from ..runs.engine import EngineArgs
    from ..runs.store import ResultStore
    from ..runs.suites import load_suite, run_suite

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
    from ..evidence.report import report
    from ..runs.store import ResultStore
    from ..runs.suites import load_suite

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
    from ..files import atomic_write_text
    from ..runs.config import RunConfig
    from ..runs.engine import EngineArgs
    from ..runs.search import search_settings
    from ..runs.store import ResultStore

    parser = _parser((SearchArgs, RunConfig, StoreArgs, EngineArgs))
    parser.set_defaults(results_dir="results/search")
    args, base, store_args, engine = parser.parse_args_into_dataclasses(argv)
    if args.suite:
        from ..runs.search import run_suite_search, search_table
        from ..runs.suites import load_suite

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
