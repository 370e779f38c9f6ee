"""The ``cmi-toolkit`` command line.

``cmi-toolkit COMMAND [--option value ...]``; each command's options are a dataclass parsed by
transformers' ``HfArgumentParser`` (``cmi-toolkit COMMAND --help`` lists them).

A user's mistake (a bad option value, a malformed data file, an unwritable results folder, ...)
prints one line, ``error: ...``, naming the file (and line) and the fix, and exits with 2;
``--debug`` (anywhere on the line) or ``CMI_TOOLKIT_DEBUG=1`` shows the traceback instead.
Ctrl-C prints how to resume and exits with 130.
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Callable

from .cot import cmd_cot
from .course import cmd_course, cmd_lab_cache, cmd_readme, cmd_tasks
from .demo import cmd_demo
from .scoring import cmd_evaluate, cmd_measure, cmd_predict, cmd_predictions
from .store import cmd_runs
from .suites import cmd_report, cmd_reproduce, cmd_search
from .training import cmd_distill, cmd_train

__all__ = ["main", "COMMANDS"]


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
        from .. import __version__

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
    from ..method.losses import NonFiniteLossError

    return isinstance(exc, (ValueError, OSError, NonFiniteLossError, LookupError)) or type(exc).__name__ in (
        "CorruptResultError", "StoreError", "DuplicateRunError", "HubUnavailableError")


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    if not _is_user_error(exc):
        text = f"{type(exc).__name__}: {text} (an unexpected failure: run again with --debug for the traceback)"
    return text


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
