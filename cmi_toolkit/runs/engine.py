"""Batches of runs: one after another in this process (``local``) or fanned out over a Ray cluster (``ray``).

Every batch command hands its runs to this module: ``reproduce``, ``search`` (a rung at a time) and ``lab-cache``
give :func:`run_batch` their :class:`~cmi_toolkit.runs.config.RunConfig` s; ``cot --seeds`` gives :func:`run_jobs`
its :class:`Job` s (runs that are not ``execute`` runs: a function that returns the record to file under a key).

``local`` (the default; Ray need not be installed) calls :func:`~cmi_toolkit.runs.execute.execute` (or the job's
function) for each run, one after another in this process.

``ray`` makes this process the driver and the only writer of the results folder:

* the runs and the runs they need first (a student's teacher, a CMI run's CE twin) form a graph; a run is
  submitted as a Ray task once its dependencies are finished, with ``--cpus_per_run`` / ``--gpus_per_run``
  resources (fractional GPUs let several small runs share one device);
* a task trains in a scratch store of its own, holding copies of its dependencies' records and models sent by
  the driver, and returns its record, the models later runs need, and its log; the driver writes them into the
  store (records atomically under the store's lock, model folders by an atomic rename) and the log into
  ``<results>/logs/<suite>/<key>.log``;
* where a task's node sees the results folder (this machine, or a folder on shared storage: it finds the marker
  file the driver put in ``<results>/models``), model folders do not travel through Ray's object store: the
  scratch store lies in ``<results>/models/.scratch-*``, it links the dependencies' kept models, and the driver
  renames the model folders it returns into place (``--shared_results no`` always sends the bytes);
* checkpoints go to ``--checkpoint_dir`` (default ``<results>/checkpoints``): a run whose node died is submitted
  again (up to ``--max_retries`` times) and resumes from its last complete checkpoint when that folder is shared,
  or starts again cleanly when it is not;
* the driver holds each run's lock (:meth:`~cmi_toolkit.runs.store.ResultStore.run_lock`) while the run is in flight,
  so a second driver (or a ``local`` batch) on the same results folder waits for that run instead of training it
  again; a driver killed mid-batch loses only the runs in flight: run the command again and it skips the rest;
* a run that raises is reported in one line and the others go on; one progress bar counts finished, running,
  failed and retried runs, and a summary follows.
"""

from __future__ import annotations

import os
import shutil
import socket
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from .config import RunConfig, dependencies
from .execute import execute
from .store import ResultStore

ENGINES = ("local", "ray")
#: environment a Ray task takes from its driver (data folders, offline hub, tokenizer threads)
PASSED_ENV = ("CMI_TOOLKIT_GLUE_DIR", "CMI_TOOLKIT_COT_DIR", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE",
              "TOKENIZERS_PARALLELISM", "HF_HOME")


@dataclass
class EngineArgs:
    """How a batch runs (the options of every batch command)."""

    engine: str = field(default="local", metadata={"help": "local (one run after another here) or ray"})
    ray_address: str | None = field(default=None, metadata={
        "help": "Ray cluster to join (default: $RAY_ADDRESS, else a local Ray started for this command)"})
    cpus_per_run: float = field(default=1.0, metadata={"help": "CPU cores a run takes (--engine ray)"})
    gpus_per_run: float = field(default=0.0, metadata={
        "help": "GPUs a run takes, fractional to share one (e.g. 0.25: four runs per GPU; --engine ray)"})
    checkpoint_dir: str | None = field(default=None, metadata={
        "help": "checkpoints while runs train (default <results_dir>/checkpoints); on shared storage a run "
                "retried on another node resumes"})
    max_retries: int = field(default=2, metadata={"help": "times a run whose worker or node died is submitted again"})
    shared_results: str = field(default="auto", metadata={
        "help": "auto: a run on a node that sees the results folder (this machine, or shared storage) moves its "
                "model into it and links the models it needs; no: models always travel through Ray's object store"})

    def __post_init__(self):
        if self.engine not in ENGINES:
            raise ValueError(f"--engine must be one of {', '.join(ENGINES)}, got {self.engine!r}")
        if not self.cpus_per_run > 0:
            raise ValueError(f"--cpus_per_run must be > 0, got {self.cpus_per_run}")
        if not self.gpus_per_run >= 0:
            raise ValueError(f"--gpus_per_run must be >= 0, got {self.gpus_per_run}")
        if self.gpus_per_run > 1 and self.gpus_per_run != int(self.gpus_per_run):
            raise ValueError(f"--gpus_per_run above 1 must be a whole number, got {self.gpus_per_run}")
        if self.max_retries < 0:
            raise ValueError(f"--max_retries must be >= 0, got {self.max_retries}")
        if self.shared_results not in ("auto", "no"):
            raise ValueError(f"--shared_results must be auto or no, got {self.shared_results!r}")


@dataclass
class BatchResult:
    """What a batch did: ``records`` in the order of its runs (None for a run that failed)."""

    records: list[dict[str, Any] | None]
    trained: int = 0
    already: int = 0
    retried: int = 0
    failed: dict[str, str] = field(default_factory=dict)  # key -> one-line error
    wall_s: float = 0.0
    dashboard: str | None = None

    def summary(self) -> str:
        line = (f"{len(self.records)} runs: {self.trained} trained, {self.already} already recorded, "
                f"{len(self.failed)} failed, {self.retried} retried; {self.wall_s:.0f} s")
        return "\n".join([line, *(f"failed: {key}: {why}" for key, why in self.failed.items())])


@dataclass(frozen=True)
class Job:
    """A run that is not an :func:`~cmi_toolkit.runs.execute.execute` run (e.g. a CoT student): ``fn(*args)``
    returns the record to file under ``key``; ``fn`` must be importable by name (a module-level function), so a
    Ray worker can call it. ``name`` is what progress lines and errors call it."""

    key: str
    name: str
    fn: Callable[..., dict[str, Any]]
    args: tuple = ()


def run_jobs(jobs: list[Job], store: ResultStore, options: EngineArgs | None = None, desc: str = "runs",
             progress: bool = True) -> BatchResult:
    """Each job's record, from ``store`` where it is filed, else made by the engine of ``options`` and filed.

    ``local`` makes them one after another under each job's run lock (a second process waits, then reads the
    record); ``ray`` fans them out like :func:`run_batch` (the driver alone writes the store).
    """
    options = options or EngineArgs()
    if options.engine == "ray":
        return _JobDriver(jobs, store, options, progress).run()
    started = time.perf_counter()
    result = BatchResult(records=[])
    store.check_writable()
    from filelock import Timeout

    # a run another process is training is passed over and awaited at the end, so two identical commands share
    # a batch (each run trained once) instead of the second waiting on the first's every run
    made: dict[str, dict[str, Any]] = {}
    later: list[Job] = []
    bar = tqdm(total=len(jobs), desc=desc, unit="run", disable=not progress)
    for job, blocking in [(j, False) for j in jobs] + [(None, True)]:
        todo = later if blocking else [job]
        for j in list(todo):
            bar.set_postfix_str(j.name)
            record = store.load(j.key)
            if record is None:
                lock = store.run_lock(j.key)
                try:
                    lock.acquire(timeout=-1 if blocking else 0)
                except Timeout:
                    later.append(j)
                    continue
                try:
                    record = store.load(j.key)  # another process may have made it while this one waited
                    if record is None:
                        record = j.fn(*j.args)
                        store.save(j.key, record)
                        result.trained += 1
                    else:
                        result.already += 1
                finally:
                    lock.release()
            else:
                result.already += 1
            made[j.key] = record
            bar.update()
    bar.close()
    result.records = [made[j.key] for j in jobs]
    result.wall_s = time.perf_counter() - started
    return result


def run_batch(runs: list[RunConfig], store: ResultStore, glue_dir: str | None = None,
              options: EngineArgs | None = None, suite: str | None = None, keep_model: bool | None = None,
              progress: bool = True) -> BatchResult:
    """Execute the ``runs`` not yet in ``store`` with the engine of ``options`` (default: local)."""
    options = options or EngineArgs()
    if options.engine == "ray":
        return _RunDriver(runs, store, glue_dir, options, suite, keep_model, progress).run()
    started = time.perf_counter()
    result = BatchResult(records=[])
    bar = tqdm(runs, desc="runs", unit="run", disable=not progress)
    for cfg in bar:
        bar.set_postfix_str(f"{cfg.task}/{cfg.method}/seed{cfg.seed}")
        done = store.load(cfg.store_key(glue_dir)) is not None
        result.records.append(execute(cfg, store, glue_dir=glue_dir, progress=False, suite=suite,
                                      keep_model=keep_model, checkpoint_dir=options.checkpoint_dir))
        result.already += done
        result.trained += not done
    result.wall_s = time.perf_counter() - started
    return result


# ---------------------------------------------------------------------------------------------------- worker side


def _model_files(folder: Path) -> dict[str, bytes] | None:
    if not (folder / "config.json").is_file():
        return None
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _write_files(folder: Path, files: dict[str, bytes]) -> None:
    for rel, data in files.items():
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def _shared_models(marker: str | None) -> Path | None:
    """The results folder's ``models`` folder if this node sees it (the driver's ``marker`` file is there)."""
    return Path(marker).parent if marker and Path(marker).is_file() else None


def train_in_scratch(cfg: RunConfig, glue_dir: str | None, checkpoint_dir: str, suite: str | None,
                     keep_model: bool | None, env: dict[str, str], threads: int, model_only: bool,
                     marker: str | None, *payloads: dict[str, Any]) -> dict[str, Any]:
    """Body of one Ray task: ``execute(cfg)`` in a scratch store holding the dependencies' ``payloads``.

    ``model_only``: the run's record is among the payloads but its kept model is not (a fresh clone keeps no
    models): train it again to get the model back, used only if it scores exactly as its record says.

    ``marker``: the driver's marker file in ``<results>/models`` (None: models travel as bytes). Where this node
    sees it, the scratch store lies beside the results folder's models, the dependencies' models are linked
    from there (their bytes are not fetched) and the new model folders are moved next to their final place.

    Returns ``{"key", "records": {key: record}, "models": {key: {file: bytes}}, "moved": {key: folder name},
    "log"}``: the records the scratch store gained (the run's own; a dependency whose model had to be re-created
    adds its model only), the model folders it gained (as bytes, or moved into ``<results>/models/<name>``), and
    everything the run printed.
    """
    import torch

    os.environ.update(env)
    torch.set_num_threads(max(1, threads))
    shared = _shared_models(marker)
    with tempfile.TemporaryDirectory(prefix=".scratch-" if shared else "cmi_toolkit_task_",
                                     dir=shared) as tmp, tempfile.TemporaryFile() as log:
        scratch = ResultStore(tmp)
        given: set[str] = set()
        for payload in payloads:
            for key, record in payload["records"].items():
                scratch.save(key, record)
                given.add(key)
            for key, (folder, ref) in payload["models"].items():
                target = scratch.root / "models" / key
                if shared is not None and (shared / folder / "config.json").is_file():
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.symlink_to(shared / folder, target_is_directory=True)
                else:
                    import ray

                    _write_files(target, ray.get(ref))
        had_models = {p.name for p in (scratch.root / "models").glob("*")} if (scratch.root / "models").is_dir() else set()
        with _captured(log):
            if model_only:
                from .execute import _kept_model

                record = scratch.load(cfg.store_key(glue_dir))
                try:
                    _kept_model(cfg, scratch, glue_dir, False, suite, checkpoint_dir)
                except FileNotFoundError as exc:  # not identical: a student of it will say so; a twin goes unchecked
                    print(f"notice: {exc}", file=sys.stderr)
            else:
                record = execute(cfg, scratch, glue_dir=glue_dir, progress=False, suite=suite,
                                 keep_model=keep_model, checkpoint_dir=checkpoint_dir)
        records = {p.stem: scratch.load(p.stem) for p in scratch.runs.glob("*.json") if p.stem not in given}
        new = [p for p in (scratch.root / "models").glob("*")
               if p.is_dir() and p.name not in had_models and (p / "config.json").is_file()]
        models, moved = {}, {}
        for folder in new:
            if shared is not None:  # next to its final place: the driver renames it there
                name = f".incoming-{folder.name}-{uuid.uuid4().hex[:12]}"
                os.replace(folder, shared / name)
                moved[folder.name] = name
            else:
                models[folder.name] = _model_files(folder)
        log.seek(0)
        text = log.read().decode("utf-8", errors="replace")
    return {"key": record["key"], "records": records, "models": models, "moved": moved, "log": text}


@contextmanager
def _captured(log) -> Iterator[None]:
    """Send this process's stdout and stderr (file descriptors 1 and 2: also C-level output) to ``log``."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    os.dup2(log.fileno(), 1)
    os.dup2(log.fileno(), 2)
    try:
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        os.close(saved[0])
        os.close(saved[1])


def run_job(job: Job, env: dict[str, str], threads: int) -> dict[str, Any]:
    """Body of one Ray task of a :class:`Job`: its function's record, and everything it printed."""
    import torch

    os.environ.update(env)
    torch.set_num_threads(max(1, threads))
    with tempfile.TemporaryFile() as log:
        with _captured(log):
            record = job.fn(*job.args)
        log.seek(0)
        text = log.read().decode("utf-8", errors="replace")
    return {"key": job.key, "records": {job.key: record}, "models": {}, "moved": {}, "log": text}


# ---------------------------------------------------------------------------------------------------- driver side


def _driver_alive(marker: Path) -> bool:
    """Whether the driver that wrote ``marker`` ("host pid") may still run: always, unless it ran on this host
    and its process is gone (a killed driver leaves its marker behind)."""
    try:
        host, pid = marker.read_text().split()
    except (OSError, ValueError):
        return True
    if host != socket.gethostname():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, ValueError):  # another user's process, or a marker that names no pid
        pass
    return True


def _sweep_leftovers(models: Path) -> None:
    """Remove the scratch stores and half-moved model folders of tasks whose worker died, once no driver is left
    on this results folder (each running driver keeps an ``.engine-*`` marker there; a dead one's is removed)."""
    for marker in models.glob(".engine-*"):
        if _driver_alive(marker):
            return
        marker.unlink(missing_ok=True)
    for leftover in [*models.glob(".scratch-*"), *models.glob(".incoming-*")]:
        shutil.rmtree(leftover, ignore_errors=True)


@dataclass
class _Node:
    cfg: RunConfig
    key: str
    deps: list[str]
    index: list[int] = field(default_factory=list)  # positions in the batch's runs (none for a dependency)
    state: str = "todo"  # todo | waiting (another process holds its lock) | running | done | failed
    attempts: int = 0
    model_only: bool = False  # recorded, but its model (which a later run needs) is not kept here
    lock: Any = None
    ref: Any = None


def _one_line(exc: BaseException) -> str:
    cause = getattr(exc, "cause", None) or exc  # a RayTaskError carries the run's own exception
    text = str(cause).strip().splitlines()
    return f"{type(cause).__name__}: {text[0] if text else ''}".rstrip(": ")


class _RayDriver:
    """The loop every Ray batch shares: submit what is ready, write what comes back, retry what was lost.

    Subclasses fill ``nodes`` and say how a node is submitted (:meth:`_submit`) and named (:meth:`_name`).
    """

    def __init__(self, store, options, suite, keep_model, progress, size: int):
        self.store, self.options, self.suite, self.keep_model, self.progress = store, options, suite, keep_model, progress
        self.checkpoint_dir = str(Path(options.checkpoint_dir or store.root / "checkpoints").resolve())
        self.nodes: dict[str, _Node] = {}
        self.result = BatchResult(records=[None] * size)
        self._payloads: dict[str, Any] = {}
        self._functions: dict[Any, Any] = {}
        self.marker: Path | None = None  # in <results>/models while the batch runs (shared_results "auto")
        self._finished = 0  # runs this driver saw through (trained, re-created, or finished by another process)

    def _name(self, node: _Node) -> str:
        return f"{node.cfg.task}/{node.cfg.method}/seed{node.cfg.seed}"

    def _submit(self, node: _Node, env: dict[str, str], threads: int):
        raise NotImplementedError

    def _remote(self, fn, node: _Node):
        import ray

        if fn not in self._functions:  # one remote function per body: Ray exports it to the cluster once
            self._functions[fn] = ray.remote(fn)
        return self._functions[fn].options(num_cpus=self.options.cpus_per_run, num_gpus=self.options.gpus_per_run,
                                      max_retries=0, name=self._name(node))


    # -- store access: the driver is the only writer
    def _recorded(self, node: _Node) -> dict[str, Any] | None:
        from .execute import _finished

        return _finished(self.store, node.key, self.suite if node.index else None)

    def _payload(self, key: str):
        """The object-store copy of a recorded run's record and model, put once for all the runs that need it.

        The model's bytes are an object of their own inside it, fetched only by a task whose node does not see
        the results folder; the others link ``<results>/models/<folder>``."""
        import ray

        if key not in self._payloads:
            record = self.store.load(key)
            folder = self.store.file_key(key)
            files = _model_files(self.store.root / "models" / folder)
            self._payloads[key] = ray.put({
                "records": {record["key"]: record} if record else {},
                "models": {record["key"]: (folder, ray.put(files))} if record and files else {}})
        return self._payloads[key]

    def _write(self, out: dict[str, Any]) -> None:
        models = self.store.root / "models"
        incoming = dict(out.get("moved", {}))  # a task on a node that sees this folder moved them next to it
        for key, files in out["models"].items():
            if not (models / key / "config.json").is_file():
                incoming[key] = f".incoming-{key}-{os.getpid()}"
                _write_files(models / incoming[key], files)
        for key, name in incoming.items():  # into place by one rename; a model already there stays
            if (models / key / "config.json").is_file():
                shutil.rmtree(models / name, ignore_errors=True)
            else:
                os.replace(models / name, models / key)
        for key, record in out["records"].items():
            self.store.save(key, record)
        logs = self.store.root / "logs" / (self.suite or "batch")
        logs.mkdir(parents=True, exist_ok=True)
        (logs / f"{out['key']}.log").write_text(out["log"], encoding="utf-8")

    def _release(self, node: _Node) -> None:
        if node.lock is not None:
            node.lock.release()
            node.lock = None

    # -- the loop
    def run(self) -> BatchResult:
        import ray
        from filelock import Timeout

        started = time.perf_counter()
        self.store.check_writable()
        address = self.options.ray_address or os.environ.get("RAY_ADDRESS")
        started_here = not ray.is_initialized()
        if started_here:
            # a Ray started here runs its workers at normal priority (Ray's default niceness of 15 starves
            # them on a machine that does anything else)
            extra = {} if address else {"_system_config": {"worker_niceness": 0}}
            context = ray.init(address=address or "local", include_dashboard=None, log_to_driver=False,
                               logging_level="ERROR", configure_logging=True, **extra)
            self.result.dashboard = getattr(context, "dashboard_url", None) or None
            if self.result.dashboard:
                print(f"Ray dashboard: http://{self.result.dashboard}", file=sys.stderr, flush=True)
        env = {k: os.environ[k] for k in PASSED_ENV if k in os.environ}
        threads = max(1, int(self.options.cpus_per_run))
        if self.options.shared_results == "auto":  # a task that sees this file sees the results folder
            self.marker = self.store.root / "models" / f".engine-{uuid.uuid4().hex}"
            self.marker.parent.mkdir(parents=True, exist_ok=True)
            self.marker.write_text(f"{socket.gethostname()} {os.getpid()}")
        for node in self.nodes.values():
            if self.store.load(node.key) is not None:
                node.state = "done"
        for node in self.nodes.values():  # a recorded teacher or twin whose model a run still to do needs
            if node.state != "done":
                for d in node.deps:
                    dep = self.nodes[d]
                    folder = self.store.root / "models" / self.store.file_key(d)
                    if dep.state == "done" and not (folder / "config.json").is_file():
                        dep.state, dep.model_only = "todo", True
        todo = [n for n in self.nodes.values() if n.state != "done"]
        self.result.already = sum(1 for n in self.nodes.values() if n.index and n.state == "done")
        bar = tqdm(total=len(todo), desc="runs", unit="run", disable=not self.progress)
        running: dict[Any, _Node] = {}
        try:
            while True:
                for node in self.nodes.values():
                    if node.state not in ("todo", "waiting"):
                        continue
                    if any(self.nodes[d].state == "failed" for d in node.deps):
                        node.state = "failed"
                        self.result.failed[node.key] = "a run it needs first (teacher or CE twin) failed"
                        bar.update(1)
                        continue
                    if not all(self.nodes[d].state == "done" for d in node.deps):
                        continue
                    lock = self.store.run_lock(node.key)
                    try:
                        lock.acquire(timeout=0)
                    except Timeout:  # another driver or process trains it: wait for its record
                        node.state = "waiting"
                        continue
                    if self.store.load(node.key) is not None and not node.model_only:  # finished meanwhile
                        lock.release()
                        node.state = "done"
                        self._finished += 1
                        bar.update(1)
                        continue
                    node.lock = lock
                    node.ref = self._submit(node, env, threads)
                    node.state, node.attempts = "running", node.attempts + 1
                    running[node.ref] = node
                if not running and not any(n.state == "waiting" for n in self.nodes.values()):
                    break
                bar.set_postfix_str(f"finished {self._finished}, running {len(running)}, "
                                    f"failed {len(self.result.failed)}, retried {self.result.retried}")
                if not running:
                    time.sleep(1.0)
                    continue
                ready, _ = ray.wait(list(running), num_returns=1, timeout=1.0)
                for ref in ready:
                    node = running.pop(ref)
                    self._finish(node, ref, ray, bar)
        finally:
            for node in self.nodes.values():
                self._release(node)
            if self.marker is not None:
                self.marker.unlink(missing_ok=True)
                _sweep_leftovers(self.marker.parent)
            bar.close()
            if started_here:
                ray.shutdown()
        for node in self.nodes.values():
            if node.state == "done":
                for i in node.index:
                    self.result.records[i] = self._recorded(node)
        self.result.wall_s = time.perf_counter() - started
        return self.result

    def _finish(self, node: _Node, ref, ray, bar) -> None:
        try:
            out = ray.get(ref)
        except ray.exceptions.RayTaskError as exc:  # the run itself raised: no retry
            node.state = "failed"
            self.result.failed[node.key] = _one_line(exc)
            self._release(node)
            bar.update(1)
            return
        except ray.exceptions.RayError as exc:  # its worker or node died, or its result was lost
            self._release(node)
            if node.attempts <= self.options.max_retries:
                node.state = "todo"
                self.result.retried += 1
                print(f"notice: {self._name(node)} lost its worker "
                      f"({type(exc).__name__}); submitting it again", file=sys.stderr, flush=True)
            else:
                node.state = "failed"
                self.result.failed[node.key] = f"{_one_line(exc)} (after {node.attempts} attempts)"
                bar.update(1)
            return
        self._write(out)
        self._payloads.pop(node.key, None)
        self._release(node)
        node.state = "done"
        self._finished += 1
        self.result.trained += bool(node.index) and not node.model_only
        bar.update(1)


class _RunDriver(_RayDriver):
    """Runs of :func:`~cmi_toolkit.runs.execute.execute`, with their teachers and CE twins as dependencies."""

    def __init__(self, runs, store, glue_dir, options, suite, keep_model, progress):
        from ..data.loading import resolve_source

        super().__init__(store, options, suite, keep_model, progress, len(runs))
        self.glue_dir = str(resolve_source(glue_dir))  # "hub" or an absolute folder every node must see
        for i, cfg in enumerate(runs):
            self._add(cfg).index.append(i)

    def _add(self, cfg: RunConfig) -> _Node:
        key = cfg.store_key(self.glue_dir)
        if key not in self.nodes:
            deps = [self._add(d).key for d in dependencies(cfg)]
            self.nodes[key] = _Node(cfg, key, deps)
        return self.nodes[key]

    def _submit(self, node: _Node, env: dict[str, str], threads: int):
        payloads = [self._payload(d) for d in node.deps + ([node.key] if node.model_only else [])]
        return self._remote(train_in_scratch, node).remote(
            node.cfg, self.glue_dir, self.checkpoint_dir, self.suite, self.keep_model if node.index else True, env,
            threads, node.model_only, str(self.marker) if self.marker else None, *payloads)


class _JobDriver(_RayDriver):
    """Independent :class:`Job` s (no dependencies, no models): each returns the record filed under its key."""

    def __init__(self, jobs, store, options, progress):
        super().__init__(store, options, None, None, progress, len(jobs))
        for i, job in enumerate(jobs):
            self.nodes.setdefault(job.key, _Node(job, job.key, [])).index.append(i)

    def _name(self, node: _Node) -> str:
        return node.cfg.name

    def _recorded(self, node: _Node) -> dict[str, Any] | None:
        return self.store.load(node.key)

    def _submit(self, node: _Node, env: dict[str, str], threads: int):
        return self._remote(run_job, node).remote(node.cfg, env, threads)


__all__ = ["ENGINES", "BatchResult", "EngineArgs", "Job", "run_batch", "run_jobs", "run_job", "train_in_scratch"]
