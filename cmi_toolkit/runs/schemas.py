"""Declared schemas of the files the kit reads but did not necessarily write: run records and suite files.

Each is a pydantic model; :func:`validate_record` and :func:`validate_suite` turn the first violation into
one sentence naming the key (``params.seed: expected an integer, got '0'``) so that the caller can prefix
the file and say how to fix it. The kit's own writers produce exactly these shapes; a record or suite file
edited by hand, truncated, or written by another tool is refused instead of silently dropped or misread.
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictFloat,
    StrictInt,
    StrictStr,
    ValidationError,
)

__all__ = ["GlueRecord", "CoTRecord", "validate_record", "first_error"]

Number = StrictInt | StrictFloat


def first_error(exc: ValidationError) -> str:
    """``where: what`` of a pydantic error, e.g. ``params.seed: Input should be a valid integer``."""
    err = exc.errors()[0]
    where = ".".join(str(x) for x in err["loc"]) or "(top level)"
    value = err.get("input")
    shown = repr(value) if isinstance(value, (str, int, float, bool)) or value is None else type(value).__name__
    msg = re.sub(r" or instance of \w+", "", err["msg"])
    if err["type"] == "missing":
        return f"{where}: missing"
    if err["type"] == "extra_forbidden":
        return f"{where}: unknown key"
    if err["type"] == "value_error":
        return f"{where}: {msg.removeprefix('Value error, ')}"
    return f"{where}: {msg[0].lower() + msg[1:]}, got {shown}"


class _Params(BaseModel):
    model_config = ConfigDict(extra="allow")
    seed: StrictInt


class GlueParams(_Params):
    task: StrictStr
    method: Literal["ce", "cmi", "mcmi", "student", "kd_ce", "kd_mcmi"]


class GlueMetrics(BaseModel):
    model_config = ConfigDict(extra="allow")
    accuracy: Number
    feature_cmi: Number
    output_cmi: Number


class GlueRecord(BaseModel):
    """A GLUE run record (``runs/<key>.json``) as :func:`~cmi_toolkit.runs.execute.execute` writes it."""

    model_config = ConfigDict(extra="allow")
    key: StrictStr | None = None
    suite: StrictStr | None = None
    also_suites: list[StrictStr] = Field(default_factory=list)
    params: GlueParams
    metrics: GlueMetrics
    headline_metric: StrictStr | None = None
    checks: dict[str, Any] | None = None
    data: dict[str, Any] | None = None
    predictions: dict[str, Any] | None = None
    timings: dict[str, Number] | None = None
    provenance: dict[str, Any] | None = None


class CoTParams(_Params):
    dataset: StrictStr
    mode: StrictStr


class CoTRecord(BaseModel):
    """A chain-of-thought run record (``results/cot/runs/<key>.json``)."""

    model_config = ConfigDict(extra="allow")
    key: StrictStr | None = None
    params: CoTParams
    metrics: dict[str, Any]


def validate_record(record: dict[str, Any], schema: type[BaseModel] | None = None) -> None:
    """Raise ValueError (``key: problem``) unless ``record`` fits ``schema`` (default: by its parameters,
    :class:`CoTRecord` when they name a ``dataset``, else :class:`GlueRecord`); a headline metric must be
    one of the metrics."""
    if schema is None:
        params = record.get("params")
        schema = CoTRecord if isinstance(params, dict) and "dataset" in params else GlueRecord
    try:
        schema.model_validate(record)
    except ValidationError as exc:
        raise ValueError(first_error(exc)) from None
    head = record.get("headline_metric")
    if head is not None and head not in record["metrics"]:
        raise ValueError(f"headline_metric: {head!r} is not among the metrics")
    check_metric_ranges(record["metrics"])


#: the range of each metric a record may hold (a value outside it is impossible, never a result)
METRIC_RANGES: dict[str, tuple[float, float]] = {
    **{m: (0.0, 1.0) for m in ("accuracy", "f1", "exact_match", "choice_accuracy", "teacher_accuracy", "chance",
                               "majority_class", "rouge_l_palm", "rouge_l_human", "teacher_answer_share",
                               "mean_max_prob")},
    "matthews_correlation": (-1.0, 1.0),
    **{m: (0.0, math.inf) for m in ("feature_cmi", "output_cmi", "feature_separation", "output_separation",
                                     "feature_ncmi", "output_ncmi")},
}


ROUNDING = 1e-9


def check_metric_ranges(metrics: dict[str, Any]) -> None:
    """ValueError (``metrics.<name>: ...``) for a metric of :data:`METRIC_RANGES` that is not a finite number in its
    range: an accuracy of 1.5 or a NaN never reaches a table or a p-value."""
    for name, (low, high) in METRIC_RANGES.items():
        value = metrics.get(name)
        if value is None:
            continue
        # ROUNDING: a CMI of -5.6e-17 is a sum of float rounding errors around 0, not an impossible number
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                or not low - ROUNDING <= value <= high + ROUNDING:
            span = f"[{low:g}, {high:g}]" if math.isfinite(high) else f">= {low:g}"
            raise ValueError(f"metrics.{name}: {value!r} is outside its range {span} (finite); the record is "
                             "damaged or edited: rerun the run or restore the record")


# ---------------------------------------------------------------------------------------------- suites

#: a name that becomes part of a file name (suite, task, dataset, method, arm): letters, digits, ``_ . -``, no
#: separators, not starting with a dot and never ``..``, so no name read from a file can write outside its folder
SAFE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}")


def safe_name(value: str) -> str:
    """``value`` if it is a safe name (:data:`SAFE_NAME`, no ``..``), else ValueError saying why."""
    if not isinstance(value, str) or not SAFE_NAME.fullmatch(value) or ".." in value:
        raise ValueError(f"{value!r} is not a safe name (letters, digits and _ . - only, no path separators, no "
                         "'..'), as it becomes part of a file name")
    return value


SafeName = Annotated[StrictStr, AfterValidator(safe_name)]
