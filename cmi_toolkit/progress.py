"""The kit's progress display: one bar per model, drawn by the kit; none from the libraries underneath.

A run tokenises its data (``datasets``' map), loads weights and writes model shards (``transformers`` and
``huggingface_hub``); each of these draws a bar of its own, so a notebook cell that trains a teacher and a
student showed some twenty bars. :func:`library_bars_off` switches those off for the duration of a run and
puts back what was there; the kit's own bars (a run's training bar, a batch's bar over runs, a notebook's
widget bar) are plain tqdm bars and stay.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

__all__ = ["library_bars_off", "quiet_trainer_logs"]


@contextlib.contextmanager
def library_bars_off() -> Iterator[None]:
    """Within the block, ``datasets``, ``transformers`` and ``huggingface_hub`` draw no progress bars."""
    import datasets
    from transformers.utils import logging as transformers_logging

    datasets_was_on = not datasets.are_progress_bars_disabled()
    transformers_was_on = transformers_logging.is_progress_bar_enabled()
    datasets.disable_progress_bars()
    transformers_logging.disable_progress_bar()
    try:
        yield
    finally:
        if datasets_was_on:
            datasets.enable_progress_bars()
        if transformers_was_on:
            transformers_logging.enable_progress_bar()


def quiet_trainer_logs(trainer) -> None:
    """A Trainer with one progress bar and no printed log dicts (the record and the logs keep the numbers).

    With ``disable_tqdm`` the Trainer prints every log as a dict (PrinterCallback); with a bar it writes them under
    the bar. Both go; the bar, when there is one, stays.
    """
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    class QuietProgress(ProgressCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            pass

    trainer.remove_callback(PrinterCallback)
    if trainer.pop_callback(ProgressCallback) is not None:
        trainer.add_callback(QuietProgress())
