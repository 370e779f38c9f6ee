"""``cmi-toolkit cot``: chain-of-thought distillation runs, a preset's seeds and modes, or a whole suite."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

from .common import _parser, _split


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
    from ..runs.provenance import cpu_features

    return bool(cpu_features().get("cpu_bf16"))


def cmd_cot(argv: list[str]) -> int:
    """Chain-of-thought distillation: label-only vs DSS vs DSS+MI on CQA, e-SNLI or SVAMP over seeds, or a suite."""
    from ..cot import cot_table, run_cot_suite
    from ..files import atomic_write_text
    from ..runs.engine import EngineArgs

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
    from ..cot.suite import cot_report, load_cot_suite, run_cot_verdict

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
