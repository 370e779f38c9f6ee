"""The method: what the papers define, written once and tested against references.

* :mod:`.markov`: the Markov-source view of a transformer classifier and a synthetic class-conditional source.
* :mod:`.fpdc`: feature-space class centroids (FPDC), exact per epoch or an EMA.
* :mod:`.information`: CMI, separation Γ and NCMI of per-sample distributions (pure tensor functions).
* :mod:`.measure`: :func:`~.measure.measure`, one no-grad pass of a model over a dataset in both spaces.
* :mod:`.losses`: the training objectives as named weighted terms (CE, ±λ·CMI, separation, KD).
* :mod:`.trainers`: ``transformers.Trainer`` subclasses whose ``compute_loss`` adds those terms, centroids
  kept by callbacks.

This layer may import the base modules (``defaults``, ``progress``, ``files``, ``plotting``) and the data
layer (:mod:`cmi_toolkit.data`); it never imports runs, evidence, the course, ``cot`` or the CLI
(``tests/test_layers.py``).
"""
