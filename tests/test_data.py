import time

import pytest
from datasets import ClassLabel, Value

from cmi_toolkit.data.hub import HubUnavailableError
from cmi_toolkit.data.loading import (
    GLUE_DIR_ENV,
    GlueFormatError,
    load_glue,
    make_dataloader,
    subset,
    tokenize_glue,
)

from .glue_fixtures import FOLDERS, HUB_SCHEMA, write_task


@pytest.mark.parametrize("task", sorted(HUB_SCHEMA))
def test_fixture_layouts_load_with_hub_schema(tmp_path, task):
    labels = write_task(tmp_path, task)
    ds = load_glue(task, source=tmp_path)
    schema, splits = HUB_SCHEMA[task]
    assert list(ds) == splits
    for split in splits:
        d = ds[split]
        assert d.column_names == list(schema)
        for col, kind in schema.items():
            feat = d.features[col]
            if isinstance(kind, list):
                assert isinstance(feat, ClassLabel) and feat.names == kind
            else:
                assert isinstance(feat, Value) and feat.dtype == kind
        assert d["label"] == pytest.approx(labels[split])
        assert d["idx"] == list(range(len(d)))
    first_text = ds["train"][0][list(schema)[0]]
    assert first_text.startswith("train first text 0 ' quoted \" mark")  # quotes kept verbatim, BOM stripped


def test_mrpc_bom_does_not_leak_into_header(tmp_path):
    write_task(tmp_path, "mrpc")
    assert (tmp_path / "MRPC" / "train.tsv").read_bytes().startswith(b"\xef\xbb\xbf")
    assert len(load_glue("mrpc", source=tmp_path)["train"]) == 6


def _corrupt(tmp_path, task, line_no, new_line):
    write_task(tmp_path, task)
    path = tmp_path / FOLDERS[task] / "train.tsv"
    lines = path.read_text(encoding="utf-8").splitlines()
    lines[line_no - 1] = new_line
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_wrong_column_count_names_file_and_line(tmp_path):
    path = _corrupt(tmp_path, "rte", 3, "1\tonly two fields")
    with pytest.raises(GlueFormatError, match=rf"{path}, line 3: 2 tab-separated fields, expected 4"):
        load_glue("rte", source=tmp_path)


def test_unknown_label(tmp_path):
    _corrupt(tmp_path, "rte", 2, "0\ta\tb\tentails")
    with pytest.raises(GlueFormatError, match=r"line 2: unknown label 'entails'.*entailment"):
        load_glue("rte", source=tmp_path)
    _corrupt(tmp_path, "sst2", 4, "a sentence\t2")
    with pytest.raises(GlueFormatError, match=r"SST-2/train.tsv, line 4: unknown label '2'"):
        load_glue("sst2", source=tmp_path)


def test_cola_without_header_checks_width(tmp_path):
    _corrupt(tmp_path, "cola", 1, "gj04\t1\tsentence without the fourth field")
    with pytest.raises(GlueFormatError, match=r"line 1: 3 tab-separated fields, expected 4 .*no header row"):
        load_glue("cola", source=tmp_path)


def test_empty_file_and_missing_split_and_folder(tmp_path):
    write_task(tmp_path, "wnli")
    (tmp_path / "WNLI" / "dev.tsv").write_text("")
    with pytest.raises(GlueFormatError, match=r"WNLI/dev.tsv: empty file"):
        load_glue("wnli", source=tmp_path)
    (tmp_path / "WNLI" / "dev.tsv").unlink()
    with pytest.raises(GlueFormatError, match=r"missing split 'validation'"):
        load_glue("wnli", source=tmp_path)
    with pytest.raises(GlueFormatError, match=r"missing task folder"):
        load_glue("qnli", source=tmp_path)
    write_task(tmp_path, "mnli")
    (tmp_path / "MNLI" / "dev_mismatched.tsv").unlink()
    with pytest.raises(GlueFormatError, match=r"missing split 'validation_mismatched'"):
        load_glue("mnli", source=tmp_path)


def test_missing_header_column(tmp_path):
    _corrupt(tmp_path, "qqp", 1, "id\tqid1\tqid2\tq1\tquestion2\tis_duplicate")
    with pytest.raises(GlueFormatError, match=r"line 1: header .* lacks column\(s\) \['question1'\]"):
        load_glue("qqp", source=tmp_path)


def test_env_variable_resolution(tmp_path, monkeypatch):
    write_task(tmp_path, "sst2")
    monkeypatch.setenv(GLUE_DIR_ENV, str(tmp_path))
    assert len(load_glue("sst2")["train"]) == 6


def test_hub_fails_fast_and_names_the_variable(monkeypatch):
    monkeypatch.delenv(GLUE_DIR_ENV, raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens: an unreachable hub
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    start = time.monotonic()
    with pytest.raises(HubUnavailableError, match=GLUE_DIR_ENV):
        load_glue("sst2")
    assert time.monotonic() - start < 10


def test_seeded_subsets(tmp_path):
    write_task(tmp_path, "sst2", n=40)
    a = load_glue("sst2", source=tmp_path, max_train_samples=10, max_eval_samples=5, seed=1)
    b = load_glue("sst2", source=tmp_path, max_train_samples=10, max_eval_samples=5, seed=1)
    c = load_glue("sst2", source=tmp_path, max_train_samples=10, seed=2)
    assert len(a["train"]) == 10 and len(a["validation"]) == 5
    assert a["train"]["idx"] == b["train"]["idx"] != c["train"]["idx"]
    assert a["train"]["idx"] == sorted(a["train"]["idx"])
    with pytest.raises(ValueError):
        subset(a["train"], 0)


def test_dynamic_padding_and_length_grouping(tmp_path, tokenizer):
    write_task(tmp_path, "rte", n=30)
    ds = tokenize_glue(load_glue("rte", source=tmp_path), tokenizer, "rte")
    assert "sentence1" not in ds["train"].column_names and "length" in ds["train"].column_names
    loader = make_dataloader(ds["validation"], tokenizer, batch_size=4, shuffle=False)
    seen, widths = [], []
    for batch in loader:
        assert set(batch) >= {"input_ids", "attention_mask", "labels", "idx"}
        widths.append(batch["input_ids"].shape[1])
        assert batch["attention_mask"].sum(1).max() == batch["input_ids"].shape[1]  # padded to longest row only
        seen += batch["idx"].tolist()
    assert sorted(seen) == list(range(len(ds["validation"])))
    assert widths == sorted(widths)
    train = make_dataloader(ds["train"], tokenizer, batch_size=4, shuffle=True, seed=0)
    assert sum(len(b["labels"]) for b in train) == 30


OFFICIAL = {  # rows and label counts of the GLUE distribution
    "sst2": {"train": (67349, [29780, 37569]), "validation": (872, [428, 444])},
    "mrpc": {"train": (3668, [1194, 2474]), "validation": (408, [129, 279])},
    "rte": {"train": (2490, [1249, 1241]), "validation": (277, [146, 131])},
    "wnli": {"train": (635, [323, 312]), "validation": (71, [40, 31])},
}


@pytest.mark.parametrize("task", sorted(OFFICIAL))
def test_real_glue_counts(glue_dir, task):
    ds = load_glue(task, source=glue_dir)
    for split, (rows, balance) in OFFICIAL[task].items():
        assert len(ds[split]) == rows
        labels = ds[split]["label"]
        assert [labels.count(c) for c in range(2)] == balance
