"""The committed Slurm script starts a real Ray cluster and reproduces a suite on it.

Slurm is not on this machine: ``srun``, ``scontrol`` and ``hostname`` are stand-ins that run the step here, name
this machine as the only node and give 127.0.0.1 as its address. Everything else is the script as a user submits it:
a Ray head started with ``ray start --block``, ``cmi-toolkit reproduce --engine ray`` against it, the head stopped
when the job ends."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from cmi_toolkit.reproduce import load_suite, suite_runs

from .glue_fixtures import write_task

pytest.importorskip("ray")
pytestmark = pytest.mark.ray

SCRIPT = Path(__file__).resolve().parents[1] / "configs" / "cluster" / "slurm_ray.sbatch"

FAKES = {
    # srun [--nodes=N] [--ntasks=N] [-w NODE] CMD...: run CMD here
    "srun": '#!/usr/bin/env bash\nwhile [[ "$1" == -* ]]; do [ "$1" = -w ] && shift; shift; done\nexec "$@"\n',
    "scontrol": '#!/usr/bin/env bash\necho localhost\n',
    "hostname": '#!/usr/bin/env bash\necho 127.0.0.1\n',
}


def test_the_slurm_script_reproduces_a_suite_on_a_ray_cluster(tmp_path, tiny_model_dir):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in FAKES.items():
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    write_task(tmp_path / "glue", "wnli", n=16)
    glue = tmp_path / "glue"
    suite = tmp_path / "suite.yaml"
    suite.write_text(yaml.safe_dump({
        "suite": "slurm", "seeds": [0], "finetune_methods": ["ce", "cmi"], "distill_methods": [],
        "common": {"model": str(tiny_model_dir), "epochs": 1, "batch_size": 8, "max_train_samples": None,
                   "temperature": 0.5},
        "tasks": {"wnli": {}}}))
    results = tmp_path / "results"
    env = {**os.environ, "PATH": f"{bin_dir}:{Path(sys.executable).parent}:{os.environ['PATH']}",
           "SLURM_JOB_NODELIST": "localhost", "SUITE": str(suite), "GPUS_PER_RUN": "0", "CPUS_PER_RUN": "1",
           "CPUS_PER_NODE": "2", "GPUS_PER_NODE": "0", "RESULTS_DIR": str(results), "GLUE_DIR": str(glue),
           "RAY_PORT": "6391"}
    env.pop("RAY_ADDRESS", None)
    done = subprocess.run(["bash", str(SCRIPT), "--figures_dir", str(tmp_path / "figures")], env=env,
                          capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "Ray head on localhost (127.0.0.1:6391), 0 worker node(s)" in done.stdout
    keys = {p.stem for p in (results / "runs").glob("*.json")}
    assert keys == {cfg.store_key(str(glue)) for cfg in suite_runs(load_suite(suite))}
    assert len(list((results / "logs" / "slurm").glob("*.log"))) == 2  # written by the Ray driver
    assert "2 runs: 2 trained" in done.stderr
    # the head ended with the job: nothing listens on its port any more
    probe = subprocess.run(["ray", "status", "--address", "127.0.0.1:6391"], env=env, capture_output=True, timeout=60)
    assert probe.returncode != 0
