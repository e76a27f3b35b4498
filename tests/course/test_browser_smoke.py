"""A real browser: JupyterLab runs notebook 00 in headless Chromium, and the course website opens.

What no kernel-level test sees: the lab serves the course, opens a notebook,
its kernel runs every cell and the outputs reach the page; the built website
(`make site`) shows the course map and the notebook pages.

Run with `make test-browser` (after `make site`). Chromium comes from the system
(Debian: `apt-get install chromium`); without it these tests skip, unless
COURSE_REQUIRE_BROWSER=1 (CI), where a missing browser or site is a failure.
The browser is driven over the Chrome DevTools Protocol (websocket-client, in
the lock as a JupyterLab dependency). Lab, kernels and browser are always
stopped, also on failure.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped]  # no stubs; only process-tree helpers are used
import pytest

from coursekit import paths

pytestmark = pytest.mark.browser

REQUIRE_ENV = "COURSE_REQUIRE_BROWSER"
BROWSERS = ("chromium", "chromium-browser", "google-chrome")
# Stable lines of notebook 00's outputs (no timings): they only appear once its cells ran.
EXPECTED_LINES = (
    "total        103,798 rows, the same as the CSV files: True",
    "every test of the 2 tasks passed on the reference solution: True",
)
NOTEBOOK = "00-welcome.ipynb"
RUN_TIMEOUT_S = 120


def unavailable(reason: str) -> None:
    """Skip where the browser is optional; fail in CI, which installs it."""
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{reason} ({REQUIRE_ENV}=1: CI must run this test)", pytrace=False)
    pytest.skip(reason)


def chromium_path() -> str:
    for name in BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    unavailable("Chromium is not installed (Debian: apt-get install chromium)")
    raise AssertionError("unreachable")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def wait_until(condition: Any, what: str, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with suppress(Exception):
            value = condition()
            if value:
                return value
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def stop_tree(process: subprocess.Popen[bytes]) -> None:
    """Stop a process, its process group and every descendant (kernels run in their own sessions)."""
    try:
        descendants = psutil.Process(process.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        descendants = []
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    for child in descendants:
        with suppress(psutil.NoSuchProcess):
            child.terminate()
    _, alive = psutil.wait_procs(descendants, timeout=5)
    for child in alive:
        with suppress(psutil.NoSuchProcess):
            child.kill()
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=5)


class DevTools:
    """The few Chrome DevTools Protocol calls the test needs, on one page."""

    def __init__(self, websocket_url: str) -> None:
        import websocket

        self.socket = websocket.create_connection(websocket_url, timeout=30, suppress_origin=True)
        self.last_id = 0

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        self.last_id += 1
        self.socket.send(json.dumps({"id": self.last_id, "method": method, "params": params}))
        while True:  # events arrive in between; only our answer matters
            message = json.loads(self.socket.recv())
            if message.get("id") == self.last_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                result: dict[str, Any] = message["result"]
                return result

    def evaluate(self, expression: str) -> Any:
        answer = self.call("Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True)
        if "exceptionDetails" in answer:
            raise RuntimeError(f"{expression[:60]}: {answer['exceptionDetails'].get('text')}")
        return answer["result"].get("value")

    def open(self, url: str) -> None:
        self.call("Page.navigate", url=url)
        time.sleep(0.2)  # let the old document go before asking whether the new one is ready
        wait_until(lambda: self.evaluate("document.readyState") == "complete", f"{url} to load", 30)

    def close(self) -> None:
        self.socket.close()


@contextmanager
def chromium() -> Iterator[DevTools]:
    """Headless Chromium with a fresh profile; flags keep it off the network but for localhost."""
    with tempfile.TemporaryDirectory(prefix="course-chromium-") as profile:
        command = [
            chromium_path(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
            "--no-first-run", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--disable-dev-shm-usage", f"--user-data-dir={profile}",
            "--remote-debugging-port=0", "--window-size=1280,1000", "about:blank",
        ]  # fmt: skip
        browser = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )
        devtools: DevTools | None = None
        try:
            active = Path(profile, "DevToolsActivePort")
            port = wait_until(lambda: active.read_text().split()[0], "Chromium's DevTools port", 30)
            targets = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10))
            page = next(t for t in targets if t.get("type") == "page")
            devtools = DevTools(page["webSocketDebuggerUrl"])
            devtools.call("Page.enable")
            devtools.call("Runtime.enable")
            yield devtools
        finally:
            if devtools is not None:
                devtools.close()
            stop_tree(browser)


@contextmanager
def jupyterlab(notebook_dir: Path) -> Iterator[str]:
    """JupyterLab on a free port with a random token, course folder as root; yields the notebook's URL."""
    port, token = free_port(), secrets.token_hex(16)
    with tempfile.TemporaryDirectory(prefix="course-lab-") as state:
        env = {**os.environ, "JUPYTER_RUNTIME_DIR": state, "JUPYTERLAB_WORKSPACES_DIR": state}
        command = [
            sys.executable, "-m", "jupyter", "lab", "--no-browser", f"--port={port}", "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.token={token}", f"--ServerApp.root_dir={paths.ROOT}",
            "--LabApp.expose_app_in_browser=True",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        ]  # fmt: skip
        if os.geteuid() == 0:  # containers and CI often run as root; the lab refuses unless told
            command.append("--allow-root")
        lab = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, start_new_session=True
        )
        base = f"http://127.0.0.1:{port}"
        try:
            status_url = f"{base}/api/status?token={token}"
            wait_until(lambda: urllib.request.urlopen(status_url, timeout=2).status == 200, "JupyterLab", 60)
            relative = (notebook_dir / NOTEBOOK).relative_to(paths.ROOT).as_posix()
            yield f"{base}/lab/tree/{relative}?token={token}"
        finally:
            # The server's own shutdown stops its kernels; stop_tree makes sure of everything.
            with suppress(Exception):
                shutdown = urllib.request.Request(f"{base}/api/shutdown?token={token}", method="POST")
                urllib.request.urlopen(shutdown, timeout=5)
                lab.wait(timeout=10)
            stop_tree(lab)


def notebook_without_outputs(folder: Path) -> Path:
    """A copy of notebook 00 with no stored outputs: whatever the page shows, the kernel just produced."""
    notebook = json.loads((paths.NOTEBOOKS_DIR / NOTEBOOK).read_text())
    for cell in notebook["cells"]:
        if cell["cell_type"] == "code":
            cell["outputs"], cell["execution_count"] = [], None
    target = folder / NOTEBOOK
    target.write_text(json.dumps(notebook, indent=1) + "\n")
    return target


# JupyterLab's page (app exposed as window.jupyterapp): the open notebook and its kernel.
# The notebook panel is looked up among the main area's widgets: a headless page has
# no focus, so the shell's "current widget" can stay empty.
NOTEBOOK_PANEL = (
    "(window.jupyterapp && Array.from(jupyterapp.shell.widgets('main')).find(w => w.sessionContext && w.content))"
)
KERNEL_IDLE = """(() => {
  const w = PANEL; const k = w && w.sessionContext.session && w.sessionContext.session.kernel;
  return !!(k && k.status === 'idle' && w.content.widgets.length);
})()""".replace("PANEL", NOTEBOOK_PANEL)
RUN_ALL = """(() => {
  jupyterapp.shell.activateById(PANEL.id);
  jupyterapp.commands.execute('notebook:run-all-cells');
  return true;
})()""".replace("PANEL", NOTEBOOK_PANEL)
CELL_STATE = """(() => {
  const cells = PANEL.content.widgets.filter(c => c.model.type === 'code');
  const prompts = [...document.querySelectorAll('.jp-InputArea-prompt')];
  return {code: cells.length, run: cells.filter(c => c.model.executionCount !== null).length,
          busy: prompts.some(p => p.textContent.includes('*'))};
})()""".replace("PANEL", NOTEBOOK_PANEL)
# The text of every output area, as the page renders it. JupyterLab renders only the cells
# near the viewport, so each code cell is scrolled into view before its outputs are read.
OUTPUT_TEXT = """(async () => {
  const panel = PANEL; const texts = [];
  for (const [index, cell] of panel.content.widgets.entries()) {
    if (cell.model.type !== 'code') continue;
    await panel.content.scrollToItem(index, 'center');
    await new Promise(resolve => setTimeout(resolve, 50));
    texts.push(cell.outputArea.node.innerText);
  }
  return texts.join('\\n');
})()""".replace("PANEL", NOTEBOOK_PANEL)
# Error outputs, from the notebook's model (complete, whatever is scrolled into view).
ERROR_OUTPUTS = """PANEL.content.widgets.filter(c => c.model.type === 'code')
  .flatMap(c => c.model.outputs.toJSON()).filter(o => o.output_type === 'error')
  .map(o => o.ename + ': ' + o.evalue)""".replace("PANEL", NOTEBOOK_PANEL)


def test_jupyterlab_runs_notebook_00_in_a_real_browser() -> None:
    """Notebook 00 opened in JupyterLab, run with 'Run All Cells': every cell runs, outputs show, no error."""
    chromium_path()  # skip (or fail in CI) before starting anything
    folder = paths.work_dir("browser-smoke", f"run-{os.getpid()}-{secrets.token_hex(4)}")
    try:
        notebook_without_outputs(folder)
        with jupyterlab(folder) as notebook_url, chromium() as browser:
            browser.open(notebook_url)
            wait_until(lambda: browser.evaluate(KERNEL_IDLE), "the notebook and an idle kernel", 90)
            browser.evaluate(RUN_ALL)

            def finished() -> dict[str, Any] | None:
                state: dict[str, Any] = browser.evaluate(CELL_STATE)
                done = state["run"] == state["code"] and not state["busy"] and browser.evaluate(KERNEL_IDLE)
                return state if done else None

            state = wait_until(finished, "every cell of notebook 00 to run", RUN_TIMEOUT_S)
            assert state["code"] > 10, f"notebook 00 should have its code cells, the page shows {state}"
            shown = browser.evaluate(OUTPUT_TEXT)
            for line in EXPECTED_LINES:
                assert line in shown, f"expected {line!r} in the outputs on the page; they were:\n{shown[-2000:]}"
            assert browser.evaluate(ERROR_OUTPUTS) == [], "a cell of notebook 00 ended in an error"
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def built_site() -> Path:
    site = Path(os.environ.get("COURSE_WORK_DIR", paths.ROOT / "work")) / "site" / "html"
    if not (site / "index.html").is_file():
        unavailable("the course website is not built (make site)")
    return site


def test_the_course_website_opens_in_a_real_browser() -> None:
    """The built site's landing page is the README's course map; a notebook page shows its outputs and stub link."""
    site = built_site()
    with chromium() as browser:
        browser.open((site / "index.html").as_uri())
        assert browser.evaluate("document.title") == "Backend Python Architect"
        assert browser.evaluate("document.querySelector('main h1').innerText") == "Backend Python Architect"
        headings = browser.evaluate("[...document.querySelectorAll('main h2')].map(h => h.innerText)")
        assert "Course map" in headings, headings
        map_links = browser.evaluate("[...document.querySelectorAll('main table a')].map(a => a.innerText)")
        assert "welcome" in map_links, map_links

        # Follow the course map, as a reader would, to notebook 00's page.
        browser.open(browser.evaluate("[...document.querySelectorAll('main table a')][0].href"))
        assert browser.evaluate("document.querySelector('main h1').innerText").startswith("00 · Welcome")
        assert "103,798 rows" in browser.evaluate("document.querySelector('main').innerText")
        plot_loaded = "[...document.querySelectorAll('.outputs img')].some(i => i.complete && i.naturalWidth > 0)"
        assert browser.evaluate(plot_loaded), "the stored plot should show on notebook 00's page"
        stub = browser.evaluate("document.querySelector('a.exercise').getAttribute('href')")
        assert stub == "exercises/ex00_warmup.py"
        assert (site / stub).read_text() == (paths.EXERCISES_DIR / "ex00_warmup.py").read_text()
