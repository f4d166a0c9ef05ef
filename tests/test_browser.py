"""The course in the interface learners use: JupyterLab in headless Chromium, driven by Playwright.

JupyterLab is started as `make lab` starts it (on a workspace copy of course/). Lesson 01 runs in
the browser; its figures and temperature slider render, and moving the slider redraws the plot.
nbgrader's Validate button passes a solved notebook and fails the untouched one. Screenshots are
kept in tests/artefacts/. Skipped, with the reason, where Chromium or Playwright is missing.
"""
import itertools
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest

from kdlib.workspace import sync_workspace

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed (pip install playwright)")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (Debian: apt-get install chromium)")

ROOT = Path(__file__).resolve().parents[1]
ARTEFACTS = ROOT / "tests" / "artefacts"
LESSON = "01_soft_targets"
TOKEN = "kdlib-browser-test"
ACTIVE_PANEL = ".jp-NotebookPanel:not(.lm-mod-hidden)"
WORKSPACES = itertools.count()


def solved_copy(lesson):
    """The learner notebook with every exercise answered by the solution's code."""
    solution = nbformat.read(ROOT / "solutions" / lesson / f"{lesson}.ipynb", as_version=4)
    answers = {c.metadata["nbgrader"]["grade_id"]: c.source for c in solution.cells
               if c.metadata.get("nbgrader", {}).get("solution")}
    notebook = nbformat.read(ROOT / "course" / lesson / f"{lesson}.ipynb", as_version=4)
    for cell in notebook.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id in answers:
            cell.source = re.sub(r"\s*### (BEGIN|END) SOLUTION", "", answers[grade_id])
    return notebook


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """JupyterLab serving a fresh workspace (as `make lab` makes it), with a solved copy of lesson 01."""
    tmp = tmp_path_factory.mktemp("lab")
    workspace = tmp / "workspace"
    sync_workspace(ROOT / "course", workspace)
    nbformat.write(solved_copy(LESSON), workspace / LESSON / "solved.ipynb")
    # the news pop-up would cover the screenshots
    settings = tmp / "settings" / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    settings.parent.mkdir(parents=True)
    settings.write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    port = free_port()
    bin_dir = str(Path(sys.executable).parent)
    env = dict(os.environ, JUPYTERLAB_SETTINGS_DIR=str(tmp / "settings"), PATH=bin_dir + os.pathsep + os.environ["PATH"])
    command = [sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={port}", "--ServerApp.ip=127.0.0.1",
               f"--IdentityProvider.token={TOKEN}", f"--notebook-dir={workspace}"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")  # as `make lab` does for root (containers, CI)
    server = subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(120):
        try:
            urllib.request.urlopen(f"{url}/api/status?token={TOKEN}", timeout=1)
            break
        except OSError:
            time.sleep(0.5)
    else:
        server.kill()
        pytest.fail("JupyterLab did not start within 60 s")
    yield url
    server.terminate()
    server.wait(timeout=30)


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"])
        yield chromium
        chromium.close()


def open_notebook(browser, lab, name):
    """A new page showing only ``name``: a workspace of its own, reset, so no earlier tab is restored over it."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    workspace = f"test-{next(WORKSPACES)}"
    page.goto(f"{lab}/lab/workspaces/{workspace}/tree/{LESSON}/{name}?reset&token={TOKEN}")
    page.wait_for_selector(ACTIVE_PANEL + " .jp-Notebook", timeout=60_000)
    page.wait_for_selector(ACTIVE_PANEL + " .jp-Spinner", state="detached", timeout=60_000)
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=60_000)
    tabs = page.locator(".jp-mod-current .lm-TabBar-tabLabel, .lm-TabBar-tab.lm-mod-current .lm-TabBar-tabLabel")
    assert name in tabs.all_inner_texts(), f"{name} is not the current tab: {tabs.all_inner_texts()}"
    return page


def run_all_cells(page):
    page.locator(ACTIVE_PANEL + " .jp-Notebook").click()
    page.get_by_role("menuitem", name="Run", exact=True).click()
    page.get_by_text("Run All Cells", exact=True).click()


def test_lesson_runs_and_the_temperature_slider_redraws_the_plot(lab, browser):
    ARTEFACTS.mkdir(exist_ok=True)
    page = open_notebook(browser, lab, "solved.ipynb")
    run_all_cells(page)
    page.get_by_text(re.compile(r"T = 20: mean entropy")).wait_for(timeout=240_000)  # the last cell's output
    assert page.locator(".jp-OutputArea-output img").count() >= 4, "the lesson's figures did not render"

    slider = page.locator(".widget-slider").first
    slider.scroll_into_view_if_needed()
    plot = page.locator(".widget-interact .jp-OutputArea-output img").first
    plot.wait_for(timeout=30_000)
    before = plot.get_attribute("src")
    page.screenshot(path=str(ARTEFACTS / "slider-before.png"))
    handle = slider.locator(".noUi-handle").first
    handle.focus()
    for _ in range(10):
        handle.press("ArrowRight")  # raise T
    page.wait_for_function("before => { const img = document.querySelector('.widget-interact .jp-OutputArea-output img');"
                           " return img && img.src !== before; }", arg=before, timeout=30_000)
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=60_000)
    page.screenshot(path=str(ARTEFACTS / "slider-after.png"))
    assert plot.get_attribute("src") != before
    page.close()


@pytest.mark.parametrize("name, verdict", [("solved.ipynb", ".validation-success"),
                                           (f"{LESSON}.ipynb", ".validation-failed")])
def test_validate_button_tells_solved_from_untouched(lab, browser, name, verdict):
    page = open_notebook(browser, lab, name)
    page.locator(ACTIVE_PANEL + " .validate-button").click()
    dialog = page.locator(".jp-Dialog")
    try:
        dialog.locator(verdict).wait_for(timeout=300_000)
    except sync_api.TimeoutError:  # say what the page showed instead: a wrong verdict, an error, or nothing
        page.screenshot(path=str(ARTEFACTS / f"validate-{Path(name).stem}-timeout.png"))
        shown = dialog.first.inner_text() if dialog.count() else "no dialog"
        pytest.fail(f"no {verdict} after 300 s; the page shows: {shown[:2000]}")
    page.screenshot(path=str(ARTEFACTS / f"validate-{Path(name).stem}.png"))
    if verdict == ".validation-success":
        assert "Success! Your notebook passes all the tests." in dialog.inner_text()
    else:
        assert "NotImplementedError" in dialog.inner_text()
    page.close()
