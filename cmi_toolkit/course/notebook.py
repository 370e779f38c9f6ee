"""The set-up every course notebook shares: its output folders and where its data lives."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import defaults as D

__all__ = ["setup", "folders", "kit_results", "shown_path", "data_dir", "cap_threads", "SMOKE_BANNER", "P", "ParameterError", "check_parameters",
           "smoke_note", "save_metrics"]

SMOKE_BANNER = "smoke: pipeline check, numbers are not meaningful"

_ENV = {"glue": "CMI_TOOLKIT_GLUE_DIR", "cot": "CMI_TOOLKIT_COT_DIR"}


def folders(output_dir: str | os.PathLike, figures_dir: str | os.PathLike | None) -> tuple[Path, Path]:
    """(output_dir, figures_dir) as paths; the output folder is created. ``figures_dir`` None is
    ``<output_dir>/figures``: a notebook run leaves the repository's committed figures alone (``make figures``
    writes those, passing ``figures_dir=../figures``)."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    return output_dir, (output_dir / "figures" if figures_dir is None else Path(figures_dir))


def kit_results(*parts: str) -> Path:
    """A folder of the kit's committed results (``results/<parts>``), found from the package's location, so a
    notebook started from any folder reads the same records."""
    return D.REPO_ROOT / "results" / Path(*parts)


def shown_path(path: str | os.PathLike) -> str:
    """``path`` as a page shows it: relative to the checkout when inside it (``results``), so a rendered module
    names no machine's folders; as given otherwise."""
    resolved = Path(path).resolve()
    return str(resolved.relative_to(D.REPO_ROOT)) if resolved.is_relative_to(D.REPO_ROOT) else str(path)


def data_dir(kind: str, given: str | os.PathLike | None = None) -> str:
    """The ``glue`` or ``cot`` data folder: ``given``, else its environment variable, else ``shared/data/<kind>``
    beside the checkout (found from the package's location, so a notebook started from any folder finds it)."""
    if given is not None:
        return str(given)
    return os.environ.get(_ENV[kind]) or str(D.REPO_ROOT.parent / "shared" / "data" / kind)


def cap_threads(limit: int = 4) -> int:
    """Cap torch's intra-op threads at ``limit`` (or ``$CMI_TOOLKIT_THREADS``) and its inter-op threads at 1.

    Small models gain little beyond four threads, and a class's laptops or a shared server should
    stay responsive; tokenizers' own thread pool is switched off for the same reason. Returns the
    number of threads torch will use.
    """
    import torch

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    wanted = int(os.environ.get("CMI_TOOLKIT_THREADS") or limit)
    threads = max(1, min(wanted, os.cpu_count() or 1))
    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # already set, or parallel work has started: keep what is there
        pass
    return threads


def save_metrics(output_dir: str | os.PathLike, data: Any) -> None:
    """Write ``<output_dir>/metrics.json``: the numbers a notebook computed, for the tests and batch runs that read
    them. Returns nothing, so a cell that ends with it shows nothing."""
    from ..files import write_json

    write_json(Path(output_dir) / "metrics.json", data)


def setup(smoke: bool, output_dir: str | os.PathLike, figures_dir: str | os.PathLike | None, kind: str | None = None,
          data: str | os.PathLike | None = None) -> tuple[Path, Path, str | None]:
    """A course notebook's set-up: the smoke banner, its folders (:func:`folders`), capped threads
    (:func:`cap_threads`) and, for ``kind`` ``"glue"`` or ``"cot"``, its data folder (:func:`data_dir`).

    Returns ``(output_dir, figures_dir, data folder or None)``.
    """
    if smoke:
        print(SMOKE_BANNER)
    output_dir, figures_dir = folders(output_dir, figures_dir)
    cap_threads()
    return output_dir, figures_dir, (data_dir(kind, data) if kind else None)


class ParameterError(ValueError):
    """A notebook parameter (papermill ``-p`` / ``-r``, or an edited parameters cell) of the wrong type or range.

    Shown by IPython as its one line (no traceback) in the first output cell.
    """

    def _render_traceback_(self) -> list[str]:
        return [f"ParameterError: {self}"]


_TRUE, _FALSE = ("true", "yes", "1", "on"), ("false", "no", "0", "off")


@dataclass(frozen=True)
class P:
    """The rule of one notebook parameter: its type (bool, int, float, str, list, dict), an inclusive range, whether
    None is allowed, the allowed values (for a dict: its allowed keys), and the type of a list's items."""

    kind: type
    low: float | None = None
    high: float | None = None
    none: bool = False
    choices: tuple | None = None
    items: type | None = None

    def check(self, name: str, value: Any) -> Any:
        """``value`` converted where the intent is unambiguous (``"False"`` -> False, ``"3"`` -> 3), or
        :class:`ParameterError` naming the parameter and what it accepts."""
        if value is None:
            if self.none:
                return None
            raise ParameterError(f"{name} = None, but it needs {self._what()}")
        value = self._convert(name, value, self.kind)
        if self.kind is list:
            value = [self._bounded(f"{name}[{i}]", self._convert(f"{name}[{i}]", v, self.items or float))
                     for i, v in enumerate(value)]
            return value
        return self._bounded(name, value)

    def _what(self) -> str:
        kind = {bool: "True or False", int: "an integer", float: "a number", str: "a string",
                list: f"a list of {'integers' if self.items is int else 'numbers' if self.items in (float, None) else 'strings'}",
                dict: "a dict of settings"}[self.kind]
        rng = ""
        if self.low is not None and self.high is not None:
            rng = f" in [{self.low:g}, {self.high:g}]"
        elif self.low is not None:
            rng = f" >= {self.low:g}"
        elif self.high is not None:
            rng = f" <= {self.high:g}"
        allowed = "keys among" if self.kind is dict else "one of"
        return kind + rng + (f" ({allowed} {', '.join(map(repr, self.choices))})" if self.choices else "") + (
            " or None" if self.none else "")

    def _convert(self, name: str, value: Any, kind: type) -> Any:
        bad = ParameterError(f"{name} = {value!r}, but it needs {self._what()}")
        if kind is bool:
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
                return value.strip().lower() in _TRUE  # papermill -r passes "False" as text
            raise bad
        if kind is int:
            if isinstance(value, bool):
                raise bad
            if isinstance(value, int):
                return value
            if isinstance(value, float) and value.is_integer():
                return int(value)
            if isinstance(value, str):
                try:
                    return int(value.strip())
                except ValueError:
                    raise bad from None
            raise bad
        if kind is float:
            if isinstance(value, bool):
                raise bad
            if isinstance(value, (int, float)):
                return float(value)
            if isinstance(value, str):
                try:
                    return float(value.strip())
                except ValueError:
                    raise bad from None
            raise bad
        if kind is str:
            if isinstance(value, (str, os.PathLike)):
                return str(value)
            raise bad
        if kind is list:
            if isinstance(value, (list, tuple)) and value:
                return list(value)
            raise bad
        if kind is dict:
            if isinstance(value, dict):
                return dict(value)
            raise bad
        return value

    def _bounded(self, name: str, value: Any) -> Any:
        if isinstance(value, float) and not math.isfinite(value):
            raise ParameterError(f"{name} = {value}, but it needs a finite number" + (
                "" if self.low is None else f" >= {self.low:g}"))
        if self.kind is dict:
            unknown = [k for k in value if self.choices is not None and k not in self.choices]
            if unknown:
                raise ParameterError(f"{name} has {', '.join(map(repr, unknown))}, but it needs {self._what()}")
            return value
        if self.choices is not None and value not in self.choices:
            raise ParameterError(f"{name} = {value!r}, but it needs one of {', '.join(map(repr, self.choices))}")
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if (self.low is not None and value < self.low) or (self.high is not None and value > self.high):
                raise ParameterError(f"{name} = {value!r}, but it needs {self._what()}")
        if isinstance(value, str) and self.kind is str and not value.strip() and not self.none:
            raise ParameterError(f"{name} is empty, but it needs {self._what()}")
        return value


def check_parameters(namespace: dict[str, Any], **rules: P) -> None:
    """Check (and convert in place) the notebook parameters named in ``rules`` in ``namespace`` (the notebook's
    ``globals()``); the first mistake is a :class:`ParameterError`, one line in the first output cell."""
    for name, rule in rules.items():
        if name not in namespace:
            raise ParameterError(f"{name}: the parameters cell does not define it")
        namespace[name] = rule.check(name, namespace[name])


def smoke_note(**replaced: Any) -> None:
    """Say which parameters smoke mode replaced, and with what (nothing is overridden silently)."""
    if replaced:
        print("smoke mode uses " + ", ".join(f"{k} = {v!r}" for k, v in replaced.items()) + " instead of the parameters")
