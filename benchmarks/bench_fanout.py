"""Runs per hour of a batch on this machine: ``--engine local`` against ``--engine ray`` on one and on two nodes.

Every layout trains the same ``--runs`` CE runs of the offline MiniLM on SST-2 (``--train_samples`` examples,
1 epoch, 200 dev examples; seeds 0, 1, ...) into a fresh results folder, each layout in a fresh process, and
times the whole batch (Ray's start included: a user pays it too). The engine start of a Ray layout is Ray's
start plus its workers' first import of torch, transformers and the kit (the local layouts import them before
their clock starts): paid once per batch, it is reported apart from the cost per run. Layouts:

* ``local, 1 thread`` and ``ray, 1 node x 1 CPU``: the same work one run at a time with one thread, so their
  difference, once Ray is up, is the Ray engine's overhead per run (scratch store, records and models sent back);
* ``local, 2 threads`` and ``ray, 1 node x 2 CPUs, 2 threads per run`` (``--cpus_per_run 2``): one run at a
  time with both cores, the way to use Ray on a 2-core machine;
* ``ray, 1 node x 2 CPUs`` (two 1-thread runs at once) and ``ray, 2 nodes x 1 CPU`` (Ray's multi-node test
  utility: a head and two worker raylets on 127.0.0.1): what fanning out runs gives on the machine's 2 cores,
  against the local engine at 2 threads. On 2 cores expect parity.

Every layout's accuracies must equal those of the local layout with its thread count (checked and printed).
Run it on an otherwise idle machine: ratios from one run of this script. ``--rounds R`` runs every layout R times,
interleaved, and reports medians and the Ray engine's overhead in every round, so the spread between rounds shows
how much of a difference is the machine's run-to-run variation.

    CMI_TOOLKIT_GLUE_DIR=../shared/data/glue python benchmarks/bench_fanout.py
    CMI_TOOLKIT_GLUE_DIR=../shared/data/glue python benchmarks/bench_fanout.py --rounds 3 \
        --layouts "local, 1 thread;ray, 1 node x 1 CPU"
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

LAYOUTS = {
    "local, 1 thread": {"engine": "local", "threads": 1},
    "ray, 1 node x 1 CPU": {"engine": "ray", "nodes": 1, "cpus": 1},
    "local, 2 threads": {"engine": "local", "threads": 2},
    "ray, 1 node x 2 CPUs, 2 threads per run": {"engine": "ray", "nodes": 1, "cpus": 2, "cpus_per_run": 2},
    "ray, 1 node x 2 CPUs": {"engine": "ray", "nodes": 1, "cpus": 2},
    "ray, 2 nodes x 1 CPU": {"engine": "ray", "nodes": 2, "cpus": 1},
}


def runs(n: int, train_samples: int):
    from cmi_toolkit.runs.config import RunConfig

    return [RunConfig(task="sst2", method="ce", seed=s, max_train_samples=train_samples, max_eval_samples=200,
                      epochs=1) for s in range(n)]


def _import_the_kit() -> int:
    import transformers.models.bert.modeling_bert  # noqa: F401 - what a run imports first

    import cmi_toolkit.runs.execute  # noqa: F401

    return os.getpid()


def _warm_workers(n: int) -> None:
    """Start ``n`` Ray workers and let each import torch, transformers and the kit (about 3 s each): a cost paid
    once per batch, like Ray's start, not once per run."""
    import ray

    task = ray.remote(num_cpus=1)(_import_the_kit)
    pids: set[int] = set()
    for _ in range(10):  # until n distinct workers have imported (Ray may hand two tasks to one worker)
        pids |= set(ray.get([task.remote() for _ in range(n)]))
        if len(pids) >= n:
            return


def layout(name: str, n: int, train_samples: int, results: str) -> dict:
    """One layout's batch, in this (fresh) process: wall time and the records' accuracies."""
    import torch

    from cmi_toolkit.runs.engine import EngineArgs, run_batch
    from cmi_toolkit.runs.store import ResultStore

    spec = LAYOUTS[name]
    glue = os.environ["CMI_TOOLKIT_GLUE_DIR"]
    cluster = None
    started = time.perf_counter()
    if spec["engine"] == "local":
        torch.set_num_threads(spec["threads"])
        options = EngineArgs()
    else:
        import ray

        if spec["nodes"] == 1:
            ray.init(address="local", num_cpus=spec["cpus"], include_dashboard=False, logging_level="ERROR",
                     _system_config={"worker_niceness": 0})
        else:
            from ray.cluster_utils import Cluster

            cluster = Cluster(initialize_head=True, head_node_args={
                "num_cpus": 0, "_system_config": {"worker_niceness": 0}})
            for _ in range(spec["nodes"]):
                cluster.add_node(num_cpus=spec["cpus"])
            cluster.wait_for_nodes()
            ray.init(address=cluster.address, logging_level="ERROR")
        options = EngineArgs(engine="ray", cpus_per_run=spec.get("cpus_per_run", 1))
        _warm_workers(spec["nodes"] * spec["cpus"])
    start_s = time.perf_counter() - started  # Ray's start and its workers' imports, paid once per batch
    batch = run_batch(runs(n, train_samples), ResultStore(results), glue, options, progress=False)
    wall = time.perf_counter() - started
    if cluster is not None:
        import ray

        ray.shutdown()
        cluster.shutdown()
    if batch.failed:
        raise SystemExit(f"{name}: {batch.failed}")
    return {"wall_s": wall, "start_s": start_s, "train_s": sum(r["timings"].get("train_s", 0) for r in batch.records),
            "accuracy": [r["metrics"]["accuracy"] for r in batch.records],
            "threads": sorted({r["provenance"]["threads"] for r in batch.records})}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=4)
    parser.add_argument("--train_samples", type=int, default=480)
    parser.add_argument("--layouts", default=";".join(LAYOUTS), help="';'-separated layout names")
    parser.add_argument("--rounds", type=int, default=1,
                        help="times every layout runs, interleaved (round 1 of every layout, then round 2, ...); "
                             "the table shows each layout's median and the overhead each round's paired difference")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--results", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(layout(args.worker, args.runs, args.train_samples, args.results)))
        return
    if not os.environ.get("CMI_TOOLKIT_GLUE_DIR"):
        raise SystemExit("set CMI_TOOLKIT_GLUE_DIR to a GLUE folder (e.g. ../shared/data/glue)")
    names = [n.strip() for n in args.layouts.split(";") if n.strip()]
    unknown = [n for n in names if n not in LAYOUTS]
    if unknown:
        raise SystemExit(f"--layouts: unknown {unknown}; choose from {list(LAYOUTS)}")
    rounds: dict[str, list[dict]] = {name: [] for name in names}
    with tempfile.TemporaryDirectory(prefix="bench_fanout_") as tmp:
        for k in range(args.rounds):
            for name in names:
                done = subprocess.run([sys.executable, __file__, "--worker", name, "--runs", str(args.runs),
                                       "--train_samples", str(args.train_samples), "--results",
                                       str(Path(tmp) / f"{k}_{name.replace(' ', '_').replace(',', '')}")],
                                      capture_output=True, text=True)
                if done.returncode:
                    raise SystemExit(f"{name} failed:\n{done.stderr[-3000:]}")
                rounds[name].append(json.loads(done.stdout.strip().splitlines()[-1]))
                print(f"round {k + 1}, {name}: {rounds[name][-1]['wall_s']:.0f} s", file=sys.stderr, flush=True)
    out = {name: _median(rs, "wall_s") for name, rs in rounds.items()}
    from cmi_toolkit.runs.provenance import cpu_model

    print(f"\n{args.runs} CE runs of MiniLM-L6 on SST-2 ({args.train_samples} examples, 1 epoch, 200 dev examples); "
          f"{cpu_model()}, {os.cpu_count()} cores; each layout timed whole (Ray's start included); "
          f"{args.rounds} interleaved round(s), medians.\n")
    print("| layout | wall (s) | of which engine start (s) | runs per hour | speed vs local, 2 threads | "
          "sum of the runs' training time (s) | threads per run | accuracies equal to local at its thread count |")
    print("|---|---|---|---|---|---|---|---|")
    base = out.get("local, 2 threads")
    local = [r for name, r in out.items() if LAYOUTS[name]["engine"] == "local"]
    for name, r in out.items():
        vs = f"{base['wall_s'] / r['wall_s']:.2f}x" if base else "–"
        twin = next((o for o in local if o["threads"] == r["threads"]), None)  # the local layout with its threads
        same = "–" if twin is None else ("yes" if r["accuracy"] == twin["accuracy"] else "NO")
        print(f"| {name} | {r['wall_s']:.0f} | {r['start_s']:.0f} | {3600 * args.runs / r['wall_s']:.0f} | {vs} | "
              f"{r['train_s']:.0f} | "
              f"{','.join(map(str, r['threads']))} | {same} |")
    if rounds.get("local, 1 thread") and rounds.get("ray, 1 node x 1 CPU"):
        print(overhead(rounds["local, 1 thread"], rounds["ray, 1 node x 1 CPU"], args.runs))
    results = fanout_results(out, rounds, args.runs)
    if "ray_per_run_overhead_pct" in results:
        from _common import save_record

        save_record("fanout", f"batch engines: {args.runs} CE runs of MiniLM-L6 on {args.train_samples} SST-2 examples, "
                    f"1 epoch, each layout timed whole (Ray's start included), medians of {args.rounds} interleaved "
                    "round(s); the per-run overhead of Ray once up, one run at a time with one thread",
                    results, ("ray_per_run_overhead_pct", "<=", 5.0))


def fanout_results(out: dict[str, dict], rounds: dict[str, list[dict]], runs: int) -> dict[str, float]:
    """The record's numbers: each layout's runs per hour and speed against the local engine at 2 threads, and Ray's
    cost per run once up (seconds and percent of a run) with its start, when both 1-thread layouts ran."""
    from _common import record_key

    results: dict[str, float] = {}
    base = out.get("local, 2 threads")
    for name, r in out.items():
        results[f"{record_key(name)}_runs_per_hour"] = 3600 * runs / r["wall_s"]
        if base:
            results[f"{record_key(name)}_vs_local_2_threads"] = base["wall_s"] / r["wall_s"]
    local, ray = rounds.get("local, 1 thread"), rounds.get("ray, 1 node x 1 CPU")
    if local and ray:
        m = _median(_overhead_rounds(local, ray, runs), "per_run")
        results.update(ray_per_run_overhead_s=m["per_run"], ray_per_run_overhead_pct=100 * m["per_run"] / m["run_s"],
                       ray_start_s=m["start"])
    return results


def _median(results: list[dict], key: str) -> dict:
    """The round whose ``key`` is the median of the rounds (the lower one of an even count)."""
    return sorted(results, key=lambda r: r[key])[(len(results) - 1) // 2]


def _overhead_rounds(local: list[dict], ray: list[dict], runs: int) -> list[dict]:
    """Per round: Ray's cost per run once up, (Ray's wall - its engine start - local's wall) / runs, the part of it
    in the runs' own training time, a local run's length and Ray's start."""
    return [{"per_run": (r["wall_s"] - r["start_s"] - lo["wall_s"]) / runs,
             "train": (r["train_s"] - lo["train_s"]) / runs, "run_s": lo["wall_s"] / runs,
             "start": r["start_s"]} for lo, r in zip(local, ray, strict=True)]


def overhead(local: list[dict], ray: list[dict], runs: int) -> str:
    """The Ray engine's cost per run once Ray is up, one run at a time with one thread, from each round's pair:
    (Ray's wall - its engine start - local's wall) / runs, split into slower training (the runs' summed training
    time) and the engine's own work (the rest)."""
    rounds = _overhead_rounds(local, ray, runs)
    m = _median(rounds, "per_run")
    each = ", ".join(f"{d['per_run']:+.1f}" for d in sorted(rounds, key=lambda d: d["per_run"]))
    spread = f" (rounds: {each} s)" if len(rounds) > 1 else ""
    return (f"\nRay engine, one run at a time with one thread, against the local engine: {m['per_run']:+.1f} s per run"
            f"{spread}, {100 * m['per_run'] / m['run_s']:+.1f} % of a {m['run_s']:.0f}-s run, once Ray is up; of which "
            f"{m['train']:+.1f} s in the runs' training time and {m['per_run'] - m['train']:+.1f} s the engine's own "
            f"work; plus {m['start']:.0f} s to start Ray and its worker once per batch.")

if __name__ == "__main__":
    main()
