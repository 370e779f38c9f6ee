import os
import socket
import subprocess
import sys

import pytest
import torch

from cmi_toolkit.method.fpdc import CentroidEstimator
from cmi_toolkit.method.information import class_centroids
from cmi_toolkit.method.markov import MarkovSourceView

from .conftest import REPO


def test_pass_equals_class_means():
    g = torch.Generator().manual_seed(0)
    probs = torch.softmax(torch.randn(50, 4, generator=g), -1)
    labels = torch.randint(3, (50,), generator=g)
    est = CentroidEstimator(3, 4, mode="epoch")
    est.begin_pass()
    for i in range(0, 50, 7):
        est.accumulate(probs[i:i + 7], labels[i:i + 7])
    est.end_pass()
    assert torch.allclose(est.centroids, class_centroids(probs, labels, 3), atol=1e-6)
    assert est.needs_pass(1)
    fixed = CentroidEstimator(3, 4, mode="fixed")
    assert fixed.needs_pass(0)
    fixed.begin_pass()
    fixed.accumulate(probs, labels)
    fixed.end_pass()
    assert not fixed.needs_pass(1)


def test_absent_class_keeps_centroid_and_ema_rule():
    est = CentroidEstimator(3, 2, mode="ema", momentum=0.5)
    est.observe(torch.tensor([[1.0, 0.0], [0.0, 1.0]]), torch.tensor([0, 1]))
    assert est.centroids.tolist() == [[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]]  # first sight: batch mean; class 2 uniform
    est.observe(torch.tensor([[0.0, 1.0], [0.5, 0.5]]), torch.tensor([0, 0]))
    # class 0: 0.5 * [1, 0] + 0.5 * mean([0, 1], [.5, .5]) = [0.625, 0.375]; class 1 untouched
    assert est.centroids.tolist() == [[0.625, 0.375], [0.0, 1.0], [0.5, 0.5]]
    pass_mode = CentroidEstimator(2, 2, mode="epoch")
    pass_mode.begin_pass()
    pass_mode.accumulate(torch.tensor([[0.2, 0.8]]), torch.tensor([1]))
    pass_mode.end_pass()
    assert torch.allclose(pass_mode.centroids, torch.tensor([[0.5, 0.5], [0.2, 0.8]]))
    with pytest.raises(ValueError):
        CentroidEstimator(2, 2, mode="sometimes")


def test_fit_over_loader(tiny_model, tokenizer, tmp_path):
    from cmi_toolkit.data.loading import load_glue, make_dataloader, tokenize_glue

    from .glue_fixtures import write_task

    write_task(tmp_path, "rte", n=12)
    ds = tokenize_glue(load_glue("rte", source=tmp_path), tokenizer, "rte")
    view = MarkovSourceView(tiny_model)
    est = CentroidEstimator(2, 32, space="feature")
    est.fit(view, make_dataloader(ds["train"], tokenizer, batch_size=5), progress=False)
    raw = load_glue("rte", source=tmp_path)["train"]
    batch = tokenizer(list(raw["sentence1"]), list(raw["sentence2"]), padding=True, return_tensors="pt")
    tiny_model.eval()
    with torch.no_grad():
        f = view(**batch).feature_probs
    assert torch.allclose(est.centroids, class_centroids(f, torch.tensor(list(ds["train"]["label"])), 2), atol=1e-5)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.distributed
@pytest.mark.parametrize("mode", ["epoch", "ema"])
def test_two_gloo_processes_agree_with_one(tmp_path, mode):
    port = str(_free_port())
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [subprocess.Popen([sys.executable, str(REPO / "tests" / "dist_worker.py"), str(r), "2", port,
                               str(tmp_path), mode], env=env) for r in range(2)]
    assert all(p.wait(timeout=120) == 0 for p in procs)
    c0, c1 = torch.load(tmp_path / "rank0.pt"), torch.load(tmp_path / "rank1.pt")
    assert torch.equal(c0, c1)
    g = torch.Generator().manual_seed(0)
    probs = torch.softmax(torch.randn(2, 8, 5, generator=g), -1)
    labels = torch.randint(3, (2, 8), generator=g)
    one = CentroidEstimator(3, 5, mode=mode)
    if mode == "ema":
        for step in range(2):
            one.update_ema(probs[step], labels[step])
    else:
        one.begin_pass()
        one.accumulate(probs.reshape(-1, 5), labels.reshape(-1))
        one.end_pass()
    assert torch.allclose(c0, one.centroids, atol=1e-6)
