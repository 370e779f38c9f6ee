"""The committed Slurm script is valid bash and asks `ray start` and `cmi-toolkit reproduce` only for options they have.

Slurm is not on this machine, and Ray started by hand here rewrites a 127.0.0.1 address to the machine's interface
address (which the tests must not use), so the script is not run end to end in CI: these checks keep it from
drifting away from the two commands it drives."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "configs" / "cluster" / "slurm_ray.sbatch"


def _commands(text: str, program: str) -> list[list[str]]:
    """Every command line of ``program`` in the script, continuation lines joined, variables left as words."""
    joined = re.sub(r"\\\n\s*", " ", text)
    out = []
    for line in joined.splitlines():
        line = line.split("#", 1)[0] if not line.lstrip().startswith("#") else ""
        if program in line:
            words = shlex.split(line.replace("&", " "), posix=True)
            out.append(words[words.index(program.split()[0]):])
    return out


def test_the_script_is_valid_bash():
    assert subprocess.run(["bash", "-n", str(SCRIPT)], capture_output=True).returncode == 0


def test_every_reproduce_option_the_script_passes_exists(capsys):
    from cmi_toolkit.cli import main

    (words,) = _commands(SCRIPT.read_text(), "cmi-toolkit reproduce")
    options = [w for w in words if w.startswith("--")]
    assert {"--engine", "--cpus_per_run", "--gpus_per_run", "--checkpoint_dir", "--results_dir", "--suite"} <= set(options)
    with pytest.raises(SystemExit):
        main(["reproduce", "--help"])
    helptext = capsys.readouterr().out
    for option in options:
        assert option in helptext, f"{SCRIPT.name} passes {option}, which reproduce does not take"


def test_every_ray_start_option_the_script_passes_exists():
    pytest.importorskip("ray")
    helptext = subprocess.run([str(Path(sys.executable).parent / "ray"), "start", "--help"], capture_output=True,
                              text=True).stdout
    found = _commands(SCRIPT.read_text(), "ray start")
    assert len(found) == 2  # the head, and one per worker node
    for words in found:
        for option in (w.split("=", 1)[0] for w in words if w.startswith("--")):
            if option != "--system-config":  # a hidden option of ray start (its help does not list it)
                assert option in helptext, f"{SCRIPT.name} passes {option}, which ray start does not take"
