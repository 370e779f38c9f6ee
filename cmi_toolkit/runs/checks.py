"""The checks a run's record carries, computed when the run ends.

* :func:`degenerate_flags`: a run that did not learn (final training CE within 2 % of ln K, one class
  predicted for ≥ 95 % of examples, or a mean top probability within 0.05 of 1/K) is flagged and left out of every comparison.
* :func:`mechanism_check`: did the term act? The CMI-minimised run's CMI is below its CE twin's, the
  maximised teacher's above.
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["degenerate_flags", "mechanism_check", "CHANCE_LOSS_TOLERANCE", "ONE_CLASS_SHARE", "NEAR_UNIFORM_MARGIN"]

CHANCE_LOSS_TOLERANCE = 0.02
ONE_CLASS_SHARE = 0.95
NEAR_UNIFORM_MARGIN = 0.05


def degenerate_flags(final_train_ce: float | None, num_classes: int, majority_prediction_share: float,
                     mean_max_prob: float) -> list[str]:
    """The degenerate-run flags that apply (empty list: the run learned something)."""
    flags = []
    chance = math.log(num_classes)
    if final_train_ce is not None and math.isfinite(final_train_ce) and abs(final_train_ce - chance) <= CHANCE_LOSS_TOLERANCE * chance:
        flags.append("loss_at_chance")
    if majority_prediction_share >= ONE_CLASS_SHARE:
        flags.append("one_class")
    if mean_max_prob <= 1.0 / num_classes + NEAR_UNIFORM_MARGIN:
        flags.append("near_uniform")
    return flags


def mechanism_check(method: str, run_cmi: float, twin_cmi: float, space: str, temperature: float) -> dict[str, Any]:
    """Did the run move CMI the way its objective asks, against its CE twin? (``passed`` None: nothing to check)."""
    expected = {"cmi": "lower", "mcmi": "higher"}.get(method)
    passed = None
    if expected == "lower":
        passed = bool(run_cmi < twin_cmi)
    elif expected == "higher":
        passed = bool(run_cmi > twin_cmi)
    return {"space": space, "temperature": temperature, "cmi": run_cmi, "ce_twin_cmi": twin_cmi,
            "expected": expected, "passed": passed}
