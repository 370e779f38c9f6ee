"""Choose the CMI settings on held-out TRAINING data (never the dev sets of the results table).

For each task of the CPU suite, the training subset is split 80/20 (stratified, seeded); every
candidate (lambda, space, temperature, centroid mode) and the CE baseline are trained on the 80%
and scored on the 20%, over seeds. The printed table ranks candidates by their mean paired gain
over CE across tasks; the rule "highest mean gain, ties to the smaller lambda" picks the
setting, which --write-config stores into configs/cpu/suite.yaml.

    python benchmarks/sweep_cmi.py --results results/sweep [--engine ray] [--write-config]
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
from collections import defaultdict

import numpy as np
import yaml

from cmi_toolkit.runs.config import RunConfig
from cmi_toolkit.runs.store import ResultStore
from cmi_toolkit.runs.suites import SUITE_DIR, execute_runs, load_suite

CANDIDATES = (
    [dict(space="feature", temperature=t, cmi_weight=w, centroid_mode="epoch")
     for t, w in itertools.product([1.0, 0.1], [0.1, 1.0])]
    + [dict(space="feature", temperature=0.1, cmi_weight=0.1, centroid_mode="ema")]
    + [dict(space="output", temperature=1.0, cmi_weight=w, centroid_mode="epoch") for w in (0.1, 1.0)]
)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--results", default="results/sweep")
    ap.add_argument("--tasks", default="sst2,mrpc,rte")
    ap.add_argument("--seeds", default="0,1")
    ap.add_argument("--engine", default="local", choices=["local", "ray"])
    ap.add_argument("--write-config", action="store_true")
    args = ap.parse_args()
    spec = load_suite("cpu")
    store = ResultStore(args.results)
    tasks, seeds = args.tasks.split(","), [int(s) for s in args.seeds.split(",")]
    runs, labels = [], {}
    for task in tasks:
        base = RunConfig(**{**spec["common"], **(spec["tasks"][task] or {}), "task": task, "eval_on": "heldout"})
        for seed in seeds:
            runs.append(dataclasses.replace(base, seed=seed, method="ce"))
            labels[runs[-1].key] = ("ce",)
            for i, cand in enumerate(CANDIDATES):
                runs.append(dataclasses.replace(base, seed=seed, method="cmi", **cand))
                labels[runs[-1].key] = ("cmi", i)
    from cmi_toolkit.runs.engine import EngineArgs

    records = execute_runs(runs, store, engine=EngineArgs(engine=args.engine)).records
    score: dict[tuple, dict[tuple[str, int], float]] = defaultdict(dict)
    for cfg, rec in zip(runs, records, strict=True):
        score[labels[cfg.key]][(cfg.task, cfg.seed)] = rec["metrics"][rec["headline_metric"]]
    ce = score[("ce",)]
    rows = []
    for i, cand in enumerate(CANDIDATES):
        s = score[("cmi", i)]
        gains = {t: np.mean([s[(t, sd)] - ce[(t, sd)] for sd in seeds]) for t in tasks}
        rows.append((float(np.mean(list(gains.values()))), cand["cmi_weight"], i, gains))
    print(f"held-out training data, {len(seeds)} seeds; CE baseline: "
          + ", ".join(f"{t} {100 * np.mean([ce[(t, sd)] for sd in seeds]):.2f}" for t in tasks))
    print(f"{'space':8s} {'T':>5s} {'lambda':>7s} {'centroids':>9s} " + " ".join(f"{t:>8s}" for t in tasks) + "  mean gain")
    for mean_gain, _, i, gains in sorted(rows, key=lambda r: (-r[0], r[1])):
        c = CANDIDATES[i]
        print(f"{c['space']:8s} {c['temperature']:5.2f} {c['cmi_weight']:7.2f} {c['centroid_mode']:>9s} "
              + " ".join(f"{100 * gains[t]:+8.2f}" for t in tasks) + f"  {100 * mean_gain:+.2f}")
    best = CANDIDATES[sorted(rows, key=lambda r: (-r[0], r[1]))[0][2]]
    print("chosen:", json.dumps(best))
    if args.write_config:
        path = SUITE_DIR / "cpu" / "suite.yaml"
        text = path.read_text()
        data = yaml.safe_load(text)
        data["common"].update(best)
        header = "".join(line + "\n" for line in text.splitlines() if line.startswith("#"))
        path.write_text(header + yaml.safe_dump(data, sort_keys=False))
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
