"""Run a learner's ex07 test suite against the correct cart service and each seeded fault.

Started by ``tests/exercises/test_ex07_testing_strategies.py`` as a child process
(``python run_suite.py TEST_FILE RESULTS_FILE``): one process, one ``pytest.main``
per service, so the suite's start-up (pytest, hypothesis, anyio) is paid once.
Before each run the service module ``<package>.cart`` is replaced in
``sys.modules`` by the correct source or a faulty copy (``faults.toml``: an edit of
the source each), and every module of the learner's package is dropped, so the test
file imports the service afresh. One JSON line per service goes to RESULTS_FILE as
soon as its run ends: a suite that hangs later loses nothing already graded.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import sys
import time
import tomllib
import types
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
FAULTS = HERE / "faults.toml"
TEST_TIME_LIMIT_S = float(os.environ.get("EX07_TEST_TIME_LIMIT", "3"))


class TestTookTooLong(BaseException):
    """Raised into a learner's test that runs past its limit (BaseException: not swallowed)."""


def load_faults() -> list[dict[str, Any]]:
    return list(tomllib.loads(FAULTS.read_text(encoding="utf-8"))["fault"])


def faulty_source(source: str, fault: dict[str, Any]) -> str:
    count = source.count(fault["old"])
    if count != 1:
        raise ValueError(
            f"fault {fault['name']!r} does not apply: its text occurs {count} times in cart.py "
            "(was cart.py changed? it is given code: restore it)"
        )
    return source.replace(fault["old"], fault["new"])


class Recorder:
    """Collects one outcome per test, and the collection errors."""

    def __init__(self, leave_out: frozenset[str] = frozenset()) -> None:
        self.outcomes: dict[str, dict[str, str]] = {}
        self.errors: list[str] = []
        self.leave_out = leave_out  # tests that failed on the correct service: they catch nothing

    def pytest_collection_modifyitems(self, config: pytest.Config, items: list[pytest.Item]) -> None:
        left_out = [item for item in items if item.nodeid in self.leave_out]
        if left_out:
            config.hook.pytest_deselected(items=left_out)
            items[:] = [item for item in items if item.nodeid not in self.leave_out]

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        final = (
            report.when == "call"
            or (report.when == "setup" and not report.passed)
            or (report.when == "teardown" and report.failed)
        )
        if final:
            crash = getattr(report.longrepr, "reprcrash", None)
            message = str(crash.message) if crash is not None else str(report.longrepr or "")
            self.outcomes[report.nodeid] = {
                "outcome": report.outcome,
                "message": message[:500] if report.failed else "",
            }

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            # pytest's own lines of the import traceback say nothing to the learner: keep its
            # "E " lines (the error, and for a SyntaxError the line and the caret).
            lines = str(report.longrepr).splitlines()
            explained = [line[1:].strip() for line in lines if line.startswith("E ")]
            self.errors.append("\n".join(explained[-6:] or lines[-6:]))

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Generator[None, Any, Any]:
        def expired(signum: int, frame: object) -> None:
            raise TestTookTooLong(f"the test did not finish within {TEST_TIME_LIMIT_S:g} s")

        previous = signal.signal(signal.SIGALRM, expired)
        signal.setitimer(signal.ITIMER_REAL, TEST_TIME_LIMIT_S)
        try:
            return (yield)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)


def install_service(package: str, path: Path, source: str) -> None:
    """Forget the learner's package, then register ``source`` as ``<package>.cart``."""
    for name in [n for n in sys.modules if n == package or n.startswith(package + ".")]:
        del sys.modules[name]
    module = types.ModuleType(f"{package}.cart")
    module.__file__ = str(path)
    module.__package__ = package
    sys.modules[module.__name__] = module  # dataclasses look their module up while it runs
    exec(compile(source, str(path), "exec"), module.__dict__)


def run_once(
    test_file: Path, root: Path, uses_hypothesis: bool, leave_out: frozenset[str], *, explain: bool
) -> Recorder:
    recorder = Recorder(leave_out)
    hypothesis = ["-p", "_hypothesis_pytestplugin", "--hypothesis-seed=0"] if uses_hypothesis else []
    # Only the run on the correct service has failures worth explaining to the learner: the
    # faulty runs need pass or fail, and skip pytest's assertion rewriting (a third of a run).
    assertions = [] if explain else ["--assert=plain"]
    args = [
        str(test_file), "-q", "-p", "no:cacheprovider", "-p", "anyio", *hypothesis, *assertions,
        "-p", "no:doctest", "-p", "no:junitxml", "-p", "no:pastebin", "-p", "no:legacypath",
        "-c", str(HERE / "pytest.ini"), "--rootdir", str(root), "--confcutdir", str(test_file.parent),
        "--tb=no", "--color=no", "-W", "ignore::pytest.PytestAssertRewriteWarning",
    ]  # fmt: skip
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        pytest.main(args, plugins=[recorder])
    return recorder


def main(test_file: Path, results: Path) -> None:
    package_dir = test_file.parent
    root = package_dir.parent.parent
    package = f"{package_dir.parent.name}.{package_dir.name}"
    service = package_dir / "cart.py"
    source = service.read_text(encoding="utf-8")
    uses_hypothesis = "hypothesis" in test_file.read_text(encoding="utf-8")
    sys.path.insert(0, str(root))
    services: list[tuple[str, str | Exception]] = [("correct", source)]
    for fault in load_faults():
        try:
            services.append((fault["name"], faulty_source(source, fault)))
        except ValueError as exc:
            services.append((fault["name"], exc))
    # The correct service once more, last: a suite that fails "after the first run" (state
    # kept between runs, the clock, random data) would otherwise catch every fault.
    services.append(("correct-again", source))
    any_green, red = True, frozenset[str]()
    with results.open("a", encoding="utf-8") as sink:
        for name, code in services:
            started = time.perf_counter()
            if name != "correct" and not any_green:
                # Only a test that passes on the correct service can catch a fault.
                line: dict[str, Any] = {"service": name, "outcomes": {}, "errors": [], "skipped": True}
            elif isinstance(code, Exception):
                line = {"service": name, "broken": str(code)}
            else:
                install_service(package, service, code)
                recorder = run_once(test_file, root, uses_hypothesis, red, explain=name == "correct")
                line = {"service": name, "outcomes": recorder.outcomes, "errors": recorder.errors}
                if name == "correct":
                    outcomes = recorder.outcomes.items()
                    any_green = any(o["outcome"] == "passed" for _, o in outcomes)
                    # A test that fails (or hangs) on the correct service can catch nothing:
                    # it is left out of the faulty runs, which also keeps a hang to one.
                    red = frozenset(node for node, o in outcomes if o["outcome"] != "passed")
            line["seconds"] = round(time.perf_counter() - started, 3)
            sink.write(json.dumps(line) + "\n")
            sink.flush()


if __name__ == "__main__":
    # The suite needs no installed plugin but anyio (and hypothesis, when used), both
    # loaded by name: auto-loading would import nbval, schemathesis, locust... each run.
    os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    main(Path(sys.argv[1]).resolve(), Path(sys.argv[2]))
    # Every result is on disk: leave now, even if the suite left threads running.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
