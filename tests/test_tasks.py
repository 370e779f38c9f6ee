import numpy as np
import pytest
from scipy.stats import pearsonr

from cmi_toolkit.data.tasks import TASKS, UnknownTaskError, compute_metrics, get_task


def test_registry_has_all_glue_tasks():
    assert set(TASKS) == {"cola", "sst2", "mrpc", "qqp", "mnli", "qnli", "rte", "wnli", "stsb"}
    assert get_task("SST-2") is get_task("sst2")
    assert get_task("mnli").num_labels == 3 and get_task("stsb").num_labels == 1
    with pytest.raises(UnknownTaskError, match="known tasks"):
        get_task("squad")


def test_metrics_by_hand():
    preds, refs = [1, 1, 0, 0, 1], [1, 0, 0, 1, 1]
    # tp=2 fp=1 fn=1 tn=1
    assert compute_metrics("mrpc", preds, refs) == pytest.approx({"f1": 2 * 2 / (2 * 2 + 1 + 1), "accuracy": 0.6})
    mcc = (2 * 1 - 1 * 1) / np.sqrt(3 * 3 * 2 * 2)
    assert compute_metrics("cola", preds, refs)["matthews_correlation"] == pytest.approx(mcc)
    assert compute_metrics("rte", preds, refs) == {"accuracy": pytest.approx(0.6)}
    x, y = np.array([0.1, 2.0, 3.5, 4.0]), np.array([0.0, 2.5, 3.0, 5.0])
    out = compute_metrics("stsb", x, y)
    assert out["pearson"] == pytest.approx(pearsonr(x, y)[0]) and out["spearmanr"] == pytest.approx(1.0)
    with pytest.raises(ValueError):
        compute_metrics("sst2", [1], [1, 0])
