"""End to end in a real browser: JupyterLab + headless Chromium. Notebook 01 in smoke mode: move the slider,
train one more model, answer the exercise and see its check pass; modules 00, 04 and 06: type a typical wrong
answer into an exercise, see the check's hint, then the right one and see it pass; the rendered course."""

from __future__ import annotations

import contextlib
import inspect
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from .conftest import REPO

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = pytest.mark.browser


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _need_browser() -> None:
    """Skip without Chromium and playwright, except in CI, which must have them."""
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail("CI must run the browser test: .ci/run installs Chromium (make browser-deps)")
        pytest.skip("Chromium not installed (apt-get install chromium, or `make browser-deps` as root)")
    pytest.importorskip("playwright")


@contextlib.contextmanager
def _jupyterlab(work: Path, tmp_path: Path):
    """A JupyterLab server on ``work`` (every cell attached and laid out); yields (base URL, token)."""
    port, token = _free_port(), secrets.token_hex(8)
    # every cell attached and laid out (JupyterLab's default skips off-screen cells, which then count as invisible)
    settings = tmp_path / "settings" / "@jupyterlab" / "notebook-extension"
    settings.mkdir(parents=True, exist_ok=True)
    (settings / "tracker.jupyterlab-settings").write_text('{"windowingMode": "none"}')
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
           "JUPYTERLAB_SETTINGS_DIR": str(tmp_path / "settings")}
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}", "--allow-root",
         f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={work}", "--LabApp.news_url=",
         "--ServerApp.open_browser=False"],
        cwd=work, env=env, stdout=subprocess.DEVNULL, stderr=open(tmp_path / "lab.log", "w"), start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2)
                break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail("JupyterLab did not start: " + (tmp_path / "lab.log").read_text()[-2000:])
        yield base, token
    finally:  # the server and its kernels, even when a failed test left a kernel busy
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pass
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGKILL)
        server.wait(timeout=30)


def _chromium_page(p):
    browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
        "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"])
    return browser, browser.new_page(viewport={"width": 1400, "height": 1000})


def _type_into_cell(page, marker: str, text: str) -> None:
    """Replace the source of the first code cell containing ``marker`` by ``text`` and run it and the next cell
    (an exercise's answer cell, then its check cell), as a student does with Shift+Enter twice."""
    cell = page.locator(".jp-CodeCell").filter(has=page.locator(".cm-content", has_text=marker)).first
    cell.scroll_into_view_if_needed()
    cell.locator(".cm-content").click()
    page.keyboard.press("Control+A")
    page.keyboard.insert_text(text)
    page.keyboard.press("Shift+Enter")
    page.keyboard.press("Shift+Enter")


@pytest.fixture()
def lab(tmp_path, glue_dir):
    _need_browser()
    import papermill as pm

    work = tmp_path / "lab"
    work.mkdir()
    pm.execute_notebook(str(REPO / "notebooks" / "01_finetune_with_cmi.ipynb"), str(work / "01.ipynb"),
                        parameters={"smoke": True, "glue_dir": str(glue_dir), "output_dir": str(work / "out"),
                                    "figures_dir": str(work / "figures")}, prepare_only=True)
    with _jupyterlab(work, tmp_path) as (base, token):
        yield f"{base}/lab/tree/01.ipynb?token={token}", work


# what a student types into the exercise cell of notebook 01 (the solution of notebooks/solutions/solutions.py)
ANSWER = """import torch
import torch.nn.functional as F


def cmi_loss(logits, features, labels, centroids, lam, T):
    q = torch.softmax(features / T, -1)
    kl = (q * (q.log() - centroids[labels].log())).sum(-1).mean()
    return F.cross_entropy(logits, labels) + lam * kl
"""


def _title(page) -> str:
    return page.locator(".widget-output .js-plotly-plot .gtitle").first.text_content(timeout=5000) or ""


def test_lambda_slider_changes_the_figure(lab, tmp_path):
    from playwright.sync_api import sync_playwright

    url, work = lab
    with sync_playwright() as p:
        browser, page = _chromium_page(p)
        try:
            page.goto(url)
            page.locator(".jp-Notebook").wait_for(timeout=60_000)
            page.get_by_text(re.compile(r"Python 3 \(ipykernel\) \| Idle")).first.wait_for(timeout=90_000)
            page.get_by_role("menuitem", name="Run", exact=True).click()
            page.get_by_role("menuitem", name=re.compile(r"^Run All Cells")).click()
            page.locator(".jp-InputPrompt:has-text('[1]')").first.wait_for(timeout=60_000)  # execution started
            slider = page.locator(".widget-slider, .widget-hslider").first
            slider.wait_for(timeout=300_000)  # smoke loads three cached runs (the kernel's imports take the time)
            page.locator(".widget-output .js-plotly-plot").first.wait_for(timeout=60_000)
            before = _title(page)
            assert "selected λ = 0.1" in before
            handle = page.locator(".widget-slider .noUi-handle, .widget-hslider .noUi-handle").first
            handle.focus()
            handle.press("ArrowRight")
            page.wait_for_function(
                "prev => { const t = document.querySelector('.widget-output .js-plotly-plot .gtitle');"
                " return t && t.textContent !== prev; }", arg=before, timeout=60_000)
            after = _title(page)
            # the real "train one more model" path: it trains at the λ in the box and the figure gains the point
            page.get_by_role("button", name="train one more model").click()
            page.get_by_text(re.compile(r"λ = 2: accuracy")).first.wait_for(timeout=240_000)
            page.wait_for_function(
                "() => { const t = document.querySelector('.widget-output .js-plotly-plot .gtitle');"
                " return t && t.textContent.includes('selected λ = 2'); }", timeout=60_000)
            points = page.evaluate("() => document.querySelector('.widget-output .js-plotly-plot').data[0].x.length")
            # the exercise: unanswered it says "not attempted yet"; a student types the answer, runs it and the check
            unanswered = page.get_by_text("cmi_loss: not attempted yet").first
            unanswered.wait_for(state="attached", timeout=120_000)
            unanswered.scroll_into_view_if_needed()
            _type_into_cell(page, "def cmi_loss(", ANSWER)  # run the answer, then the check below it
            page.get_by_text("✓ cmi_loss: right").first.wait_for(state="attached", timeout=60_000)
            page.screenshot(path=str(tmp_path / "lab.png"))
        finally:
            page.screenshot(path=str(tmp_path / "lab_end.png"))
            browser.close()
    assert after != before and "selected λ = 1" in after
    assert points == 4  # the three cached smoke λ values and the one trained by the button
    assert (work / "out" / "metrics.json").is_file()  # the notebook ran to the end in the browser


def test_the_rendered_course_shows_a_module_with_its_figure_and_exercise_checks(tmp_path):
    """`make course`'s pages: an executed module rendered to HTML opens offline in Chromium with its figure (the
    PNG) and both exercise checks with their messages; the index links to it."""
    _need_browser()
    import papermill as pm
    from playwright.sync_api import sync_playwright

    from cmi_toolkit.cli import main

    executed = tmp_path / "executed"
    executed.mkdir()
    pm.execute_notebook(str(REPO / "notebooks" / "00_markov_source_view.ipynb"),
                        str(executed / "00_markov_source_view.ipynb"),
                        parameters={"smoke": True, "output_dir": str(tmp_path / "out")}, cwd=str(REPO / "notebooks"),
                        kernel_name="python3", progress_bar=False)
    assert main(["course", "--executed", str(executed), "--out", str(tmp_path / "course")]) == 0
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        page = browser.new_page()
        refused: list[str] = []  # offline: nothing may be fetched
        page.route(re.compile(r"^(?!file:).*"), lambda route: (refused.append(route.request.url), route.abort()))
        page.goto((tmp_path / "course" / "index.html").as_uri())
        page.click("text=00 · A classifier as a Markov source")
        page.wait_for_load_state()
        # the formulas, typeset by the MathJax copy beside the page (no network), not left as TeX source
        page.wait_for_function("() => document.querySelectorAll('.MathJax, .MathJax_Display').length > 20",
                               timeout=60_000)
        images = page.eval_on_selector_all("img", "els => els.filter(e => e.naturalWidth > 100).length")
        text = page.inner_text("body")
        browser.close()
    assert images >= 1, "the module's figure is not shown"
    assert not refused, f"the page asked the network for {refused[:3]}"
    assert not re.search(r"\\(mathbb|frac|mathrm|sum)\b", text), "a formula is shown as TeX source"
    assert 'check("plugin_cmi", plugin_cmi)' in text and 'check("cmi_from_entropies", cmi_from_entropies)' in text
    assert text.count("not attempted yet") == 2  # each check's message, as a student who has not answered sees it


# a typical mistake per module, as a student would type it (each check must name what is wrong and give a hint)
WRONG_ANSWERS = {
    "00_markov_source_view": ("plugin_cmi", """import torch


def plugin_cmi(probs, labels, num_classes):
    g = probs.mean(0)  # one centroid for every class
    return (probs * (probs.log() - g.log())).sum(-1).mean()
"""),
    "04_teacher_student_kd": ("kd_loss", """import torch
import torch.nn.functional as F


def kd_loss(student_logits, teacher_logits, labels, alpha, T):
    kl = F.kl_div(torch.log_softmax(student_logits / T, -1), torch.softmax(teacher_logits / T, -1),
                  reduction="batchmean")
    return alpha * kl + (1 - alpha) * F.cross_entropy(student_logits, labels)
"""),
    "06_reproduce_glue": ("paired_interval", """def paired_interval(method, baseline):
    d = [a - b for a, b in zip(method, baseline)]
    mean = sum(d) / len(d)
    return mean - 0.01, mean + 0.01
"""),
}


def _right_answer(name: str) -> str:
    """The solution of exercise ``name`` as a student would type it: the imports it needs, then its function."""
    sys.path.insert(0, str(REPO / "notebooks" / "solutions"))
    try:
        import solutions
    finally:
        sys.path.pop(0)
    return "import math\n\nimport torch\nimport torch.nn.functional as F\n\n\n" + inspect.getsource(getattr(solutions, name))


def test_exercises_in_three_modules_reject_a_wrong_answer_with_its_hint_then_accept_the_right_one(tmp_path):
    _need_browser()
    from playwright.sync_api import sync_playwright

    work = tmp_path / "course"
    work.mkdir()
    for module in WRONG_ANSWERS:
        shutil.copy(REPO / "notebooks" / f"{module}.ipynb", work / f"{module}.ipynb")
    seen = {}
    with _jupyterlab(work, tmp_path) as (base, token), sync_playwright() as p:
        browser, page = _chromium_page(p)
        try:
            for i, (module, (name, wrong)) in enumerate(WRONG_ANSWERS.items()):
                # a fresh workspace per module: otherwise JupyterLab restores the previous module's tab beside it
                page.goto(f"{base}/lab/workspaces/module{i}/tree/{module}.ipynb?reset&token={token}")
                page.locator(".jp-Notebook").wait_for(timeout=60_000)
                page.get_by_text(re.compile(r"Python 3 \(ipykernel\) \| Idle")).first.wait_for(timeout=90_000)
                assert page.locator(".jp-NotebookPanel").count() == 1, "another module's tab is open beside it"
                _type_into_cell(page, f"def {name}(", wrong)
                no = page.get_by_text(re.compile(rf"✗ {name}: not yet: .*Hint: ")).first
                no.wait_for(state="attached", timeout=120_000)
                told = no.text_content()  # before the right answer replaces the check's output
                _type_into_cell(page, f"def {name}(", _right_answer(name))
                yes = page.get_by_text(f"✓ {name}: right").first
                yes.wait_for(state="attached", timeout=120_000)
                seen[module] = (told, yes.text_content())
                page.screenshot(path=str(tmp_path / f"{module}.png"))
                page.keyboard.press("Control+s")  # leave no "unsaved changes" dialog behind
        finally:
            browser.close()
    assert set(seen) == set(WRONG_ANSWERS)
    for module, (no, yes) in seen.items():
        assert "yours gives" in no and "the kit" in no, f"{module}: the wrong answer's message names no values"
        assert "matches the kit's implementation" in yes, f"{module}: the right answer's message"


def test_the_offline_index_opens_every_page_with_its_figures_and_no_network():
    """docs/index.html in headless Chromium with every network request refused: it and every page it links (the
    course's modules, the kit's pages) load, every figure on them is drawn, every local link of every page points
    to a file that exists, and no request left the machine."""
    _need_browser()
    from playwright.sync_api import sync_playwright

    index = REPO / "docs" / "index.html"
    refused: list[str] = []
    with sync_playwright() as p:
        browser, page = _chromium_page(p)
        page.route(re.compile(r"^(?!file:).*"), lambda route: (refused.append(route.request.url), route.abort()))
        try:
            page.goto(index.as_uri())
            links = page.eval_on_selector_all("a[href]", "els => els.map(e => e.href)")
            pages = sorted({u.split("#")[0] for u in links})
            assert any("/course/" in u for u in pages) and any(u.endswith("/results.html") for u in pages)
            for url in pages:
                assert url.startswith("file://"), f"the index links {url}, which needs a network"
                response = page.goto(url)
                assert response is None or response.ok, f"{url} did not load"
                assert page.title(), f"{url} has no title"
                broken = page.eval_on_selector_all("img", "els => els.filter(e => !e.complete || e.naturalWidth === 0)"
                                                          ".map(e => e.getAttribute('src'))")
                assert not broken, f"{url}: figures not drawn: {broken}"
                for href in page.eval_on_selector_all("a[href]", "els => els.map(e => e.href)"):
                    if href.startswith("file://"):
                        target = Path(href.split("#")[0].removeprefix("file://"))
                        assert target.exists(), f"{url} links {href}, which does not exist"
        finally:
            browser.close()
    assert not refused, f"the pages asked the network for {refused[:3]}"
