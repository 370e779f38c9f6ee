"""Batches over Ray: a real two-node cluster on this machine gives the records the local engine gives, loses
nothing when a node dies, reports a failing run without stopping the others, and shares a results folder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from cmi_toolkit.runs.config import RunConfig
from cmi_toolkit.runs.engine import EngineArgs, run_batch
from cmi_toolkit.runs.store import ResultStore

from .test_cot import tiny_seq2seq, write_cot  # noqa: F401 - the fixture is used by name
from .test_training import _easy_sst2

ray = pytest.importorskip("ray")
pytestmark = pytest.mark.ray

#: what must be equal, to the last digit, between two engines (CPU training is deterministic here)
SAME = ("accuracy", "feature_cmi", "output_cmi", "final_train_ce")


def _runs(model, seeds=(0, 1), methods=("ce", "cmi", "kd_ce")):
    common = dict(task="sst2", model=str(model), max_train_samples=None, epochs=1, batch_size=8,
                  learning_rate=3e-3, warmup_ratio=0.0, student_layers="0", cmi_weight=0.05, temperature=0.5)
    out = []
    for seed in seeds:
        for method in methods:
            kw = {k: v for k, v in common.items() if not (method in ("ce", "kd_ce") and k in ("cmi_weight", "temperature"))}
            out.append(RunConfig(**kw, method=method, seed=seed))
    return out


def _records(store: ResultStore) -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in store.runs.glob("*.json")}


def _metrics(record):
    m = record["metrics"]
    return ({k: m.get(k) for k in SAME if k in m} | {"final_train_ce": record["checks"]["final_train_ce"]},
            record["predictions"]["pred"])


@pytest.fixture(scope="module")
def cluster():
    """A head node and two worker nodes, each its own raylet on 127.0.0.1 (Ray's multi-node test utility)."""
    from ray.cluster_utils import Cluster

    c = Cluster(initialize_head=True, head_node_args={
        "num_cpus": 0, "_system_config": {"health_check_period_ms": 500, "health_check_failure_threshold": 4,
                           "worker_niceness": 0}})
    workers = [c.add_node(num_cpus=1) for _ in range(2)]
    c.wait_for_nodes()
    yield c, workers
    if ray.is_initialized():
        ray.shutdown()
    c.shutdown()


@pytest.fixture(scope="module")
def fixture_data(tmp_path_factory, tiny_model_dir):
    root = tmp_path_factory.mktemp("engine")
    return {"glue": str(_easy_sst2(root / "glue", n=24)), "model": tiny_model_dir, "root": root}


@pytest.fixture(scope="module")
def local_records(fixture_data):
    import torch

    store = ResultStore(fixture_data["root"] / "local")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as a Ray task with --cpus_per_run 1: results are equal for equal thread counts
    try:
        result = run_batch(_runs(fixture_data["model"]), store, fixture_data["glue"], progress=False)
    finally:
        torch.set_num_threads(threads)
    assert result.trained == 6 and not result.failed
    return _records(store)


def test_ray_gives_the_local_records_and_writes_each_once(cluster, fixture_data, local_records):
    c, _ = cluster
    store = ResultStore(fixture_data["root"] / "ray")
    options = EngineArgs(engine="ray", ray_address=c.address)
    result = run_batch(_runs(fixture_data["model"]), store, fixture_data["glue"], options, suite="tiny", progress=False)
    assert not result.failed and result.trained == 6 and len(result.records) == 6
    got = _records(store)
    assert set(got) == set(local_records)  # the same keys: teachers and CE twins included
    for key, record in got.items():
        assert _metrics(record) == _metrics(local_records[key]), key
        assert record["suite"] == "tiny"
    # the driver wrote the models later runs need and one log per run; the scratch stores are gone
    kept = {p.name for p in (store.root / "models").iterdir() if not p.name.startswith(".")}
    assert kept == {k for k, r in got.items() if r["params"]["method"] == "ce"}
    assert not [p.name for p in (store.root / "models").iterdir() if p.name.startswith(".")]  # no scratch, marker
    assert len(list((store.root / "logs" / "tiny").glob("*.log"))) == 6
    # a second call trains nothing
    again = run_batch(_runs(fixture_data["model"]), store, fixture_data["glue"], options, progress=False)
    assert again.trained == 0 and again.already == 6


def test_models_travel_as_bytes_where_the_results_folder_is_not_seen(cluster, fixture_data, local_records):
    """``--shared_results no``: teachers' models reach their students, and kept models the driver, through Ray's
    object store; the records are those of the local engine all the same."""
    c, _ = cluster
    store = ResultStore(fixture_data["root"] / "bytes")
    options = EngineArgs(engine="ray", ray_address=c.address, shared_results="no")
    runs = _runs(fixture_data["model"], seeds=(0,), methods=("ce", "kd_ce"))
    result = run_batch(runs, store, fixture_data["glue"], options, progress=False)
    assert not result.failed and result.trained == 2
    for key, record in _records(store).items():
        assert _metrics(record) == _metrics(local_records[key]), key
    (kept,) = [p for p in (store.root / "models").iterdir()]
    assert (kept / "config.json").is_file() and not kept.is_symlink()


def test_a_task_that_sees_the_results_folder_moves_its_model_instead_of_sending_it(fixture_data, tmp_path):
    from cmi_toolkit.runs.engine import train_in_scratch

    (cfg,) = _runs(fixture_data["model"], seeds=(0,), methods=("ce",))
    models = tmp_path / "results" / "models"
    models.mkdir(parents=True)
    marker = models / ".engine-test"
    marker.write_text("host 1")
    args = (cfg, fixture_data["glue"], str(tmp_path / "ck"), None, None, {}, 1, False)
    seen = train_in_scratch(*args, str(marker))
    assert seen["models"] == {} and list(seen["moved"]) == [seen["key"]]
    assert (models / seen["moved"][seen["key"]] / "config.json").is_file()
    assert not list(models.glob(".scratch-*"))  # the scratch store, in the results folder, is gone
    unseen = train_in_scratch(*args, str(tmp_path / "elsewhere" / ".engine-test"))  # another machine's path
    assert unseen["moved"] == {} and "config.json" in unseen["models"][unseen["key"]]


def test_leftovers_of_dead_tasks_go_once_no_driver_is_left(tmp_path):
    import socket

    from cmi_toolkit.runs.engine import _sweep_leftovers

    models = tmp_path / "models"
    (models / ".scratch-abc" / "runs").mkdir(parents=True)
    (models / ".incoming-k-123").mkdir()
    (models / "kept").mkdir()
    live = models / ".engine-live"
    live.write_text(f"{socket.gethostname()} {os.getpid()}")
    _sweep_leftovers(models)
    assert (models / ".scratch-abc").is_dir()  # a driver still runs: its tasks may be using them
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    live.write_text(f"{socket.gethostname()} {dead.stdout.strip()}")  # that driver was killed
    _sweep_leftovers(models)
    assert sorted(p.name for p in models.iterdir()) == ["kept"]


def test_a_dead_node_loses_no_run_and_duplicates_none(cluster, fixture_data, local_records):
    c, workers = cluster
    store = ResultStore(fixture_data["root"] / "kill")
    options = EngineArgs(engine="ray", ray_address=c.address, max_retries=3)
    runs = _runs(fixture_data["model"], seeds=(0, 1, 2))
    killed = threading.Event()

    def kill_when_training():  # a worker node dies while runs are in flight on it
        deadline = time.time() + 120
        while time.time() < deadline and not killed.is_set():
            if (store.root / "checkpoints").is_dir() and any((store.root / "checkpoints").iterdir()):
                c.remove_node(workers[1])
                killed.set()
            time.sleep(0.05)

    thread = threading.Thread(target=kill_when_training)
    thread.start()
    result = run_batch(runs, store, fixture_data["glue"], options, progress=False)
    thread.join()
    assert killed.is_set() and result.retried >= 1  # the runs on the dead node were submitted again
    assert not result.failed and len(result.records) == 9 and all(r is not None for r in result.records)
    got = _records(store)
    assert len(got) == 9 and len({r["key"] for r in got.values()}) == 9  # every run exactly once
    for key, record in got.items():
        if key in local_records:
            assert _metrics(record) == _metrics(local_records[key]), key
    workers[1] = c.add_node(num_cpus=1)  # for the tests after this one
    c.wait_for_nodes()


def test_a_run_that_raises_is_named_and_the_others_finish(cluster, fixture_data, tmp_path):
    c, _ = cluster
    store = ResultStore(tmp_path / "r")
    broken = RunConfig(task="sst2", model=str(tmp_path / "no-such-model"), method="ce", max_train_samples=None,
                       epochs=1, batch_size=8)
    runs = [broken, *_runs(fixture_data["model"], seeds=(0,), methods=("ce",))]
    result = run_batch(runs, store, fixture_data["glue"], EngineArgs(engine="ray", ray_address=c.address),
                       progress=False)
    assert len(result.failed) == 1 and result.records[0] is None and result.records[1] is not None
    (why,) = result.failed.values()
    assert "no-such-model" in why and "\n" not in why
    assert "1 failed" in result.summary()


def test_two_drivers_on_one_results_folder_train_each_run_once(cluster, fixture_data, local_records, tmp_path):
    c, _ = cluster
    results = tmp_path / "shared"
    script = (
        "import json, sys\n"
        "from cmi_toolkit.runs.engine import EngineArgs, run_batch\n"
        "from cmi_toolkit.runs.store import ResultStore\n"
        "from tests.test_engine import _runs\n"
        f"r = run_batch(_runs({str(fixture_data['model'])!r}), ResultStore({str(results)!r}), {fixture_data['glue']!r},"
        f" EngineArgs(engine='ray', ray_address={c.address!r}), progress=False)\n"
        "print(json.dumps({'trained': r.trained, 'failed': r.failed}))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    procs = [subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, env=env) for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1][-2000:] for o in outs]
    summaries = [json.loads(o[0].strip().splitlines()[-1]) for o in outs]
    assert not any(s["failed"] for s in summaries)
    assert sum(s["trained"] for s in summaries) == 6  # each run trained by one driver only
    got = _records(ResultStore(results))
    assert set(got) == set(local_records)
    for key, record in got.items():
        assert _metrics(record) == _metrics(local_records[key]), key


@pytest.fixture
def one_thread():
    """This process trains with one thread, as a Ray task with ``--cpus_per_run 1`` does (equal results)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _search(model, glue, store, engine):
    from cmi_toolkit.runs.search import successive_halving

    base = RunConfig(task="sst2", model=str(model), max_train_samples=None, batch_size=8, learning_rate=3e-3,
                     warmup_ratio=0.0)
    cands = [{"space": "output", "temperature": 1.0, "cmi_weight": w, "centroid_mode": "fixed"} for w in (0.03, 1.0)]
    return successive_halving(base, store, cands, rungs=((1, (0,)), (1, (0, 1))), eta=2, glue_dir=glue,
                              progress=False, engine=engine)


def test_a_search_on_ray_chooses_as_the_serial_search_with_the_same_records(cluster, fixture_data, one_thread,
                                                                             tmp_path):
    c, _ = cluster
    serial = _search(fixture_data["model"], fixture_data["glue"], ResultStore(tmp_path / "serial"), None)
    fanned = _search(fixture_data["model"], fixture_data["glue"], ResultStore(tmp_path / "ray"),
                     EngineArgs(engine="ray", ray_address=c.address))
    assert fanned["table"] == serial["table"] and fanned["winner"] == serial["winner"]
    a, b = _records(ResultStore(tmp_path / "serial")), _records(ResultStore(tmp_path / "ray"))
    # rung 1: both candidates and the CE twin at seed 0; rung 2: the survivor and its twin at seed 1
    assert set(a) == set(b) and len(a) == 5
    for key in a:
        assert _metrics(a[key]) == _metrics(b[key]), key
    assert len(list((tmp_path / "ray" / "logs" / "batch").glob("*.log"))) == 5  # each written by the Ray driver


def test_the_lab_sweep_fans_out_on_ray(cluster, fixture_data, one_thread, tmp_path):
    from cmi_toolkit.course.lab import sweep

    c, _ = cluster
    kw = dict(lambdas=(0.0, 0.05), seeds=(0,), glue_dir=fixture_data["glue"], progress=False,
              model=str(fixture_data["model"]), max_train_samples=None, max_eval_samples=None, epochs=1, batch_size=8,
              learning_rate=3e-3, warmup_ratio=0.0, temperature=0.5)
    rows, _ = sweep(results_dir=tmp_path / "ray", engine=EngineArgs(engine="ray", ray_address=c.address), **kw)
    logs = list((tmp_path / "ray" / "logs" / "batch").glob("*.log"))
    assert len(logs) == 2  # both runs went through the Ray driver (which alone writes logs)
    local, _ = sweep(results_dir=tmp_path / "local", **kw)
    same = ("lambda", "accuracy", "cmi", "separation", "key", "mechanism_passed")
    assert [{k: r[k] for k in same} for r in rows] == [{k: r[k] for k in same} for r in local]
    kept = {p.name for p in (tmp_path / "ray" / "models").iterdir() if not p.name.startswith(".")}
    assert kept == {r["key"] for r in rows}  # the lab keeps every model (notebook 03 reads them)


def _square(x: int) -> dict:
    if x < 0:
        raise ValueError(f"no square of {x} today")
    # shaped as a CoT record, the kind of run that goes through jobs
    return {"params": {"seed": x, "dataset": "squares", "mode": "square"}, "metrics": {"square": x * x},
            "pid": os.getpid()}


def test_jobs_on_ray_file_each_record_once_and_name_a_failing_one(cluster, tmp_path):
    from ray import cloudpickle

    from cmi_toolkit.runs.engine import Job, run_jobs

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # a test module is not importable on a worker
    c, _ = cluster
    store = ResultStore(tmp_path / "jobs")
    jobs = [Job(f"k{x}", f"square/{x}", _square, (x,)) for x in (1, 2, -3, 4)]
    result = run_jobs(jobs, store, EngineArgs(engine="ray", ray_address=c.address), progress=False)
    assert [r and r["metrics"]["square"] for r in result.records] == [1, 4, None, 16]
    assert list(result.failed) == ["k-3"] and "no square of -3 today" in result.failed["k-3"]
    assert {p.stem for p in store.runs.glob("*.json")} == {"k1", "k2", "k4"}
    assert {r["pid"] for r in result.records if r} != {os.getpid()}  # made on the workers, written by the driver
    again = run_jobs(jobs[:2], store, EngineArgs(engine="ray", ray_address=c.address), progress=False)
    assert again.trained == 0 and again.already == 2
    local = run_jobs(jobs[:2] + [Job("k5", "square/5", _square, (5,))], store, progress=False)
    assert local.trained == 1 and local.already == 2 and store.load("k5")["metrics"]["square"] == 25


def test_cot_seeds_fan_out_on_ray_with_the_local_records(cluster, one_thread, tiny_seq2seq, tmp_path):  # noqa: F811
    from cmi_toolkit.cot import run_cot_suite

    c, _ = cluster
    model = tiny_seq2seq
    write_cot(tmp_path / "cot", n_train=16, n_test=4, files=2)
    kw = dict(seeds=(0, 1), modes=("dss_mi",), source=tmp_path / "cot", progress=False, check_counts=False,
              overrides=dict(model=str(model), max_train_samples=None, max_eval_samples=None, epochs=1,
                             batch_size=8, learning_rate=3e-3, max_rationale_length=24, max_label_length=6))
    fanned = run_cot_suite("cqa", "cpu_seq2seq", results_dir=tmp_path / "ray",
                           engine=EngineArgs(engine="ray", ray_address=c.address), **kw)
    assert len(list((tmp_path / "ray" / "logs" / "batch").glob("*.log"))) == 2
    local = run_cot_suite("cqa", "cpu_seq2seq", results_dir=tmp_path / "local", **kw)
    assert [r["key"] for r in fanned] == [r["key"] for r in local]
    for a, b in zip(fanned, local, strict=True):
        assert a["metrics"] == b["metrics"] and a["loss_end"] == b["loss_end"] and a["predictions"] == b["predictions"]


def test_engine_options_are_checked():
    with pytest.raises(ValueError, match="--engine must be one of local, ray"):
        EngineArgs(engine="dask")
    with pytest.raises(ValueError, match="--gpus_per_run must be >= 0"):
        EngineArgs(gpus_per_run=-0.5)
    with pytest.raises(ValueError, match="--cpus_per_run must be > 0"):
        EngineArgs(cpus_per_run=0)


def test_reproduce_takes_the_engine_options_and_refuses_a_wrong_one_in_one_line(capsys):
    from cmi_toolkit.cli import main

    from .test_cli_errors import _one_line_error

    line = _one_line_error(capsys, ["reproduce", "--suite", "cpu5", "--engine", "dask"])
    assert "--engine must be one of local, ray" in line
    assert "--gpus_per_run" in _one_line_error(capsys, ["reproduce", "--suite", "cpu5", "--gpus_per_run", "1.5"])
    with pytest.raises(SystemExit):
        main(["reproduce", "--help"])
    assert "--ray_address" in capsys.readouterr().out


def test_a_run_another_process_trains_is_passed_over_then_read(tmp_path):
    """Two identical commands share a batch: a run whose lock another process holds is left for the end, the
    others are trained meanwhile, and the held run is read from the store, never trained twice."""
    import subprocess
    import sys
    import textwrap

    from cmi_toolkit.runs.engine import Job, run_jobs
    from cmi_toolkit.runs.store import ResultStore

    store = ResultStore(tmp_path / "r")
    store.check_writable()
    lock_path = store.root / "locks" / "aaaa.lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    other = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import time
        from filelock import FileLock
        from cmi_toolkit.runs.store import ResultStore
        with FileLock({str(lock_path)!r}):
            print("held", flush=True)
            time.sleep(3)
            ResultStore({str(tmp_path / 'r')!r}).save("aaaa", {{"params": {{"task": "sst2", "method": "ce", "seed": 0}},
                "metrics": {{"accuracy": 0.5, "feature_cmi": 0.1, "output_cmi": 0.1}}, "by": "other"}})
    """)], stdout=subprocess.PIPE, text=True)
    assert other.stdout.readline().strip() == "held"
    order = []

    def train(name):
        order.append((name, store.load("aaaa") is None))  # trained while the other process still held "a"?
        return {"params": {"task": "sst2", "method": "ce", "seed": 1}, "metrics": {"accuracy": 0.6, "feature_cmi": 0.1,
                                                                                  "output_cmi": 0.1}, "by": "me"}

    batch = run_jobs([Job("aaaa", "a", train, ("a",)), Job("bbbb", "b", train, ("b",))], store, progress=False)
    other.wait(timeout=60)
    assert order == [("b", True)]  # b trained meanwhile, a never trained here
    assert [r["by"] for r in batch.records] == ["other", "me"] and batch.trained == 1 and batch.already == 1
