"""The chain-of-thought verdict suite: its file, its runs and its report, as ``cpu_verdict`` does for GLUE.

A CoT suite file (``configs/<name>/suite.yaml``, ``kind: cot``) names the datasets, the variants (modes), the seeds,
the preset and per-dataset overrides, the family of comparisons and the plan. Each (dataset, seed, variant) is one
:class:`~cmi_toolkit.cot.CoTConfig`; ``data_seed: seed`` draws each seed's training and held-out rows with the seed
itself, so every variant of a seed trains on the same rows. Runs are keyed like every CoT run
(:func:`~cmi_toolkit.cot.runs.cot_key`): a finished run is skipped, so the one command resumes the plan.

The report reads the suite's records alone and states them as DESIGN.md's "Evidence" asks, through the GLUE suite's
machinery (:func:`~cmi_toolkit.evidence.verdicts.family_verdicts`): per comparison the paired-t interval over seeds and the
paired bootstrap over seeds and test examples (the wider one used), Holm within the family, pooled estimates and the
forest plot, mechanism checks and degenerate flags.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ..runs.schemas import SafeName, first_error

__all__ = ["CoTSuite", "load_cot_suite", "suite_configs", "run_cot_verdict", "cot_suite_records", "cot_verdict",
           "cot_report", "arm_lines"]

class CoTSuite(BaseModel):
    """The schema of a CoT suite file; unknown keys are refused so a typo cannot pass unseen."""

    model_config = ConfigDict(extra="forbid")
    suite: SafeName
    kind: str = Field(pattern="^cot$")
    preset: str = "cpu"
    seeds: list[int] = Field(min_length=1)
    modes: list[str] = Field(min_length=1)
    common: dict[str, Any] = {}
    datasets: dict[str, dict[str, Any]] = Field(min_length=1)
    family: list[dict[str, Any]] = Field(min_length=1)
    plan: dict[str, Any] | None = None
    amendments: list[dict[str, Any]] | None = None
    results_dir: str = "results/cot"

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, v: list[int]) -> list[int]:
        if any(s < 0 for s in v) or len(set(v)) != len(v):
            raise ValueError("seeds are distinct integers >= 0")
        return v

    @field_validator("modes")
    @classmethod
    def _modes(cls, v: list[str]) -> list[str]:
        from .runs import VARIANTS

        unknown = [m for m in v if m not in VARIANTS]
        if unknown:
            raise ValueError(f"unknown mode(s) {unknown}; choose from {', '.join(VARIANTS)}")
        return v

    @field_validator("datasets")
    @classmethod
    def _datasets(cls, v: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        from .data import DATASETS

        unknown = [d for d in v if d not in DATASETS]
        if unknown:
            raise ValueError(f"unknown dataset(s) {unknown}; choose from {', '.join(DATASETS)}")
        return v


def load_cot_suite(suite: str | os.PathLike) -> dict[str, Any]:
    """A CoT suite by name (``configs/<name>/suite.yaml``) or path; every mistake is one line naming file and key."""
    import yaml

    from ..runs.suites import SUITE_DIR, _UniqueKeyLoader
    from .trainer import PRESETS, CoTConfig

    path = Path(suite)
    if not path.is_file():
        path = SUITE_DIR / str(suite) / "suite.yaml"
    if not path.is_file():
        raise FileNotFoundError(f"no CoT suite {suite!r}: pass a suite YAML file or a name under {SUITE_DIR}")
    try:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise ValueError(f"{path}{f', line {mark.line + 1}' if mark else ''}: not valid YAML "
                         f"({getattr(exc, 'problem', exc)}); fix the suite file") from None
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: a CoT suite is a YAML mapping (suite, kind: cot, seeds, modes, datasets, family)")
    try:
        spec = CoTSuite.model_validate(raw).model_dump()
    except ValidationError as exc:
        raise ValueError(f"{path}: {first_error(exc)}; fix the suite file") from None
    if spec["preset"] not in PRESETS:
        raise ValueError(f"{path}: preset: {spec['preset']!r} is not one of {', '.join(PRESETS)}")
    fields = set(CoTConfig.__dataclass_fields__)
    for where, block in [("common", spec["common"])] + [(f"datasets.{d}", b or {}) for d, b in spec["datasets"].items()]:
        unknown = sorted(set(block) - fields)
        if unknown:
            raise ValueError(f"{path}: {where}: unknown key(s) {unknown}; a run takes {', '.join(sorted(fields))}")
    try:  # every run's configuration is checked before anything runs
        suite_configs(spec)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{path}: {exc}; fix the suite file") from None
    from ..runs.plan import parse_plan

    parse_plan(spec, str(path))
    spec["_file"] = str(path.resolve())
    return spec


def suite_configs(spec: dict[str, Any], datasets: list[str] | None = None, seeds: list[int] | None = None,
                  modes: list[str] | None = None) -> list[Any]:
    """The :class:`~cmi_toolkit.cot.CoTConfig` of every (dataset, seed, variant) of the suite, in run order:
    dataset by dataset, seed by seed, the variants of a seed together."""
    from .runs import VARIANTS
    from .trainer import PRESETS, CoTConfig

    out = []
    for dataset, block in spec["datasets"].items():
        if datasets and dataset not in datasets:
            continue
        for seed in spec["seeds"]:
            if seeds is not None and seed not in seeds:
                continue
            for mode in spec["modes"]:
                if modes and mode not in modes:
                    continue
                values = {**PRESETS[spec["preset"]], **spec["common"], **(block or {}), **VARIANTS[mode],
                          "dataset": dataset, "seed": seed}
                if values.get("data_seed") == "seed":
                    values["data_seed"] = seed
                out.append(CoTConfig(**values))
    return out


def _keys(spec: dict[str, Any], data: dict[str, str], **select) -> dict[str, Any]:
    from .runs import cot_key

    return {cot_key(cfg, data[cfg.dataset]): cfg for cfg in suite_configs(spec, **select)}


def _fingerprints(spec: dict[str, Any], source: str | os.PathLike | None) -> dict[str, str]:
    from .data import _cot_root
    from .runs import cot_fingerprint

    root = _cot_root(source).resolve()
    return {d: cot_fingerprint(d, root) for d in spec["datasets"]}


def run_cot_verdict(spec: dict[str, Any], source: str | os.PathLike | None = None,
                    results_dir: str | os.PathLike | None = None, engine=None, progress: bool = True,
                    check_counts: bool = True, **select) -> list[dict[str, Any]]:
    """Every run of the suite not yet in its store (``select``: datasets, seeds, modes); returns the records.
    ``check_counts``: refuse data whose example counts differ from the released files' (off for small fixtures)."""
    from ..runs.engine import Job, run_jobs
    from ..runs.store import ResultStore
    from .data import _cot_root, load_cot
    from .runs import _cot_record, variant_of

    store = ResultStore(results_dir or spec["results_dir"])
    root = str(_cot_root(source).resolve())
    for dataset in spec["datasets"]:  # a data mistake is one line here, before any run starts
        if not select.get("datasets") or dataset in select["datasets"]:
            load_cot(dataset, root, check_counts=check_counts)
    data = _fingerprints(spec, root)
    jobs = [Job(key, f"{cfg.dataset}/{variant_of(cfg.__dict__)}/seed{cfg.seed}", _cot_record,
                (cfg, root, key, spec["suite"], data[cfg.dataset], check_counts))
            for key, cfg in _keys(spec, data, **select).items()]
    batch = run_jobs(jobs, store, engine, desc=f"suite {spec['suite']}", progress=progress)
    if batch.failed:
        raise RuntimeError("; ".join(f"{key}: {why}" for key, why in batch.failed.items()))
    return batch.records


def cot_suite_records(spec: dict[str, Any], source: str | os.PathLike | None = None,
                      results_dir: str | os.PathLike | None = None) -> tuple[list[dict[str, Any]], list[str]]:
    """(the suite's records, the planned runs without one: ``dataset/variant/seed``)."""
    from ..runs.store import ResultStore
    from .runs import variant_of

    store = ResultStore(results_dir or spec["results_dir"])
    records, missing = [], []
    for key, cfg in _keys(spec, _fingerprints(spec, source)).items():
        rec = store.load(key)
        name = f"{cfg.dataset}/{variant_of(cfg.__dict__)}/seed{cfg.seed}"
        if rec is None:
            missing.append(name)
            continue
        rec.setdefault("arm", variant_of(cfg.__dict__))
        rec.setdefault("timings", {"train_s": rec.get("train_s", 0.0), "eval_s": rec.get("eval_s", 0.0)})
        records.append(rec)
    return records, missing


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else float("nan")


def arm_lines(records: list[dict[str, Any]]) -> list[str]:
    """Per dataset and variant: seeds, accuracy (mean ± sd), flagged runs, ROUGE-L against PaLM / human, time."""
    import numpy as np

    from .runs import NAMES, VARIANTS

    lines = ["| dataset | method | seeds | accuracy (%) mean ± sd | flagged | ROUGE-L vs PaLM | ROUGE-L vs human | "
             "mechanism | train min / run |", "|---|---|---|---|---|---|---|---|---|"]
    for dataset in dict.fromkeys(r["params"]["task"] for r in records):
        mine = [r for r in records if r["params"]["task"] == dataset]
        ref = mine[0]["metrics"]
        for variant in VARIANTS:
            rs = [r for r in mine if r["arm"] == variant]
            if not rs:
                continue
            acc = np.array([r["metrics"]["accuracy"] for r in rs])
            sd = acc.std(ddof=1) if len(acc) > 1 else 0.0
            flagged = sum(bool(r["checks"]["flags"]) for r in rs)
            rl = [r["metrics"].get("rouge_l_palm") for r in rs if r["metrics"].get("rouge_l_palm") is not None]
            rh = [r["metrics"].get("rouge_l_human") for r in rs if r["metrics"].get("rouge_l_human") is not None]
            mech = [r["checks"]["mechanism"]["passed"] for r in rs if r["checks"]["mechanism"]["passed"] is not None]
            lines.append(f"| {dataset} | {NAMES[variant]} | {len(rs)} | {100 * acc.mean():.2f} ± {100 * sd:.2f} | "
                         f"{flagged} | {f'{_mean(rl):.3f}' if rl else '–'} | {f'{_mean(rh):.3f}' if rh else '–'} | "
                         f"{f'{sum(mech)}/{len(mech)}' if mech else '–'} | "
                         f"{_mean([r['train_s'] for r in rs]) / 60:.1f} |")
        lines.append(f"| {dataset} | *chance / majority class / PaLM teacher* | | {100 * ref['chance']:.2f} / "
                     f"{100 * ref['majority_class']:.2f} / {100 * ref['teacher_accuracy']:.2f} | | | | | |")
    return lines


def cot_verdict(spec: dict[str, Any], source: str | os.PathLike | None = None,
                results_dir: str | os.PathLike | None = None) -> dict[str, Any]:
    """The suite's evidence from its records: ``records``, ``missing`` (planned runs without one), ``rows`` (each
    comparison of the family, Holm-adjusted), ``pools`` (pooled estimate per question) and ``answers`` (one sentence
    per question, "So far (partial)" while runs are missing)."""
    from ..evidence.verdicts import answers, family_verdicts, pooled

    records, missing = cot_suite_records(spec, source, results_dir)
    rows = family_verdicts(records, {"family": spec["family"]}) if records else []
    pools = pooled(rows, exclude=tuple((spec.get("plan") or {}).get("excluded") or ())) if rows else {}
    return {"records": records, "missing": missing, "rows": rows, "pools": pools,
            "answers": answers(rows, pools, partial=bool(missing)) if rows else []}


def cot_report(spec: dict[str, Any], source: str | os.PathLike | None = None,
               results_dir: str | os.PathLike | None = None, figures_dir: str | os.PathLike | None = None
               ) -> dict[str, Any]:
    """Write ``<results_dir>/summary_<suite>.md`` (and the forest plot) from the suite's records; returns
    ``{"md": path, "rows": family rows, "pools": pooled estimates, "missing": [...], "records": n}``."""
    from ..evidence.verdicts import family_table
    from ..files import atomic_write_text
    from ..runs.plan import plan_lines, plan_status

    results = Path(results_dir or spec["results_dir"])
    found = cot_verdict(spec, source, results)
    records, missing, rows, pools = found["records"], found["missing"], found["rows"], found["pools"]
    if not records:
        raise ValueError(f"{results}: no records of suite {spec['suite']!r}; run `cmi-toolkit cot --suite "
                         f"{spec['suite']}` first")
    lines = [f"# Chain-of-thought distillation, suite {spec['suite']}", "",
             f"{len(records)} of {len(records) + len(missing)} planned runs recorded."]
    if missing:
        shown = ", ".join(missing[:12]) + (f" and {len(missing) - 12} more" if len(missing) > 12 else "")
        lines += ["", f"**Incomplete:** no record yet for {shown}; `cmi-toolkit cot --suite {spec['suite']}` runs "
                  "them (finished runs are skipped)."]
    lines += ["", "## The answers", ""] + found["answers"]
    lines += ["", "## Each student", "", *arm_lines(records), "",
              "## The family of comparisons", "",
              "Each comparison is paired by seed (each seed's variants train on the same rows). Two intervals: over "
              "seeds (paired t) and over seeds and test examples (a paired bootstrap resampling both); the verdict "
              "uses the wider one, its p-value (the larger) Holm-adjusted within the family.", "",
              *family_table(rows, pools)]
    status = plan_status(spec, spec.get("_file"), records)
    lines += ["", "## Plan", "", *plan_lines(status)]
    path = results / f"summary_{spec['suite']}.md"
    atomic_write_text(path, "\n".join(lines) + "\n")
    out: dict[str, Any] = {"md": path, "rows": rows, "pools": pools, "missing": missing, "records": len(records)}
    if figures_dir is not None and pools:
        from ..evidence.figures import forest_plot
        from ..plotting import save_figure

        out["forest"] = save_figure(forest_plot(rows, pools, f"Paired Δ per dataset and pooled, suite {spec['suite']}"),
                                    f"forest_{spec['suite']}", Path(figures_dir))["html"]
    return out
