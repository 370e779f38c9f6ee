"""The schema of a suite file (``configs/<suite>/suite.yaml``): tasks, arms, the comparison family, fp32
runs, amendments. :func:`validate_suite` turns the first violation into one line naming the key; run
settings are checked against :class:`~cmi_toolkit.runs.config.RunConfig` (:func:`check_run_settings`).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    ValidationError,
)

from .schemas import Number, SafeName, first_error


class SuiteTask(BaseModel):
    """A task's entry under ``tasks:``: run settings (checked by RunConfig) plus ``methods`` and ``teacher``."""

    model_config = ConfigDict(extra="allow")
    methods: list[SafeName] | None = None
    teacher: dict[str, Any] | Literal["search"] | None = None


class SuiteArm(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: SafeName
    method: SafeName
    settings: Literal["search"] | dict[str, Any] | None = None
    tasks: dict[str, dict[str, Any]] | None = None


class SuiteFamily(BaseModel):
    model_config = ConfigDict(extra="forbid")
    method: StrictStr
    baseline: StrictStr
    tasks: list[StrictStr]


class Fp32Runs(BaseModel):
    """Runs of a suite (tasks x arms x seeds) that an amendment trains in fp32 instead of the suite's bf16."""

    model_config = ConfigDict(extra="forbid")
    tasks: list[StrictStr] = Field(min_length=1)
    arms: list[StrictStr] = Field(min_length=1)
    seeds: list[StrictInt] = Field(min_length=1)


class Fp32Search(BaseModel):
    """A search whose rungs from ``from_rung`` (1 = the first) on train in fp32, baselines included."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["minimiser", "teacher"]
    tasks: list[StrictStr] = Field(min_length=1)
    from_rung: StrictInt = Field(ge=1)


class Fp32Change(BaseModel):
    """``fp32:`` of an amendment: the runs and search rungs it moves to fp32 (each paired with fp32 baselines)."""

    model_config = ConfigDict(extra="forbid")
    runs: list[Fp32Runs] = Field(default_factory=list)
    search: list[Fp32Search] = Field(default_factory=list)


class Amendment(BaseModel):
    """A change to a pre-registered suite made after its plan's commit: when, before which runs, why, what."""

    model_config = ConfigDict(extra="forbid")
    date: StrictStr
    before: StrictStr
    why: StrictStr
    change: StrictStr
    budget_machine_hours: Number | None = None
    machine_cores: StrictInt | None = None
    budget_estimate_core_s: dict[str, Number] | None = None
    fp32: Fp32Change | None = None


class SuiteFile(BaseModel):
    """A suite file (``configs/<suite>/suite.yaml``); unknown top-level keys are refused (a typo would
    otherwise be ignored)."""

    model_config = ConfigDict(extra="forbid")
    suite: SafeName | None = None
    description: StrictStr | None = None
    seeds: list[StrictInt] = Field(min_length=1)
    tasks: dict[SafeName, SuiteTask | None] = Field(min_length=1)
    common: dict[StrictStr, Any]
    finetune_methods: list[SafeName] = Field(default_factory=list)
    distill_methods: list[SafeName] = Field(default_factory=list)
    teacher: dict[str, Any] | Literal["search"] | None = None
    arms: list[SuiteArm] | None = None
    family: list[SuiteFamily] | None = None
    search: dict[str, Any] | None = None
    plan: dict[str, Any] | None = None
    equivalence: dict[str, Any] | None = None
    amendments: list[Amendment] | None = None
    notes: StrictStr | None = None
    hub: StrictBool | None = None
    fallback: dict[str, Any] | None = None


def validate_suite(spec: Any) -> None:
    """Raise ValueError (``key: problem``) unless ``spec`` fits :class:`SuiteFile` and every run setting
    (``common``, each task's settings, the teacher's) is a field of the run with a value of its type."""
    if not isinstance(spec, dict):
        raise ValueError("a suite is a YAML mapping with seeds, tasks and common")
    try:
        SuiteFile.model_validate(spec)
    except ValidationError as exc:
        raise ValueError(first_error(exc)) from None
    settings = [("common", spec["common"])]
    for task, entry in spec["tasks"].items():
        extra = {k: v for k, v in (entry or {}).items() if k not in ("methods", "teacher")}
        settings.append((f"tasks.{task}", extra))
        if isinstance((entry or {}).get("teacher"), dict):
            settings.append((f"tasks.{task}.teacher", entry["teacher"]))
    if isinstance(spec.get("teacher"), dict):
        settings.append(("teacher", spec["teacher"]))
    for where, values in settings:
        check_run_settings(values, where)


def check_run_settings(values: dict[str, Any], where: str) -> None:
    """Each key of ``values`` is a RunConfig field, its value has the field's type
    (:func:`~cmi_toolkit.runs.config.field_type_problem`) and lies in the field's range (RunConfig's own checks,
    named by file key rather than command-line option)."""
    import dataclasses
    import warnings

    from .config import RunConfig, field_type_problem

    fields = {f.name for f in dataclasses.fields(RunConfig)}
    for name, value in values.items():
        if name not in fields:
            raise ValueError(f"{where}.{name}: unknown run setting (known: {', '.join(sorted(fields))})")
        if name == "student_layers" and isinstance(value, int):
            value = str(value)  # YAML reads a single layer as a number
        problem = field_type_problem(name, value)
        if problem:
            raise ValueError(f"{where}.{name}: {problem}")
        if name in ("task", "method", "model"):
            continue  # checked with the suite's tasks and arms, and when the model is resolved
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a value's warning is given when its run starts
            try:
                RunConfig(**{name: value})
            except ValueError as exc:  # RunConfig names the command-line option; here the file's key is meant
                text = str(exc)
                text = text[len(f"--{name}"):].lstrip() if text.startswith(f"--{name}") else text
                raise ValueError(f"{where}.{name}: {text}") from None
