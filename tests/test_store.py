"""The result store cannot publish the wrong run: data in the key, provenance, suite scope, duplicates."""

import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml

from cmi_toolkit.cli import main
from cmi_toolkit.data.loading import glue_fingerprint
from cmi_toolkit.evidence.report import report
from cmi_toolkit.runs.config import RunConfig
from cmi_toolkit.runs.execute import execute
from cmi_toolkit.runs.store import DuplicateRunError, ResultStore, StoreError
from cmi_toolkit.runs.suites import load_suite, suite_runs

from .conftest import REPO
from .glue_fixtures import write_task
from .test_training import _cfg, _easy_sst2


def test_fingerprint_follows_file_bytes_and_subset(tmp_path):
    glue = _easy_sst2(tmp_path / "glue", n=40)
    a = glue_fingerprint("sst2", glue, max_train_samples=10, seed=0)
    assert a == glue_fingerprint("SST-2", glue, max_train_samples=10, seed=0)  # same data, same digest
    assert a["rows"] == {"train": 40, "validation": 16}
    assert a["digest"] != glue_fingerprint("sst2", glue, max_train_samples=10, seed=1)["digest"]  # other rows
    assert a["digest"] != glue_fingerprint("sst2", glue, max_train_samples=None)["digest"]
    train = glue / "SST-2" / "train.tsv"
    train.write_text(train.read_text().replace("awful", "dreadful", 1))
    assert glue_fingerprint("sst2", glue, max_train_samples=10, seed=0)["digest"] != a["digest"]


def test_run_on_other_data_is_another_run(tmp_path, tiny_model_dir, monkeypatch):
    """A record made on a 24-row folder never answers for the same command on a 40-row folder."""
    small, big = _easy_sst2(tmp_path / "small", n=24), _easy_sst2(tmp_path / "big", n=40)
    store = ResultStore(tmp_path / "r")
    cfg = _cfg(tiny_model_dir, method="ce", epochs=1)
    first = execute(cfg, store, glue_dir=str(small), progress=False)
    second = execute(cfg, store, glue_dir=str(big), progress=False)
    assert first["key"] != second["key"]
    assert (first["train_samples"], second["train_samples"]) == (24, 40)
    assert second["data"]["rows"]["train"] == 40 and second["data"]["digest"] == cfg.data_fingerprint(str(big))["digest"]


def test_record_carries_provenance(tmp_path, tiny_model_dir):
    glue = _easy_sst2(tmp_path / "glue", n=16)
    rec = execute(_cfg(tiny_model_dir, method="ce", epochs=1), ResultStore(tmp_path / "r"), glue_dir=str(glue),
                  progress=False)
    prov = rec["provenance"]
    import datasets
    import torch
    import transformers

    assert prov["torch"] == torch.__version__ and prov["transformers"] == transformers.__version__
    assert prov["datasets"] == datasets.__version__ and prov["package_version"]
    assert prov["device"] == "cpu" and prov["device_name"] and prov["cpu"] and prov["threads"] >= 1
    assert prov["started"] <= prov["finished"] and prov["resumed_from_step"] is None
    head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    assert prov["commit"] == (head or None) and prov["dirty"] in (True, False, None)
    assert rec["data"]["files"]["train"] and rec["suite"] is None


def test_task_names_give_one_key():
    keys = {RunConfig(task=name, method="ce").key for name in ("sst2", "SST-2", "sst", " Sst2 ")}
    assert len(keys) == 1


def _fixture_suite(tmp_path, tiny_model_dir, seeds=(0,)):
    suite = tmp_path / "suite.yaml"
    suite.write_text(yaml.safe_dump({
        "suite": "fixture", "seeds": list(seeds), "finetune_methods": ["ce"], "distill_methods": [],
        "common": {"model": str(tiny_model_dir), "epochs": 1, "batch_size": 8, "max_train_samples": None},
        "tasks": {"wnli": {}}}))
    return suite


def test_report_reads_only_its_suite_and_adhoc_runs_stay_apart(tmp_path, tiny_model_dir, monkeypatch):
    """An ad-hoc run with lambda 1e6 can no longer change a suite's table."""
    monkeypatch.chdir(tmp_path)
    write_task(tmp_path / "glue", "wnli", n=16)
    suite = _fixture_suite(tmp_path, tiny_model_dir)
    glue = str(tmp_path / "glue")
    assert main(["reproduce", "--suite", str(suite), "--glue_dir", glue, "--figures_dir", "figs"]) == 0
    before = (tmp_path / "results" / "summary_fixture.md").read_text()
    # ad-hoc training goes to runs/adhoc by default, not into the suite's store
    assert main(["train", "--task", "wnli", "--method", "ce", "--model", str(tiny_model_dir), "--epochs", "1",
                 "--batch_size", "8", "--learning_rate", "1e-3", "--glue_dir", glue]) == 0
    assert list((tmp_path / "runs" / "adhoc" / "runs").glob("*.json"))
    # even an ad-hoc record written into the suite's store is ignored, and counted
    cfg = RunConfig(task="wnli", method="ce", model=str(tiny_model_dir), epochs=1, batch_size=8, learning_rate=1e-3,
                    max_train_samples=None)
    execute(cfg, ResultStore(tmp_path / "results"), glue_dir=glue, progress=False)
    assert main(["report", "--suite", str(suite), "--figures_dir", "figs"]) == 0
    after = (tmp_path / "results" / "summary_fixture.md").read_text()
    assert after.split("\n\n1 other record")[0] == before.rstrip("\n")
    assert "1 other record(s) in the store belong to no run of this suite" in after


def test_two_records_claiming_one_run_stop_the_report(tmp_path, tiny_model_dir):
    write_task(tmp_path / "a", "wnli", n=16)
    write_task(tmp_path / "b", "wnli", n=24)
    spec = load_suite(_fixture_suite(tmp_path, tiny_model_dir))
    store = ResultStore(tmp_path / "results")
    (cfg,) = suite_runs(spec)
    first = execute(cfg, store, glue_dir=str(tmp_path / "a"), progress=False, suite="fixture")
    second = execute(cfg, store, glue_dir=str(tmp_path / "b"), progress=False, suite="fixture")
    with pytest.raises(DuplicateRunError) as err:
        report(store, spec)
    message = str(err.value)
    assert first["key"] in message and second["key"] in message and "seed 0" in message


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write into read-only folders")
def test_unwritable_results_folder_fails_before_training(tmp_path, tiny_model_dir, monkeypatch):
    _pass_if_unwritable(tmp_path, tiny_model_dir, monkeypatch)


def test_unwritable_results_folder_fails_before_training_any_user(tmp_path, tiny_model_dir, monkeypatch):
    """A results path under a regular file cannot be created, whoever runs the test."""
    _pass_if_unwritable(tmp_path, tiny_model_dir, monkeypatch, under_file=True)


def _pass_if_unwritable(tmp_path, tiny_model_dir, monkeypatch, under_file=False):
    import cmi_toolkit.runs.execute as ex

    glue = _easy_sst2(tmp_path / "glue", n=16)
    if under_file:
        (tmp_path / "blocker").write_text("a file, not a folder")
        root = tmp_path / "blocker" / "results"
    else:
        root = tmp_path / "ro"
        root.mkdir()
        root.chmod(0o500)
    monkeypatch.setattr(ex, "train_and_measure", lambda *a, **k: pytest.fail("trained into an unwritable store"))
    with pytest.raises(StoreError, match="not writable"):
        execute(_cfg(tiny_model_dir, method="ce"), ResultStore(root), glue_dir=str(glue), progress=False)


def test_makefile_exports_absolute_data_paths():
    out = subprocess.run(["make", "-s", "-C", str(REPO), "data-dirs"], capture_output=True, text=True, check=True,
                         env={k: v for k, v in os.environ.items() if not k.startswith("CMI_TOOLKIT_")}).stdout
    values = dict(line.split("=", 1) for line in out.strip().splitlines())
    assert set(values) == {"CMI_TOOLKIT_GLUE_DIR", "CMI_TOOLKIT_COT_DIR"}
    for name, value in values.items():
        shared = REPO.parent / "shared" / "data" / ("glue" if "GLUE" in name else "cot")
        if shared.is_dir():
            assert os.path.isabs(value) and os.path.isdir(value), (name, value)


def test_suites_restate_no_default():
    from cmi_toolkit.defaults import CMI_DEFAULTS

    for name in ("cpu", "paper", "glue5"):
        spec = load_suite(name)
        assert not set(CMI_DEFAULTS) & set(spec["common"]), f"suite {name} restates a default"
        for task_params in spec["tasks"].values():
            assert not set(CMI_DEFAULTS) & set(task_params or {})


def test_one_set_of_defaults_everywhere():
    import inspect

    from cmi_toolkit import defaults as D
    from cmi_toolkit.cli.common import ModelArgs
    from cmi_toolkit.method.fpdc import CentroidEstimator
    from cmi_toolkit.method.losses import CMILossConfig
    from cmi_toolkit.method.measure import measure
    from cmi_toolkit.method.trainers import CMITrainer, MeasureCallback

    cfg = RunConfig()
    assert (cfg.space, cfg.temperature, cfg.cmi_weight, cfg.centroid_mode, cfg.ema_momentum, cfg.pooling) == (
        D.SPACE, D.TEMPERATURE, D.CMI_WEIGHT, D.CENTROID_MODE, D.EMA_MOMENTUM, D.POOLING)
    loss = CMILossConfig()
    assert (loss.space, loss.temperature, loss.weight) == (D.SPACE, D.TEMPERATURE, D.CMI_WEIGHT)
    assert ModelArgs().temperature == D.TEMPERATURE and ModelArgs().pooling == D.POOLING
    assert inspect.signature(measure).parameters["temperature"].default == D.TEMPERATURE
    assert inspect.signature(MeasureCallback).parameters["temperature"].default == D.TEMPERATURE
    assert inspect.signature(CMITrainer.__init__).parameters["centroid_mode"].default == D.CENTROID_MODE
    assert inspect.signature(CentroidEstimator).parameters["mode"].default == D.CENTROID_MODE
    assert D.TEMPERATURE == 0.1 and D.CENTROID_MODE == "ema"  # the measured ones the README states


def test_legacy_records_are_reported_with_their_caveat():
    """The committed CPU-suite records predate provenance: the summary says so instead of passing them as clean."""
    store = ResultStore(REPO / "results")
    records = [r for r in store.all_records() if r.get("suite") == "cpu"]
    if not records:
        pytest.skip("no committed cpu-suite records")
    text = json.dumps(records[0])
    assert "legacy" in text
    from cmi_toolkit.evidence.report import summarise, summary_markdown

    lines = summary_markdown(summarise(records), "t")
    assert any("predate the degenerate-run and mechanism checks" in line for line in lines)


def test_a_run_reused_by_another_suite_is_claimed_by_both(tmp_path, tiny_model_dir):
    write_task(tmp_path / "g", "wnli", n=16)
    spec = load_suite(_fixture_suite(tmp_path, tiny_model_dir))
    store = ResultStore(tmp_path / "results")
    (cfg,) = suite_runs(spec)
    first = execute(cfg, store, glue_dir=str(tmp_path / "g"), progress=False, suite="fixture")
    again = execute(cfg, store, glue_dir=str(tmp_path / "g"), progress=False, suite="other")  # not retrained
    assert again["key"] == first["key"] and again["also_suites"] == ["other"]
    for name in ("fixture", "other"):
        records, ignored = store.select({cfg.key: ("wnli", "ce", 0)}, name)
        assert len(records) == 1 and ignored == 0
    records, ignored = store.select({cfg.key: ("wnli", "ce", 0)}, "third")
    assert records == [] and ignored == 1


def test_every_committed_record_keeps_its_key():
    """Every committed record is found under the key today's code computes from its parameters (GLUE: the
    RunConfig's store key, through the store's aliases for records filed under an older key; chain-of-thought:
    ``cot_key``), so moving or renaming code never orphans a record."""
    import glob
    import warnings

    from cmi_toolkit.cot.runs import cot_key
    from cmi_toolkit.cot.trainer import CoTConfig
    from cmi_toolkit.runs.store import ResultStore, record_store_key

    repo = Path(__file__).resolve().parents[1]
    folders = sorted({Path(p).parent.parent for p in glob.glob(str(repo / "results" / "**" / "runs" / "*.json"),
                                                              recursive=True)} - {repo / "results" / "cot"})
    found = 0
    for folder in folders:
        store = ResultStore(folder)
        for path, record in store.items():
            data = record.get("data") if isinstance(record.get("data"), dict) else {}
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                cfg = RunConfig(**record["params"])
            if not data.get("digest"):  # made before data was fingerprinted: matched by its parameters' key
                assert record_store_key(record) == cfg.key, f"{path}: its parameters give {cfg.key}"
                continue
            key = cfg.store_key(fingerprint=data)
            loaded = store.load(key)
            assert loaded is not None and loaded["params"] == record["params"], f"{path}: not found under {key}"
            found += 1
    assert found > 250
    cot = 0
    for path in sorted(glob.glob(str(repo / "results" / "cot" / "runs" / "*.json"))):
        record = json.loads(Path(path).read_text())
        digest = (record.get("data") or {}).get("digest") if isinstance(record.get("data"), dict) else None
        if digest is None:
            continue  # made before CoT data was fingerprinted: reported from the file, never re-keyed
        fields = CoTConfig.__dataclass_fields__
        cfg = CoTConfig(**{k: v for k, v in record["params"].items() if k in fields})
        assert Path(path).stem == cot_key(cfg, digest), path
        cot += 1
    assert cot >= 10


def test_a_record_names_the_commit_its_run_started_from(monkeypatch):
    """A commit made while a run trains is never taken for the run's code: the commit and dirty flag are noted when
    the run starts (run_start) and only written at its end."""
    from cmi_toolkit.runs import provenance as P

    monkeypatch.setattr(P, "git_state", lambda repo=None: {"commit": "a" * 40, "dirty": False})
    start = P.run_start()
    monkeypatch.setattr(P, "git_state", lambda repo=None: {"commit": "b" * 40, "dirty": True})  # committed meanwhile
    prov = P.provenance(None, started=start)
    assert prov["commit"] == "a" * 40 and prov["dirty"] is False and prov["started"] == start["started"]
    assert P.provenance(None, started=start["started"])["commit"] == "b" * 40  # a bare time reads the commit now
