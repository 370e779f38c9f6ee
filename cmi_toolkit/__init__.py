"""cmi_toolkit: conditional mutual information in language-model fine-tuning.

Modules, one concept each: ``tasks`` (GLUE registry and metrics), ``data`` (GLUE loading and
batching), ``models`` (model ids, classifiers, students), ``markov`` (the Markov-source view and a
synthetic source), ``fpdc`` (class centroids), ``information`` (CMI, separation, NCMI),
``losses``, ``training``, ``cli``.
"""

__version__ = "0.1.0"
