"""The course: what the numbered notebooks call.

* :mod:`.notebook`: the set-up every notebook shares (parameters checked, folders, data, threads).
* :mod:`.exercises`: the exercises' self-checks (references, named mistakes, hypothesis inputs).
* :mod:`.widgets`: the ipywidgets λ slider and explorers; :mod:`.figures`: the course's plotly figures.
* :mod:`.lab`: the lab preset's runs, cached in a committed store and trained on demand.
* :mod:`.render`: the executed course rendered to static HTML.

This layer may import every layer below it (base, data, method, runs, evidence, ``cot``); only the README
generator and the CLI import it (``tests/test_layers.py``).
"""
