"""The set-up every course notebook shares: banner, folders, threads, data folder."""

import torch

from cmi_toolkit.course.notebook import SMOKE_BANNER, setup


def test_setup_prints_the_banner_makes_folders_caps_threads_and_finds_the_data(tmp_path, monkeypatch, capsys):
    before = torch.get_num_threads()
    monkeypatch.setenv("CMI_TOOLKIT_GLUE_DIR", str(tmp_path / "glue"))
    monkeypatch.setenv("CMI_TOOLKIT_THREADS", "1")
    try:
        out, figs, data = setup(True, tmp_path / "out", tmp_path / "figs", "glue", None)
        assert capsys.readouterr().out.strip() == SMOKE_BANNER
        assert out.is_dir() and figs == tmp_path / "figs" and data == str(tmp_path / "glue")
        assert torch.get_num_threads() == 1
        _, _, data = setup(False, tmp_path / "out", tmp_path / "figs", "glue", tmp_path / "given")
        assert capsys.readouterr().out == "" and data == str(tmp_path / "given")  # an argument wins, no banner
        assert setup(False, tmp_path / "out", tmp_path / "figs")[2] is None
    finally:
        torch.set_num_threads(before)
