"""Run results on disk: atomic writes, keys that hash parameters and data, corruption reported.

One run = (task, method, model, seed, parameters) on some data. Its record (metrics, parameters,
data fingerprint, provenance, checks, timings) lives in ``<results_dir>/runs/<key>.json`` where
``key`` hashes the canonical JSON of its parameters *and* the fingerprint of the data it read
(:func:`cmi_toolkit.data.glue_fingerprint`), so a batch rerun finds and skips finished runs, a
run on other data never answers for this one, and a crash loses at most the run in flight.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["claimed_suites", "CorruptResultError", "StoreError", "DuplicateRunError", "atomic_write_text", "write_json", "run_key", "ResultStore"]


class CorruptResultError(RuntimeError):
    """A results file exists but cannot be read; it is left in place for inspection."""


class StoreError(RuntimeError):
    """The result store cannot be used (e.g. its folder is not writable); the message says why."""


class DuplicateRunError(RuntimeError):
    """Two records claim the same (suite, task, method, seed); the message names both files."""


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` via a temporary file in the same folder and ``os.replace``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; results are ordinary files
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: str | os.PathLike, data: Any) -> Path:
    """Write ``data`` as indented JSON, atomically; returns the path."""
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")
    return Path(path)


def run_key(params: dict[str, Any]) -> str:
    """First 16 hex digits of the SHA-256 of the canonical JSON of ``params``."""
    canonical = json.dumps(params, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def claimed_suites(record: dict[str, Any]) -> list[str]:
    """The suites a record was run for (``suite``) or reused by (``also_suites``)."""
    return [x for x in [record.get("suite"), *record.get("also_suites", [])] if x]


class ResultStore:
    """Results of runs under ``root/runs/<key>.json``."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        self.runs = self.root / "runs"

    def path(self, key: str) -> Path:
        return self.runs / f"{key}.json"

    def load(self, key: str) -> dict[str, Any] | None:
        """The record of ``key``, None if absent; :class:`CorruptResultError` if unreadable."""
        path = self.path(key)
        if not path.exists():
            return None
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise CorruptResultError(
                f"{path}: results file is corrupt or partial ({exc}); it was left untouched. "
                "Inspect it, then delete it to rerun that run."
            ) from exc
        if not isinstance(record, dict) or "metrics" not in record or "params" not in record:
            raise CorruptResultError(f"{path}: not a run record (needs 'params' and 'metrics'); left untouched")
        return record

    def save(self, key: str, record: dict[str, Any]) -> Path:
        path = self.path(key)
        atomic_write_text(path, json.dumps(record, indent=2, sort_keys=True, default=str) + "\n")
        return path

    def check_writable(self) -> None:
        """Raise :class:`StoreError` unless ``runs/`` can be created and written (checked before training)."""
        try:
            self.runs.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.runs, prefix=".write-test.", suffix=".tmp")
            os.close(fd)
            os.unlink(tmp)
        except OSError as exc:
            raise StoreError(f"{self.runs}: results folder is not writable ({exc.strerror}); "
                             "pass --results_dir with a folder you can write") from None

    def items(self) -> list[tuple[Path, dict[str, Any]]]:
        """(path, record) of every run record, in file order (corrupt ones raise)."""
        if not self.runs.is_dir():
            return []
        return [(p, r) for p in sorted(self.runs.glob("*.json")) if (r := self.load(p.stem)) is not None]

    def all_records(self) -> list[dict[str, Any]]:
        """Every run record (corrupt ones raise)."""
        return [r for _, r in self.items()]

    def select(self, wanted: dict[str, tuple[str, str, int]], suite: str) -> tuple[list[dict[str, Any]], int]:
        """The records of one suite: ``wanted`` maps a run's parameter key to its (task, method, seed).

        A record belongs to the suite when its parameters are one of ``wanted`` and it claims the
        suite (:func:`claimed_suites`); ad-hoc records claim none.

        Returns (records, number of records ignored as not of this suite). Two records with the
        same parameters (e.g. the same run on two versions of the data) raise
        :class:`DuplicateRunError` naming both files: the report would otherwise pick one silently.
        """
        found: dict[str, tuple[Path, dict[str, Any]]] = {}
        ignored = 0
        for path, record in self.items():
            pkey = run_key(record["params"])
            if pkey not in wanted or suite not in claimed_suites(record):
                ignored += 1
                continue
            if pkey in found:
                task, method, seed = wanted[pkey]
                raise DuplicateRunError(
                    f"{found[pkey][0]} and {path} both claim suite {suite}, task {task}, method {method}, "
                    f"seed {seed} (data {found[pkey][1].get('data', {}).get('digest', 'unrecorded')} vs "
                    f"{record.get('data', {}).get('digest', 'unrecorded')}); move the one you do not want out of {self.runs}")
            found[pkey] = (path, record)
        return [r for _, r in found.values()], ignored
