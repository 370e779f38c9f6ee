"""Evidence: how a result is stated (DESIGN.md, "Evidence").

* :mod:`.statistics`: paired intervals, bootstrap over seeds and examples, McNemar, Holm, TOST,
  random effects (scipy/statsmodels where they have it).
* :mod:`.verdicts`: a suite's family of comparisons answered in words (better / worse / no difference detected).
* :mod:`.report`: a suite's summary table, Markdown and figures, generated from records.
* :mod:`.figures`: figures of intervals (grouped intervals, forest plots).

This layer may import the base modules, data, the method and runs (it reads records); it never imports
``cot``, the course or the CLI (``tests/test_layers.py``).
"""
