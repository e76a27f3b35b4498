"""The pytest plugin inside every ``check``: streams results, enforces time limits.

``coursekit`` runs exercise tests in a child process (a learner's module may
hang, crash, exit or leave threads behind; the notebook kernel must survive all
of it). This plugin, loaded in that child, writes one JSON line per event to the
file named by ``COURSEKIT_RESULTS`` as soon as it happens, so whatever the
learner's code does next, every finished result is already on disk:

``preflight`` / ``preflight_error``
    importing the learner's module first, to explain an import failure in the
    learner's own terms (their file, their line);
``collected``
    every test with its task, docstring, markers and time limit;
``start`` / ``result``
    one pair per test;
``finished``
    the session ended; with the threads and processes the learner's code left.

Each test phase (setup, call, teardown) gets a time limit (``time_limit``
marker, else ``COURSEKIT_TIME_LIMIT``): ``SIGALRM`` interrupts Python code that
loops or sleeps, and the parent kills the process if even that fails.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sys
import threading
import time
import traceback
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

import pytest

from coursekit.check_protocol import (
    DEEP_MARKER,
    DEFAULT_IMPORT_TIME_LIMIT_S,
    DEFAULT_TIME_LIMIT_S,
    IMPORT_TIME_LIMIT_ENV,
    PARENT_PID_ENV,
    PREFLIGHT_ENV,
    RESULTS_ENV,
    STAGE_ENV,
    TIME_LIMIT_ENV,
    TIME_LIMIT_MARKER,
)

_EXIT_STATUS = pytest.StashKey[int]()
_TASK = re.compile(r"^Task\s+(\d+)\s*[:.]\s*(.*)$")


class TimeLimitExceeded(BaseException):
    """Raised into a test that ran past its time limit.

    A BaseException, so that the learner's ``except Exception`` cannot swallow it.
    """


def _first_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[0] if lines else ""


class _Stream:
    """Append-only JSON lines, each written with one ``os.write`` (survives ``os._exit``)."""

    def __init__(self, path: str | None) -> None:
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600) if path else None

    def emit(self, event: str, **fields: Any) -> None:
        if self._fd is None:
            return
        line = json.dumps({"e": event, "t": time.monotonic(), **fields}) + "\n"
        os.write(self._fd, line.encode("utf-8", "replace"))


_stream = _Stream(os.environ.get(RESULTS_ENV))


def time_limit_of(item: pytest.Item) -> float:
    marker = item.get_closest_marker(TIME_LIMIT_MARKER)
    if marker is not None and marker.args:
        return float(marker.args[0])
    return float(os.environ.get(TIME_LIMIT_ENV, DEFAULT_TIME_LIMIT_S))


def task_of(item: pytest.Item) -> tuple[int, str]:
    """``(3, "the title")`` from a class docstring ``Task 3: the title.``; ``(0, "")`` if none."""
    cls = getattr(item, "cls", None)
    match = _TASK.match(_first_line(getattr(cls, "__doc__", None) or ""))
    if match is None:
        return 0, ""
    return int(match.group(1)), match.group(2).strip().rstrip(".")


def _describe(item: pytest.Item) -> dict[str, Any]:
    number, title = task_of(item)
    function = getattr(item, "function", None)
    return {
        "nodeid": item.nodeid,
        "task": number,
        "task_title": title,
        "doc": _first_line(getattr(function, "__doc__", None) or ""),
        "markers": sorted({marker.name for marker in item.iter_markers()}),
        "limit": time_limit_of(item),
    }


@contextmanager
def alarm(seconds: float, what: str) -> Iterator[None]:
    """Interrupt the main thread with :class:`TimeLimitExceeded` after ``seconds``."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def _expired(signum: int, frame: FrameType | None) -> None:
        message = f"{what} did not finish within {seconds:g} s"
        # Remembered here: the exception may surface as another one (an async
        # test runner turns it into ClosedResourceError, say).
        _fired.append(message)
        raise TimeLimitExceeded(message)

    previous = signal.signal(signal.SIGALRM, _expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


# ---- preflight: import the learner's module first ----------------------------------


def _learner_frame(tb: Any) -> tuple[str, int, str] | None:
    """The deepest traceback frame in the learner's exercise files."""
    found = None
    for frame in traceback.extract_tb(tb):
        normalized = frame.filename.replace(os.sep, "/")
        if "/exercises/" in normalized or normalized.startswith("exercises/"):
            found = (frame.filename, frame.lineno or 0, (frame.line or "").strip())
    return found


def _preflight(module: str) -> None:
    from coursekit.impl import load

    _stream.emit("preflight", module=module)
    try:
        limit = float(os.environ.get(IMPORT_TIME_LIMIT_ENV, DEFAULT_IMPORT_TIME_LIMIT_S))
        with alarm(limit, "importing your module"):
            load(module)
    except (Exception, SystemExit, TimeLimitExceeded) as exc:
        where = _learner_frame(exc.__traceback__)
        if isinstance(exc, TimeLimitExceeded):
            kind, message = "timeout", str(exc)
        elif isinstance(exc, SystemExit):
            kind = "exit"
            message = f"importing your module called sys.exit({exc.code!r}): remove that top-level call"
        else:
            kind, message = "import", f"{type(exc).__name__}: {exc}"
        _stream.emit(
            "preflight_error", kind=kind, message=message,
            file=where[0] if where else "", line=where[1] if where else 0, code=where[2] if where else "",
        )  # fmt: skip
        pytest.exit("the exercise module could not be imported", returncode=4)


# ---- hooks ----------------------------------------------------------------------------


def pytest_sessionstart(session: pytest.Session) -> None:
    _watch_parent()
    module = os.environ.get(PREFLIGHT_ENV)
    if module:
        _preflight(module)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    _stream.emit("collected", items=[_describe(item) for item in items])
    if os.environ.get(STAGE_ENV) == "fast":
        kept = [item for item in items if item.get_closest_marker(DEEP_MARKER) is None]
        dropped = [item for item in items if item.get_closest_marker(DEEP_MARKER) is not None]
        if dropped:
            config.hook.pytest_deselected(items=dropped)
        items[:] = kept


def pytest_runtest_logstart(nodeid: str, location: tuple[str, int | None, str]) -> None:
    _stream.emit("start", nodeid=nodeid)


# A test stopped at its time limit may leave the process in a bad state (an event
# loop interrupted half-way cannot run the next async test): its result is
# recorded, then this process leaves and the parent carries on in a new one.
_fired: list[str] = []


def _limited(item: pytest.Item, what: str) -> Generator[None, Any, Any]:
    with alarm(time_limit_of(item), what):
        return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Generator[None, Any, Any]:
    return (yield from _limited(item, "setting up the test"))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, Any, Any]:
    return (yield from _limited(item, "the test"))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Generator[None, Any, Any]:
    return (yield from _limited(item, "cleaning up after the test"))


def pytest_runtest_logfinish(nodeid: str, location: tuple[str, int | None, str]) -> None:
    if _fired:
        _stream.emit("abandon", nodeid=nodeid)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(3)


def _explain(report: pytest.TestReport | pytest.CollectReport) -> str:
    crash = getattr(report.longrepr, "reprcrash", None)
    if crash is not None:
        return str(crash.message)
    return str(report.longrepr or "")


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    # One result per test: the call phase, or setup when it failed or skipped
    # (then there is no call); a failing teardown turns a pass into a failure.
    is_result = (
        report.when == "call"
        or (report.when == "setup" and not report.passed)
        or (report.when == "teardown" and report.failed)
    )
    if not is_result:
        return
    printed = sum(len(content) for _, content in report.sections)
    message = _explain(report)[:4000] if report.failed else ""
    if _fired and report.failed:
        message = f"{_fired[0]} (an infinite loop, or a call that blocks?): it was stopped"
    _stream.emit(
        "result", nodeid=report.nodeid, when=report.when, outcome=report.outcome,
        message=message, printed=printed,
    )  # fmt: skip


def pytest_collectreport(report: pytest.CollectReport) -> None:
    if report.failed:
        _stream.emit("collect_error", nodeid=report.nodeid, message=_explain(report)[-4000:])


def _child_processes() -> list[str]:
    """Commands of processes whose parent is this one (Linux /proc; empty elsewhere)."""
    found = []
    me = str(os.getpid())
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[1] == me:
            try:
                found.append((stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip())
            except OSError:
                found.append("?")
    return found


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    threads = [
        t.name for t in threading.enumerate()
        if t is not threading.main_thread() and not t.daemon and t.is_alive()
    ]  # fmt: skip
    session.config.stash[_EXIT_STATUS] = int(exitstatus)
    _stream.emit("finished", exitstatus=int(exitstatus), threads=threads, children=_child_processes())


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    # Non-daemon threads the learner started would keep the interpreter from
    # exiting: every result is on disk already, so leave now, cleaning up first.
    leftover = [t for t in threading.enumerate() if t is not threading.main_thread() and not t.daemon]
    if leftover:
        from coursekit import runs

        runs._clean_up_owned_run()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(config.stash.get(_EXIT_STATUS, 1))


def _watch_parent() -> None:
    """If the process that started this run dies, take the whole process group down.

    The parent's pid comes from the environment: reading ``getppid()`` here could
    already see the reaper that adopted us if the parent was killed during start-up.
    """
    parent = int(os.environ.get(PARENT_PID_ENV, "0") or 0) or os.getppid()

    def watch() -> None:
        while True:
            time.sleep(0.5)
            if os.getppid() != parent:
                os.killpg(os.getpgrp(), signal.SIGKILL)

    if os.getpgrp() == os.getpid():  # only when we lead our own group (started by check)
        threading.Thread(target=watch, name="coursekit-parent-watch", daemon=True).start()
