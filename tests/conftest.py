"""Shared fixtures: the real GLUE folder (when present) and a tiny random BERT for fast tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]

# `make test` runs the suite on two pytest-xdist workers (a 2-core machine spends much of a test in one thread:
# imports, kernels, subprocesses). Each worker then uses one torch thread, and so do the processes it starts.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    torch.set_num_threads(1)

#: tests that share a machine-wide resource run one after another, in one worker: Ray clusters, gloo process groups
#: and the browser's JupyterLab server
SERIAL_GROUPS = ("ray", "distributed", "browser")


def pytest_collection_modifyitems(config, items):
    for item in items:
        for group in SERIAL_GROUPS:
            if item.get_closest_marker(group):
                item.add_marker(pytest.mark.xdist_group(group))
                break


def _shared_glue() -> Path | None:
    env = os.environ.get("CMI_TOOLKIT_GLUE_DIR")
    for cand in ([Path(env)] if env else []) + [REPO.parent / "shared" / "data" / "glue"]:
        if (cand / "SST-2" / "train.tsv").is_file():
            return cand
    return None


@pytest.fixture(scope="session")
def glue_dir() -> Path:
    path = _shared_glue()
    if path is None:
        pytest.skip("real GLUE data not found: set CMI_TOOLKIT_GLUE_DIR or place ../shared/data/glue beside the repo")
    return path


@pytest.fixture(scope="session")
def tokenizer():
    from cmi_toolkit.data.models import load_tokenizer

    return load_tokenizer("minilm-l6")


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, tokenizer) -> Path:
    """A 2-layer, 32-wide random BERT with the MiniLM vocabulary, saved as a local model folder."""
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=4, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=128, num_labels=2)
    model = BertForSequenceClassification(config)
    path = tmp_path_factory.mktemp("tiny-bert")
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture()
def tiny_model(tiny_model_dir):
    from cmi_toolkit.data.models import load_classifier

    torch.manual_seed(0)
    return load_classifier(str(tiny_model_dir), num_labels=2)
