"""Data and models: what the method reads and the objects it trains.

* :mod:`.tasks`: the GLUE task registry (columns, labels, metrics).
* :mod:`.loading`: GLUE TSVs read, checked (file and row named), tokenised and batched; data fingerprints.
* :mod:`.user_files`: a user's own CSV/TSV/JSONL rows for ``evaluate``/``predict``.
* :mod:`.models`: model names resolved offline, classifiers and students, folders refused when they carry code.
* :mod:`.hub`: fail-fast access to the Hugging Face hub (never hangs on a closed network).
* :mod:`.predictions`: the compact per-example predictions a record keeps.

This layer may import only the base modules (``defaults``, ``progress``, ``files``, ``plotting``); the method
and everything above import it, never the reverse (``tests/test_layers.py``).
"""
