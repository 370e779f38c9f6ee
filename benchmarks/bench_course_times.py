"""Wall time of each course module run headless (papermill), in smoke and in default mode, with its machine.

Each notebook states its times in its header, on the line that starts with ``**Time`` (``smoke: under N min``,
``default: under M min``); ``tests/test_course_times.py`` checks every time recorded here against that
statement, so a module whose smoke run outgrows its stated bound fails the test suite until its statement (or
the module) is fixed. Measurements are merged into ``results/course_times.json`` (one entry per notebook and
mode, the latest run winning), each with the CPU, its core count, the threads the notebook used and the load
average when it started, so a time measured on a busy machine says so.

    CMI_TOOLKIT_GLUE_DIR=../shared/data/glue CMI_TOOLKIT_COT_DIR=../shared/data/cot \\
        python benchmarks/bench_course_times.py --modes smoke            # every module, smoke mode
    python benchmarks/bench_course_times.py --modes default --notebooks 00,01,03,06
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RECORD = REPO / "results" / "course_times.json"


def notebooks(prefixes: list[str] | None) -> list[Path]:
    found = sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    return [p for p in found if not prefixes or p.name[:2] in prefixes]


def run(path: Path, mode: str, work: Path) -> float:
    import papermill as pm

    out = work / f"{path.stem}-{mode}"
    params = {"smoke": mode == "smoke", "output_dir": str(out)}
    # a student's own store (a default under outputs/) starts empty, as in a fresh clone: runs trained by an earlier
    # measurement must not make this one look fast; stores the module reads (results/, the lab cache) stay
    for name, spec in pm.inspect_notebook(str(path)).items():
        if name == "results_dir" and "outputs/" in str(spec.get("default")):
            params[name] = str(out / "store")
    start = time.perf_counter()
    pm.execute_notebook(str(path), str(work / f"{path.stem}-{mode}.ipynb"), parameters=params,
                        cwd=str(REPO / "notebooks"), kernel_name="python3", progress_bar=False)
    return time.perf_counter() - start


def machine() -> dict:
    from cmi_toolkit.runs.provenance import cpu_features, cpu_model

    return {"cpu": cpu_model(), **cpu_features(), "cores": os.cpu_count(),
            "threads": int(os.environ.get("CMI_TOOLKIT_THREADS") or min(4, os.cpu_count() or 1))}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--modes", default="smoke", help="smoke, default or both (comma-separated)")
    ap.add_argument("--notebooks", default="", help="comma-separated prefixes (00,01,...); default: every module")
    args = ap.parse_args(argv)
    modes = [m for m in args.modes.split(",") if m]
    if set(modes) - {"smoke", "default"}:
        ap.error("--modes takes smoke and/or default")
    record = json.loads(RECORD.read_text(encoding="utf-8")) if RECORD.is_file() else {}
    rows = []
    with tempfile.TemporaryDirectory(prefix="course-times-") as tmp:
        for path in notebooks([p for p in args.notebooks.split(",") if p]):
            for mode in modes:
                load = os.getloadavg()[0]
                seconds = run(path, mode, Path(tmp))
                entry = {"seconds": round(seconds, 1), "load_at_start": round(load, 2), **machine(),
                         "date": datetime.now(timezone.utc).strftime("%Y-%m-%d")}
                record.setdefault(path.stem, {})[mode] = entry
                rows.append((path.stem, mode, seconds, load))
                print(f"{path.stem:32s} {mode:8s} {seconds:7.0f} s  (load {load:.1f} at start)", flush=True)
                RECORD.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    print("\n| module | mode | wall time | load at start |\n|---|---|---|---|")
    for name, mode, seconds, load in rows:
        print(f"| {name} | {mode} | {seconds / 60:.1f} min | {load:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
