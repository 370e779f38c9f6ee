"""Run results on disk: atomic writes, keys that hash parameters and data, corruption reported.

One run = (task, method, model, seed, parameters) on some data. Its record (metrics, parameters,
data fingerprint, provenance, checks, timings) lives in ``<results_dir>/runs/<key>.json`` where
``key`` hashes the canonical JSON of its parameters *and* the fingerprint of the data it read
(:func:`cmi_toolkit.data.loading.glue_fingerprint`), so a batch rerun finds and skips finished runs, a
run on other data never answers for this one, and a crash loses at most the run in flight.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from filelock import FileLock

from ..files import atomic_write_text

__all__ = ["load_cached", "cached_file", "claimed_suites", "CorruptResultError", "StoreError", "DuplicateRunError", "run_key", "legacy_run_key", "canonical", "record_store_key", "check_results_dir", "ResultStore"]


class CorruptResultError(RuntimeError):
    """A results file exists but cannot be read; it is left in place for inspection."""


class StoreError(RuntimeError):
    """The result store cannot be used (e.g. its folder is not writable); the message says why."""


class DuplicateRunError(RuntimeError):
    """Two records claim the same (suite, task, method, seed); the message names both files."""


def canonical(value: Any) -> Any:
    """``value`` with every number spelled by its value: an integral float becomes an int (``3.0`` -> ``3``,
    ``-0.0`` -> ``0``), recursively through dicts, lists and tuples; booleans stay booleans."""
    if isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: canonical(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [canonical(v) for v in value]
    return value


def run_key(params: dict[str, Any]) -> str:
    """First 16 hex digits of the SHA-256 of the canonical JSON of ``params`` (:func:`canonical`: ``epochs``
    3 and 3.0 give one key, whichever entry point spelled it)."""
    return legacy_run_key(canonical(params))


def legacy_run_key(params: dict[str, Any]) -> str:
    """The key as the kit computed it before numbers were canonicalised (a record's file may still carry it)."""
    text = json.dumps(params, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def record_store_key(record: dict[str, Any]) -> str | None:
    """The canonical store key of a GLUE run record: its parameters and data digest (parameters alone for
    records made before data was fingerprinted); None when the record carries no parameters."""
    params = record.get("params")
    if not isinstance(params, dict):
        return None
    digest = (record.get("data") or {}).get("digest") if isinstance(record.get("data"), dict) else None
    return run_key({**params, "data": digest}) if digest else run_key(params)


def check_results_dir(path: str | os.PathLike, option: str = "--results_dir") -> Path:
    """``path`` as a results folder, refusing an empty string and the filesystem root with one line."""
    text = str(path)
    if not text.strip():
        raise ValueError(f"{option} is empty; pass a folder for the results, e.g. {option} results")
    resolved = Path(text).expanduser().resolve()
    if resolved == Path(resolved.anchor):
        raise ValueError(f"{option} {text!r} is the filesystem root; pass a folder of its own, e.g. {option} results")
    return Path(text).expanduser()


def _claims_other_suite(path: Path, suite: str) -> bool:
    """Whether the file at ``path`` is readable enough to say it claims suites, none of them ``suite``."""
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if not isinstance(record, dict):
        return False
    claims = [record.get("suite"), *(record.get("also_suites") or [])] if isinstance(
        record.get("also_suites", []), list) else None
    return claims is not None and all(c is None or isinstance(c, str) for c in claims) and suite not in claims


def claimed_suites(record: dict[str, Any]) -> list[str]:
    """The suites a record was run for (``suite``) or reused by (``also_suites``)."""
    return [x for x in [record.get("suite"), *record.get("also_suites", [])] if x]


def load_cached(key: str, store: ResultStore, cache_dir: str | os.PathLike | None) -> dict[str, Any] | None:
    """The record of run ``key`` from the read-only store ``cache_dir`` (a committed cache, e.g. the repository's
    ``results/``, never written), else from ``store`` (where runs missing from the cache are trained); None if in
    neither."""
    if cache_dir is not None and Path(cache_dir).is_dir():
        found = ResultStore(cache_dir).load(key)
        if found is not None:
            return found
    return store.load(key)


def cached_file(name: str | os.PathLike, *roots: str | os.PathLike | None) -> Path | None:
    """The first existing ``<root>/<name>`` of ``roots`` (None roots skipped): a read-only cache first, then the
    store a cache miss is written to; None when no root has it."""
    for root in roots:
        if root is not None and (Path(root) / name).is_file():
            return Path(root) / name
    return None


class ResultStore:
    """Results of runs under ``root/runs/<key>.json``, safe to share between processes.

    Every write of a record (a new run, a suite's claim on a finished one) happens under the store's lock
    (``runs/.lock``, a :class:`filelock.FileLock`: it works between processes on one machine and on a shared
    filesystem with POSIX locks), and :meth:`run_lock` keeps two processes from training the same run at once.
    A record whose file still carries a key computed before numbers were canonicalised is found under its
    canonical key too (:meth:`load`), so an old record is recognised, never duplicated. Every record read is
    checked against its schema (:mod:`cmi_toolkit.runs.schemas`).
    """

    def __init__(self, root: str | os.PathLike, schema=None):
        self.root = check_results_dir(root)
        self.runs = self.root / "runs"
        self.schema = schema  # a pydantic model of a record; None: chosen by the record's parameters
        self._aliases: tuple[int, dict[str, str]] | None = None

    def path(self, key: str) -> Path:
        return self.runs / f"{key}.json"

    def lock(self) -> FileLock:
        """The store's write lock (one object per path in a process, so it is re-entrant there)."""
        self.runs.mkdir(parents=True, exist_ok=True)
        return FileLock(str(self.runs / ".lock"), is_singleton=True)

    def run_lock(self, key: str) -> FileLock:
        """The lock one process holds while it trains run ``key`` (another waits, then finds the record)."""
        folder = self.root / "locks"
        folder.mkdir(parents=True, exist_ok=True)
        return FileLock(str(folder / f"{key}.lock"), is_singleton=True)

    def _read(self, path: Path) -> dict[str, Any]:
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise CorruptResultError(
                f"{path}: results file is corrupt or partial ({exc}); it was left untouched. "
                "Inspect it, then delete it to rerun that run."
            ) from None
        if not isinstance(record, dict) or "metrics" not in record or "params" not in record:
            raise CorruptResultError(f"{path}: not a run record (needs 'params' and 'metrics'); left untouched")
        from .schemas import validate_record

        try:
            validate_record(record, self.schema)
        except ValueError as exc:
            raise CorruptResultError(f"{path}: {exc}; it was left untouched: fix the value or delete the file "
                                     "to rerun that run") from None
        return record

    def load(self, key: str) -> dict[str, Any] | None:
        """The record of ``key``, None if absent; :class:`CorruptResultError` if unreadable or malformed.

        A record filed under its pre-canonical key is found too (its ``key`` field says which file holds it).
        """
        path = self.path(key)
        if not path.exists():
            legacy = self.aliases().get(key)
            if legacy is None:
                return None
            path = self.path(legacy)
        return self._read(path)

    def file_key(self, key: str) -> str:
        """The key naming the files of run ``key`` in this store (its record, ``models/``, ``views/``): ``key``
        itself, or the pre-canonical key its record was filed under."""
        return key if self.path(key).exists() else self.aliases().get(key, key)

    def aliases(self) -> dict[str, str]:
        """Canonical key -> file key of the records whose file name is not their canonical key (cached while
        the folder is unchanged)."""
        try:
            stamp = self.runs.stat().st_mtime_ns
        except OSError:
            return {}
        if self._aliases is None or self._aliases[0] != stamp:
            found: dict[str, str] = {}
            for path in self.runs.glob("*.json"):
                try:
                    record = json.loads(path.read_text(encoding="utf-8"))
                except (OSError, ValueError):
                    continue
                canon = record_store_key(record) if isinstance(record, dict) else None
                if canon and canon != path.stem and isinstance(record.get("data"), dict):
                    found[canon] = path.stem
            self._aliases = (stamp, found)
        return self._aliases[1]

    def save(self, key: str, record: dict[str, Any]) -> Path:
        """Write ``record`` as ``runs/<key>.json`` atomically, under the store's lock."""
        path = self.path(key)
        try:
            with self.lock():
                atomic_write_text(path, json.dumps(record, indent=2, sort_keys=True, default=str) + "\n")
        except OSError as exc:
            raise StoreError(f"{path}: cannot write the record ({exc.strerror or exc}); free space or pass "
                             "--results_dir with a folder you can write") from None
        return path

    def claim(self, key: str, suite: str) -> dict[str, Any]:
        """Add ``suite`` to the suites record ``key`` counts for: read, change and write under the lock, so
        concurrent claims by other processes are all kept. Returns the record."""
        with self.lock():
            record = self.load(key)
            if record is None:
                raise FileNotFoundError(f"{self.path(key)}: no record to claim for suite {suite}")
            if suite not in claimed_suites(record):
                record["also_suites"] = [*record.get("also_suites", []), suite]
                self.save(record.get("key") or key, record)
            return record

    def check_writable(self, reserve_bytes: int = 1 << 20) -> None:
        """Raise :class:`StoreError` unless ``runs/`` can be created and ``reserve_bytes`` written into it
        (checked before training: an empty test file would pass on a full disk)."""
        try:
            self.runs.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.runs, prefix=".write-test.", suffix=".tmp")
            try:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(b"\0" * reserve_bytes)
                    fh.flush()
                    os.fsync(fh.fileno())
            finally:
                os.unlink(tmp)
        except OSError as exc:
            raise StoreError(f"{self.runs}: results folder is not writable ({exc.strerror}); "
                             "free space or pass --results_dir with a folder you can write") from None

    def items(self) -> list[tuple[Path, dict[str, Any]]]:
        """(path, record) of every run record, in file order (corrupt ones raise)."""
        if not self.runs.is_dir():
            return []
        return [(p, self._read(p)) for p in sorted(self.runs.glob("*.json"))]

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
        for path in sorted(self.runs.glob("*.json")) if self.runs.is_dir() else []:
            if _claims_other_suite(path, suite):  # damage in another suite's record does not block this one
                ignored += 1
                continue
            record = self._read(path)
            pkey = run_key(record["params"])
            if pkey != path.stem and path.stem in wanted and suite in claimed_suites(record):
                raise CorruptResultError(f"{path}: its parameters give key {pkey}, not its file's {path.stem}: the "
                                         "record was edited; restore it, or delete it to rerun that run")
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
