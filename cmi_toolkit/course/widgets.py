"""ipywidgets for the notebooks: the CMI-weight explorer.

:class:`LambdaExplorer` shows a sweep over lambda (accuracy, CMI, NCMI) and marks the lambda
chosen on a slider; selectors pick the space and temperature among those the sweep holds; a
button trains one more model at the chosen setting (with a progress bar) and adds it to the
figure. :func:`show_sweep` is the static rendering used under papermill, where nothing may wait
for input.
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["LambdaExplorer", "show_sweep", "summary_html", "interactive", "progress_callback", "text_progress"]

TEMPERATURES = (0.05, 0.1, 0.2, 1.0)  # the temperatures the held-out search tries (cmi_toolkit.runs.search)


def interactive() -> bool:
    """True inside a live Jupyter front end; False under papermill, nbconvert/nbclient or plain Python.

    A kernel that a Jupyter server (JupyterLab, Notebook 7) starts for a session carries
    ``JPY_SESSION_NAME`` in its environment; papermill and nbclient start kernels without a
    server, so they never have it. ``CMI_TOOLKIT_INTERACTIVE=0/1`` overrides the guess.
    """
    import os

    forced = os.environ.get("CMI_TOOLKIT_INTERACTIVE")
    if forced is not None:
        return forced not in ("", "0", "false", "False")
    if os.environ.get("PAPERMILL_EXECUTION"):
        return False
    try:
        from IPython import get_ipython

        shell = get_ipython()
    except ImportError:
        return False
    if shell is None or type(shell).__name__ != "ZMQInteractiveShell":
        return False
    return bool(os.environ.get("JPY_SESSION_NAME") or os.environ.get("VSCODE_PID"))


def _key(row: dict) -> tuple[str, float]:
    return row["space"], float(row["temperature"])


def show_sweep(rows: list[dict], selected: float | None = None, space: str | None = None,
               temperature: float | None = None):
    """The sweep figure for one (space, temperature), as a static plotly figure."""
    from .figures import lambda_sweep_figure

    space = space or rows[0]["space"]
    temperature = rows[0]["temperature"] if temperature is None else temperature
    sel = [r for r in rows if _key(r) == (space, float(temperature))]
    majority = next((r["majority"] for r in rows if r.get("majority") is not None), None)
    return lambda_sweep_figure(sel, selected=selected, majority=majority,
                               title=f"{space} space, T = {temperature:g}: selected λ = {selected:g}"
                               if selected is not None else None)


def summary_html(rows: list[dict], space: str, temperature: float) -> str:
    """An HTML table of the sweep at one (space, T): per lambda, the models, mean accuracy and mean CMI."""
    import statistics

    sel = [r for r in rows if _key(r) == (space, float(temperature))]
    lines = ["<table><tr><th>λ</th><th>models</th><th>dev accuracy (mean)</th><th>CMI (mean)</th></tr>"]
    for lam in sorted({r["lambda"] for r in sel}):
        group = [r for r in sel if r["lambda"] == lam]
        lines.append(f"<tr><td>{lam:g}</td><td>{len(group)}</td>"
                     f"<td>{statistics.mean(r['accuracy'] for r in group):.4f}</td>"
                     f"<td>{statistics.mean(r['cmi'] for r in group):.4f}</td></tr>")
    return "".join(lines) + "</table>"


class LambdaExplorer:
    """Slider (lambda), selectors (space, temperature), a figure and a train button.

    Args:
        rows: sweep results, dicts with ``lambda``, ``space``, ``temperature``, ``accuracy``,
            ``cmi``, ``ncmi``.
        train_fn: ``train_fn(lambda, space, temperature, progress) -> row`` trains one more model;
            ``progress`` is an ipywidgets IntProgress it may advance.
    """

    def __init__(self, rows: list[dict], train_fn: Callable | None = None):
        import ipywidgets as w

        self.rows = list(rows)
        self.train_fn = train_fn
        self.figure = None  # the figure on screen (None: none)
        self._updating = False
        lams = sorted({r["lambda"] for r in rows})
        self.slider = w.SelectionSlider(options=[(f"{x:g}", x) for x in lams], value=lams[len(lams) // 2],
                                        description="λ (CMI weight)", continuous_update=False,
                                        style={"description_width": "initial"}, layout={"width": "420px"})
        # real choices: both spaces and the kit's temperature grid, whatever the sweep holds so far
        spaces = sorted({"feature", "output", *(r["space"] for r in rows)})
        temps = sorted({*TEMPERATURES, *(float(r["temperature"]) for r in rows)})
        first = rows[0]
        self.space = w.Dropdown(options=spaces, value=first["space"], description="space")
        self.temperature = w.Dropdown(options=temps, value=float(first["temperature"]), description="T")
        self.new_lambda = w.BoundedFloatText(value=lams[-1] * 2 if lams[-1] > 0 else 0.1, min=0.0, max=100.0,
                                             step=0.05, description="train at λ")
        self.button = w.Button(description="train one more model", button_style="primary", icon="play",
                               layout={"width": "auto"})
        self.progress = w.IntProgress(value=0, min=0, max=100, description="", layout={"width": "300px"})
        self.status = w.HTML()
        self.summary = w.HTML()
        self.out = w.Output()
        for control in (self.slider, self.space, self.temperature):
            control.observe(lambda _change: self.render(), names="value")
        self.button.on_click(self._train)
        self.widget = w.VBox([w.HBox([self.slider, self.space, self.temperature]),
                              w.HBox([self.new_lambda, self.button, self.progress]), self.status, self.out,
                              self.summary])
        self.render()

    def render(self) -> None:
        """Show the figure and table of the current selection; the previous figure never stays on screen."""
        if self._updating:  # the controls are being changed together (after training): render once, at the end
            return
        setting = (self.space.value, float(self.temperature.value))
        if not any(_key(r) == setting for r in self.rows):
            self.figure = None
            self.out.clear_output()  # at once: a figure of another setting must not stay under this one's name
            self.summary.value = ""
            self.status.value = (f"no model at {setting[0]} space, T = {setting[1]:g} yet: "
                                 "press 'train one more model' to train one")
            return
        self.summary.value = summary_html(self.rows, *setting)
        self.figure = show_sweep(self.rows, self.slider.value, self.space.value, self.temperature.value)
        self.out.clear_output()
        with self.out:
            self.figure.show()

    def _train(self, _button) -> None:
        if self.train_fn is None:
            self.status.value = "no training function was given"
            return
        import html

        lam = float(self.new_lambda.value)
        self.button.disabled = True
        self.status.value = f"training at λ = {lam:g} ..."
        try:
            row = self.train_fn(lam, self.space.value, float(self.temperature.value), self.progress)
        except Exception as exc:  # noqa: BLE001 - shown in the widget, not as a traceback in the log console
            self.status.value = (f"<span style='color:#b00020'>training at λ = {lam:g} failed: "
                                 f"{html.escape(' '.join(str(exc).split()) or type(exc).__name__)}</span>")
            return
        finally:
            self.button.disabled = False
        # a retrained (lambda, seed) replaces its old point instead of adding a duplicate
        self.rows = [r for r in self.rows if not (r["lambda"] == row["lambda"] and _key(r) == _key(row)
                                                  and r.get("seed") == row.get("seed"))] + [row]
        self._updating = True
        try:
            self.slider.options = [(f"{x:g}", x) for x in sorted({r["lambda"] for r in self.rows})]
            self.slider.value = lam
        finally:
            self._updating = False
        self.render()  # once, with the new model in both the figure and the table
        self.status.value = f"λ = {lam:g}: accuracy {row['accuracy']:.4f}, CMI {row['cmi']:.4f}"

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)


def text_progress(desc: str):
    """A TrainerCallback drawing one tqdm bar over a run's optimiser steps (a notebook shows it as one bar)."""
    from tqdm.auto import tqdm
    from transformers import TrainerCallback

    class _Bar(TrainerCallback):
        bar = None

        def on_train_begin(self, args, state, control, **kwargs):
            self.bar = tqdm(total=max(int(state.max_steps), 1), desc=desc, unit="step")

        def on_step_end(self, args, state, control, **kwargs):
            if self.bar is not None:
                self.bar.update(int(state.global_step) - self.bar.n)

        def on_train_end(self, args, state, control, **kwargs):
            if self.bar is not None:
                self.bar.close()

    return _Bar()


def progress_callback(bar):
    """A TrainerCallback that moves an ipywidgets IntProgress (or anything with value/max) along training."""
    from transformers import TrainerCallback

    class _Progress(TrainerCallback):
        def on_train_begin(self, args, state, control, **kwargs):
            bar.max, bar.value = max(int(state.max_steps), 1), 0

        def on_step_end(self, args, state, control, **kwargs):
            bar.value = int(state.global_step)

    return _Progress()
