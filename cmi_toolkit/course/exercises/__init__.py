"""The exercises' self-checks: the student writes a piece of the method, :func:`check` checks it.

* :mod:`.checking`: :func:`~.checking.check` and :func:`~.checking.diagnose` (hypothesis inputs, the named
  mistake, never raising).
* :mod:`.exercise`: what an exercise is (its reference, inputs, hint and typical mistakes) and how two answers
  are compared (any numeric form: float, tensor, NumPy, tuple).
* :mod:`.inputs`: the hypothesis strategies (unbalanced classes, one-row classes, extreme temperatures).
* :mod:`.references`: the helpers the references share (centroids, KL per row, entropies).
* :mod:`.module00` ... :mod:`.module06`: each course module's two exercises, references and typical mistakes.
* :mod:`.catalogue`: all of them by name.

Part of the course layer: it may import every layer below it; only the notebooks and the tests use it.
"""

from .catalogue import EXERCISES
from .checking import check, diagnose
from .exercise import Checked, Exercise, Mistake

__all__ = ["EXERCISES", "Checked", "Exercise", "Mistake", "check", "diagnose"]
