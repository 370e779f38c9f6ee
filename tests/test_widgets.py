from pathlib import Path

import pytest

from cmi_toolkit.course.widgets import LambdaExplorer, interactive, progress_callback, show_sweep

ROWS = [{"lambda": lam, "space": "feature", "temperature": 0.1, "accuracy": acc, "cmi": cmi, "ncmi": cmi / 5}
        for lam, acc, cmi in [(0.0, 0.80, 0.4), (0.1, 0.81, 0.3), (1.0, 0.79, 0.1)]]


def test_static_figure_marks_the_selected_lambda():
    fig = show_sweep(ROWS, selected=1.0)
    assert "selected λ = 1" in fig.layout.title.text
    assert [len(t.x) for t in fig.data if t.mode == "markers"] == [1, 1, 1]  # one circled point per panel
    assert not interactive()  # plain pytest is no live front end


class _NullOutput:
    """Stands in for the widget's Output when no front end can draw the figure."""

    def clear_output(self, wait=False):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_explorer_slider_and_button(monkeypatch):
    pytest.importorskip("ipywidgets")
    calls = []

    def train(lam, space, temperature, bar):
        calls.append((lam, space, temperature))
        cb = progress_callback(bar)

        class State:
            max_steps, global_step = 4, 4

        cb.on_train_begin(None, State, None)
        cb.on_step_end(None, State, None)
        return {"lambda": lam, "space": space, "temperature": temperature, "accuracy": 0.5, "cmi": 0.05, "ncmi": 0.01}

    explorer = LambdaExplorer(list(ROWS), train_fn=train)
    assert "<td>1</td><td>1</td><td>0.7900</td>" in explorer.summary.value and "<td>3</td>" not in explorer.summary.value
    rendered = []
    original_render = explorer.render
    monkeypatch.setattr(explorer, "render", lambda: rendered.append(explorer.slider.value))
    assert explorer.slider.value == 0.1
    explorer.slider.value = 1.0
    assert rendered and rendered[-1] == 1.0
    explorer.new_lambda.value = 3.0
    explorer.button.click()
    assert calls == [(3.0, "feature", 0.1)]
    assert explorer.progress.value == explorer.progress.max == 4
    assert [v for _, v in explorer.slider.options] == [0.0, 0.1, 1.0, 3.0] and explorer.slider.value == 3.0
    assert "λ = 3" in explorer.status.value
    monkeypatch.setattr(explorer, "out", _NullOutput())
    import plotly.basedatatypes

    monkeypatch.setattr(plotly.basedatatypes.BaseFigure, "show", lambda self, *a, **k: None)  # no front end here
    original_render()  # the summary table follows the new model
    assert "<td>3</td><td>1</td><td>0.5000</td>" in explorer.summary.value


def test_explorer_shows_errors_and_replaces_a_retrained_point(monkeypatch):
    pytest.importorskip("ipywidgets")
    results = iter([RuntimeError("out of memory"), 0.42])

    def train(lam, space, temperature, bar):
        value = next(results)
        if isinstance(value, Exception):
            raise value
        return {"lambda": lam, "space": space, "temperature": temperature, "accuracy": value, "cmi": 0.2, "ncmi": 0.04}

    explorer = LambdaExplorer(list(ROWS), train_fn=train)
    monkeypatch.setattr(explorer, "render", lambda: None)
    explorer.new_lambda.value = 1.0
    explorer.button.click()
    assert "failed: out of memory" in explorer.status.value and not explorer.button.disabled
    assert len(explorer.rows) == 3
    explorer.button.click()  # lambda 1.0 again: replaces the old point
    at_one = [r for r in explorer.rows if r["lambda"] == 1.0]
    assert len(explorer.rows) == 3 and len(at_one) == 1 and at_one[0]["accuracy"] == 0.42


def test_dropdowns_offer_real_choices_and_empty_settings_say_so():
    pytest.importorskip("ipywidgets")
    explorer = LambdaExplorer(list(ROWS))
    assert set(explorer.space.options) == {"feature", "output"}
    assert {0.05, 0.1, 0.2, 1.0} <= set(explorer.temperature.options)
    explorer.space.value = "output"  # the sweep holds no output-space model
    assert "no model at output space, T = 0.1 yet" in explorer.status.value


def test_several_seeds_are_drawn_as_mean_with_a_standard_deviation_bar_and_the_majority_line():
    rows = [{**r, "seed": s, "accuracy": r["accuracy"] + d, "majority": 0.51}
            for r in ROWS for s, d in ((0, -0.02), (1, 0.0), (2, 0.02))]
    fig = show_sweep(rows, selected=0.1)
    means = [t for t in fig.data if t.mode == "lines+markers"]
    assert list(means[0].y) == pytest.approx([0.80, 0.81, 0.79])  # accuracy panel: the mean per lambda
    assert list(means[0].error_y.array) == pytest.approx([0.02] * 3)  # sample sd of -0.02, 0, +0.02
    assert means[0].error_y.visible
    assert len([t for t in fig.data if t.mode == "markers" and len(t.x) == 9]) == 3  # every seed as a dot
    assert "3 seeds" in fig.layout.title.text
    assert any(s.y0 == 0.51 for s in fig.layout.shapes)  # the majority-class line


def test_lambda_sits_on_a_log_axis_with_plain_ce_set_apart():
    """0.03, 0.1, 0.3, 1 are evenly spaced (a geometric grid on a log axis); λ = 0 is one step left, labelled CE."""
    import math

    rows = [{"lambda": lam, "space": "feature", "temperature": 0.1, "accuracy": 0.8, "cmi": 0.3, "ncmi": 0.1}
            for lam in (0.0, 0.03, 0.1, 0.3, 1.0)]
    fig = show_sweep(rows, selected=0.1)
    x = list(next(t for t in fig.data if t.mode == "lines+markers").x)
    gaps = [b - a for a, b in zip(x[:-1], x[1:], strict=True)]
    assert all(g > 0 for g in gaps) and max(gaps) - min(gaps) < 0.05  # 0→0.03 as wide as 0.1→0.3
    assert x[-1] == pytest.approx(0.0) and x[2] == pytest.approx(math.log10(0.1))
    assert fig.layout.xaxis.ticktext[0] == "0 (CE)" and "log" in fig.layout.xaxis.title.text
    assert any(s.x0 == pytest.approx(math.log10(0.1)) for s in fig.layout.shapes)  # the selected λ's line


def test_the_along_training_figure_has_anchored_axes_a_majority_line_and_readable_titles():
    from cmi_toolkit.course.figures import training_curve

    history = [{"step": s, "accuracy": 0.5 + 0.01 * s, "feature_cmi": 0.3 - 0.001 * s, "feature_ncmi": 0.1}
               for s in (0, 10, 20)]
    fig = training_curve(history, majority=0.53, title="one run")
    assert list(fig.layout.yaxis.range) == [0, 1] and fig.layout.yaxis2.rangemode == "tozero"
    assert any(s.y0 == 0.53 for s in fig.layout.shapes)
    titles = [a.text for a in fig.layout.annotations]
    assert "dev accuracy" in titles and "CMI in feature space (nats)" in titles and "feature_cmi" not in titles


class _RecordingOutput(_NullOutput):
    def __init__(self):
        self.cleared = []

    def clear_output(self, wait=False):
        self.cleared.append(wait)


def test_the_figure_always_shows_the_current_selection(monkeypatch):
    """Another space with no model clears the old figure at once; after training, figure and table show it."""
    pytest.importorskip("ipywidgets")
    import plotly.basedatatypes

    monkeypatch.setattr(plotly.basedatatypes.BaseFigure, "show", lambda self, *a, **k: None)  # no front end here
    explorer = LambdaExplorer(list(ROWS), train_fn=lambda lam, space, t, bar: {
        "lambda": lam, "space": space, "temperature": t, "accuracy": 0.6, "cmi": 0.05, "ncmi": 0.01})
    out = _RecordingOutput()
    monkeypatch.setattr(explorer, "out", out)
    explorer.space.value = "output"
    assert explorer.figure is None and out.cleared[-1] is False  # not wait=True: that keeps the old figure up
    explorer.space.value = "feature"
    rendered = len(out.cleared)
    explorer.new_lambda.value = 3.0
    explorer.button.click()
    assert len(out.cleared) == rendered + 1  # one render after training, with the new model
    mean = next(t for t in explorer.figure.data if t.mode == "lines+markers")
    assert len(mean.x) == 4 and "<td>3</td>" in explorer.summary.value


class _Figure:
    """A plotly figure stand-in whose PNG export fails ``failures`` times (kaleido timing out), then works."""

    def __init__(self, failures: int):
        self.failures = failures

    def to_html(self, **kwargs) -> str:
        return "<html></html>"

    def write_image(self, path: str, **kwargs) -> None:
        if self.failures:
            self.failures -= 1
            raise RuntimeError("Kaleido timed out\nmore lines")
        Path(path).write_bytes(b"png")


def test_a_figure_whose_png_export_fails_once_gets_its_png_and_one_that_always_fails_says_so(tmp_path, monkeypatch):
    from cmi_toolkit.plotting import save_figure

    monkeypatch.setenv("BROWSER_PATH", "/usr/bin/chromium")
    out = save_figure(_Figure(failures=1), "flaky", tmp_path)
    assert out["png"].read_bytes() == b"png"
    with pytest.warns(UserWarning, match=r"broken\.png not written \(RuntimeError: Kaleido timed out"):
        out = save_figure(_Figure(failures=5), "broken", tmp_path)
    assert "png" not in out and out["html"].is_file()
