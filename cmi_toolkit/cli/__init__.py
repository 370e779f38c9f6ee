"""The ``cmi-toolkit`` command: one module per command group, on top of every other layer.

:mod:`.main` dispatches ``cmi-toolkit <command>`` and turns every user mistake into one line (exit 2);
:mod:`.common` holds the shared options and checks; :mod:`.demo`, :mod:`.training` (train, distill),
:mod:`.scoring` (evaluate, predict, measure, predictions), :mod:`.store` (runs), :mod:`.suites`
(reproduce, report, search), :mod:`.cot` and :mod:`.course` (lab-cache, course, readme, tasks) parse their
arguments and call the layers below. Nothing below imports this package.
"""

from .main import COMMANDS, main

__all__ = ["COMMANDS", "main"]
