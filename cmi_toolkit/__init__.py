"""cmi_toolkit: conditional mutual information in language-model fine-tuning, measured and taught.

The package is a house of layers; a module imports only its own layer and those below it, and no import
circle exists (``tests/test_layers.py`` checks both):

1. base: :mod:`~cmi_toolkit.defaults` (the kit's one set of defaults), :mod:`~cmi_toolkit.progress`,
   :mod:`~cmi_toolkit.files` (atomic writes), :mod:`~cmi_toolkit.plotting` (figures shown and saved);
2. :mod:`cmi_toolkit.data`: GLUE tasks, loading, user files, models, per-example predictions;
3. :mod:`cmi_toolkit.method`: the Markov-source view, FPDC, CMI/separation/NCMI, measure, losses, trainers;
4. :mod:`cmi_toolkit.runs`: run config, execute, store, catalog, provenance, schemas, engine, suites,
   search, plans;
5. :mod:`cmi_toolkit.evidence`: statistics, verdicts, reports and their figures;
6. :mod:`cmi_toolkit.cot`: chain-of-thought distillation (students, MI terms, runs, its suite);
7. :mod:`cmi_toolkit.course`: notebook helpers, exercises, widgets, figures, the lab, the rendered course;
8. :mod:`cmi_toolkit.readme` (blocks generated from records), :mod:`cmi_toolkit.pages` (README and the docs pages,
   their offline HTML and index) and :mod:`cmi_toolkit.cli` on top.
"""

__version__ = "0.1.0"
