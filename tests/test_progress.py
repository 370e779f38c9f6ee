"""One bar per model: the libraries' own progress bars are off while the kit runs a model, and back after."""

from __future__ import annotations

from .test_training import _easy_sst2


def test_a_run_draws_no_library_bars_and_leaves_their_switches_as_they_were(tmp_path, tiny_model_dir, capfd):
    import datasets
    from transformers.utils import logging as transformers_logging

    from cmi_toolkit.runs.config import RunConfig
    from cmi_toolkit.runs.execute import execute
    from cmi_toolkit.runs.store import ResultStore

    glue = _easy_sst2(tmp_path / "glue", n=24)
    datasets.enable_progress_bars()
    transformers_logging.enable_progress_bar()
    cfg = RunConfig(task="sst2", model=str(tiny_model_dir), max_train_samples=None, epochs=1, batch_size=8,
                    method="cmi")  # its CE twin is trained, kept and loaded again: every kind of library bar
    execute(cfg, ResultStore(tmp_path / "r"), glue_dir=str(glue), progress=False)
    err = capfd.readouterr().err
    assert "tokenise" not in err and "Loading weights" not in err and "Writing" not in err, err[-2000:]
    assert not datasets.are_progress_bars_disabled() and transformers_logging.is_progress_bar_enabled()



def test_scoring_a_users_file_draws_no_library_bar(tmp_path, tiny_model_dir, capfd):
    from transformers.utils import logging as transformers_logging

    from cmi_toolkit.cli import main

    data = tmp_path / "rows.tsv"
    data.write_text("sentence\tlabel\nfine film\t1\ndull film\t0\n")
    transformers_logging.enable_progress_bar()
    assert main(["evaluate", "--task", "sst2", "--model", str(tiny_model_dir), "--data", str(data)]) == 0
    err = capfd.readouterr().err
    assert "Loading weights" not in err and transformers_logging.is_progress_bar_enabled(), err[-2000:]
