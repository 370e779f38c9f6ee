"""Runs: one run's configuration, its execution and its record; batches, suites, searches and plans.

* :mod:`.config`: :class:`~.config.RunConfig` (a run's parameters; their hash is its key) and its dependencies.
* :mod:`.execute`: train, measure, record one run (skip when recorded, resume when interrupted).
* :mod:`.checks`: the checks a record carries (degenerate flags, mechanism checks).
* :mod:`.store`: the result store (atomic records, keys, corruption named); :mod:`.catalog` finds runs and
  kept models; :mod:`.provenance` says where a run came from.
* :mod:`.schemas` (record files) and :mod:`.suite_schema` (suite files): pydantic schemas, one line per error.
* :mod:`.engine`: batches of runs, locally or on Ray; :mod:`.suites`: a suite's runs, executed;
  :mod:`.search`: held-out searches; :mod:`.plan`: pre-registered plans.

This layer may import the base modules, the data layer and the method (:mod:`cmi_toolkit.method`); it never
imports evidence, the course, ``cot`` or the CLI (``tests/test_layers.py``).
"""
