"""Run exercise tests against one implementation, in a child process, and summarise.

The child process matters: a learner's module may hang, crash, call
``os._exit``, print without end or leave threads running; the notebook kernel
(or the invariant test) must survive all of that, and so must every result that
was already finished. The child streams its results (see
:mod:`coursekit.results_plugin`); this side watches the stream and the clock:

- a test that runs past its time limit and does not stop when interrupted is
  killed with its whole process group, reported as hung, and the run resumes
  with the tests that had not run yet (a bounded number of times);
- a child that dies in the middle of a test (``os._exit``, a crash) gets the
  same treatment, the test named;
- a child that finished but does not exit (threads the learner left running)
  is stopped once its results are in;
- whatever happens, nothing of the run is left running afterwards.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from coursekit import paths
from coursekit.check_protocol import (
    DEEP_MARKER,
    DEFAULT_IMPORT_TIME_LIMIT_S,
    IMPORT_TIME_LIMIT_ENV,
    PARENT_PID_ENV,
    PREFLIGHT_ENV,
    RESULTS_ENV,
    STAGE_ENV,
    TIME_LIMIT_ENV,
)
from coursekit.impl import IMPL_ENV, Impl
from coursekit.runs import RUN_ID_ENV

Stage = Literal["all", "fast"]
DEFAULT_BUDGET_S = 600.0
MAX_RESTARTS = 8  # hung or crashed tests tolerated per run before giving up on the rest
POLL_S = 0.02
EXIT_GRACE_S = 2.0  # after the last result, how long a child may take to exit
OUTPUT_TAIL_BYTES = 8_000
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
# pytest's advice for its own terminal, meaningless in a check report.
PYTEST_NOISE = re.compile(r"^\s*(Use -v to get more diff|Full diff:|Omitting \d+ identical items.*)\s*$")


def plain(text: str) -> str:
    """No colour codes and none of pytest's terminal advice: the text a learner should read."""
    lines = [ANSI.sub("", line) for line in text.splitlines()]
    return "\n".join(line for line in lines if not PYTEST_NOISE.match(line)).strip()


@dataclass(frozen=True)
class TestOutcome:
    nodeid: str
    outcome: str  # "passed" | "failed" | "skipped" | "not run"
    message: str = ""
    doc: str = ""
    task: int = 0
    task_title: str = ""
    markers: tuple[str, ...] = ()
    printed: int = 0  # bytes the test printed

    @property
    def passed(self) -> bool:
        return self.outcome == "passed"

    @property
    def failed(self) -> bool:
        return self.outcome == "failed"

    @property
    def deep(self) -> bool:
        return DEEP_MARKER in self.markers

    @property
    def file(self) -> str:
        return self.nodeid.split("::", 1)[0]

    @property
    def name(self) -> str:
        return self.nodeid.split("::")[-1]


@dataclass(frozen=True)
class LoadProblem:
    """The learner's module could not be imported, or the tests could not be collected."""

    kind: str  # "import" | "timeout" | "exit" | "died" | "collect"
    message: str
    file: str = ""
    line: int = 0
    code: str = ""


@dataclass
class RunResult:
    outcomes: list[TestOutcome] = field(default_factory=list)
    returncode: int = 0
    output: str = ""
    problem: LoadProblem | None = None
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def passed(self) -> int:
        return sum(o.passed for o in self.outcomes)

    @property
    def failed(self) -> int:
        return sum(o.failed for o in self.outcomes)

    @property
    def ok(self) -> bool:
        return bool(self.outcomes) and self.problem is None and all(o.passed for o in self.outcomes)

    def for_file(self, test_path: Path) -> RunResult:
        rel = _relative(test_path)
        subset = [o for o in self.outcomes if o.file == rel]
        return RunResult(outcomes=subset, returncode=0 if subset else 5, output=self.output)


def _relative(path: Path) -> str:
    try:
        return path.resolve().relative_to(paths.ROOT).as_posix()
    except ValueError:
        return path.as_posix()


def _child_env(impl: Impl, stage: Stage, preflight: str | None,
               time_limit: float | None, extra: dict[str, str] | None) -> dict[str, str]:  # fmt: skip
    env = {**os.environ, **(extra or {})}
    # Plain text whatever the notebook kernel asked for (it sets FORCE_COLOR).
    for name in ("FORCE_COLOR", "PY_COLORS", "CLICOLOR_FORCE", RUN_ID_ENV):
        env.pop(name, None)
    env.update({"NO_COLOR": "1", "PY_COLORS": "0", "TERM": "dumb", "PYTHONUNBUFFERED": "1"})
    # Plugins are loaded explicitly below: auto-loading imports nbval (seconds),
    # locust (gevent) and schemathesis for every check.
    env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    env[IMPL_ENV] = impl
    env[STAGE_ENV] = stage
    env[PARENT_PID_ENV] = str(os.getpid())
    if preflight:
        env[PREFLIGHT_ENV] = preflight
    if time_limit is not None:
        env[TIME_LIMIT_ENV] = str(time_limit)
    return env


_TOP_LEVEL_HYPOTHESIS = re.compile(r"^(import|from) (hypothesis|schemathesis)\b", re.MULTILINE)


def _uses_hypothesis(targets: Sequence[str], cwd: Path, stage: Stage) -> bool:
    """Whether the tests that will run use hypothesis (or schemathesis, built on it):
    imported at the top of a test file, or anywhere in it when deep tests run."""
    for target in targets:
        try:
            text = (cwd / target.split("::", 1)[0]).read_text(encoding="utf-8")
        except OSError:
            return True  # cannot tell: load the plugin
        if _TOP_LEVEL_HYPOTHESIS.search(text) or (stage != "fast" and "hypothesis" in text):
            return True
    return False


def _command(targets: Sequence[str], extra_args: Sequence[str], cwd: Path, stage: Stage) -> list[str]:
    # Hypothesis's plugin costs its import (a tenth of a second): only where used.
    uses = _uses_hypothesis(targets, cwd, stage)
    hypothesis = ["-p", "_hypothesis_pytestplugin"] if uses else []
    return [
        sys.executable, "-m", "pytest", "-q", "--no-header", "-p", "no:cacheprovider",
        "-p", "anyio", *hypothesis, "-p", "coursekit.results_plugin",
        # Only each failure's message is read back: full tracebacks would triple the time.
        "--tb=no", "--show-capture=no", "--color=no", *extra_args, *targets,
    ]  # fmt: skip


@dataclass
class _Watch:
    """What the parent learns from one child's event stream."""

    collected: list[dict[str, Any]] = field(default_factory=list)
    results: dict[str, dict[str, Any]] = field(default_factory=dict)
    running: str | None = None
    running_since: float = 0.0
    preflight_started: bool = False
    preflight_since: float = 0.0
    preflight_error: dict[str, Any] | None = None
    collect_errors: list[dict[str, Any]] = field(default_factory=list)
    finished: dict[str, Any] | None = None
    finished_at: float = 0.0
    abandoned: str | None = None  # a test stopped at its time limit; the child left after it

    def feed(self, event: dict[str, Any], now: float) -> None:
        kind = event.get("e")
        if kind == "preflight":
            self.preflight_started, self.preflight_since = True, now
        elif kind == "preflight_error":
            self.preflight_error = event
        elif kind == "collected":
            self.collected = list(event["items"])
        elif kind == "start":
            self.running, self.running_since = str(event["nodeid"]), now
        elif kind == "result":
            self.results[str(event["nodeid"])] = event
            if self.running == event["nodeid"]:
                self.running = None
        elif kind == "collect_error":
            self.collect_errors.append(event)
        elif kind == "finished":
            self.finished, self.finished_at = event, now
        elif kind == "abandon":
            self.abandoned = str(event["nodeid"])


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(Exception):
        process.wait(timeout=5)


def _tail(path: Path) -> str:
    try:
        with path.open("rb") as handle:
            handle.seek(max(0, path.stat().st_size - OUTPUT_TAIL_BYTES))
            return plain(handle.read().decode("utf-8", "replace"))
    except OSError:
        return ""


def _limit_of(watch: _Watch, nodeid: str, default: float) -> float:
    for item in watch.collected:
        if item["nodeid"] == nodeid:
            return float(item.get("limit", default))
    return default


def _run_child(
    targets: Sequence[str], env: dict[str, str], extra_args: Sequence[str], cwd: Path,
    scratch: Path, attempt: int, deadline: float, default_limit: float,
) -> tuple[_Watch, int, str, str]:  # fmt: skip
    """One child process; returns what it reported, its exit code, its output tail, and why it was stopped."""
    results = scratch / f"events-{attempt}.jsonl"
    output = scratch / f"output-{attempt}.txt"
    env = {**env, RESULTS_ENV: str(results)}
    watch = _Watch()
    stopped = ""
    stage: Stage = "fast" if env.get(STAGE_ENV) == "fast" else "all"
    with output.open("wb") as sink:
        process = subprocess.Popen(
            _command(targets, extra_args, cwd, stage), cwd=cwd, env=env, stdin=subprocess.DEVNULL,
            stdout=sink, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        offset, pending = 0, b""
        try:
            while True:
                returncode = process.poll()
                now = time.monotonic()
                if results.exists():
                    with results.open("rb") as handle:
                        handle.seek(offset)
                        chunk = handle.read()
                    offset += len(chunk)
                    pending += chunk
                    *lines, pending = pending.split(b"\n")
                    for line in lines:
                        with contextlib.suppress(ValueError):
                            watch.feed(json.loads(line), now)
                if returncode is not None:
                    break
                # The child interrupts each phase at its limit; a test (or the import)
                # still running well after that is stuck where signals cannot reach.
                if watch.running is not None:
                    allowed = 3 * _limit_of(watch, watch.running, default_limit) + 2.0
                    stuck = now - watch.running_since > allowed
                elif watch.preflight_started and watch.preflight_error is None and not watch.collected:
                    import_limit = float(env.get(IMPORT_TIME_LIMIT_ENV, DEFAULT_IMPORT_TIME_LIMIT_S))
                    stuck = now - watch.preflight_since > import_limit + 5.0
                else:
                    stuck = False
                if stuck:
                    stopped = "hung"
                    break
                if watch.finished is not None and now - watch.finished_at > EXIT_GRACE_S:
                    stopped = "lingering"
                    break
                if now > deadline:
                    stopped = "budget"
                    break
                time.sleep(POLL_S)
        finally:
            _kill_group(process)
    return watch, process.returncode if process.returncode is not None else -9, _tail(output), stopped


def _outcome(
    item: dict[str, Any], result: dict[str, Any] | None, *, outcome: str = "", message: str = ""
) -> TestOutcome:
    return TestOutcome(
        nodeid=str(item["nodeid"]),
        outcome=outcome or (str(result["outcome"]) if result else "not run"),
        message=plain(message or (str(result.get("message", "")) if result else "")),
        doc=str(item.get("doc", "")),
        task=int(item.get("task", 0)),
        task_title=str(item.get("task_title", "")),
        markers=tuple(item.get("markers", ())),
        printed=int(result.get("printed", 0)) if result else 0,
    )


def run_tests(
    test_paths: Sequence[Path],
    impl: Impl,
    *,
    extra_args: Sequence[str] = (),
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    timeout_s: float = DEFAULT_BUDGET_S,
    stage: Stage = "all",
    nodeids: Sequence[str] | None = None,
    preflight: str | None = None,
    time_limit: float | None = None,
) -> RunResult:
    """Run ``pytest`` on ``test_paths`` (or just ``nodeids``) with ``COURSE_IMPL=impl``.

    Never raises for anything the tests or the learner's code do; see the module docstring.
    """
    started = time.monotonic()
    stop_at_first = "-x" in extra_args or "--exitfirst" in extra_args
    state = _RunState(nodeids=nodeids, stage=stage)
    targets: list[str] = list(nodeids) if nodeids is not None else [str(p) for p in test_paths]
    with tempfile.TemporaryDirectory(prefix="coursekit-") as scratch_name:
        scratch = Path(scratch_name)
        child_env = _child_env(impl, stage, preflight, time_limit, env)
        default_limit = time_limit if time_limit is not None else 5.0
        for attempt in range(MAX_RESTARTS + 1):
            watch, state.returncode, state.output, stopped = _run_child(
                targets, child_env, extra_args, cwd or paths.ROOT, scratch, attempt,
                started + timeout_s, default_limit,
            )  # fmt: skip
            if not state.absorb(watch, stopped, default_limit):
                break
            remaining = state.remaining()
            if stopped == "budget" or not remaining or (stop_at_first and state.any_failed()):
                break
            targets = remaining
    return state.result(stop_at_first, time.monotonic() - started)


@dataclass
class _RunState:
    """Results gathered over one or more child processes of a run."""

    nodeids: Sequence[str] | None
    stage: Stage
    order: list[dict[str, Any]] = field(default_factory=list)  # the tests to run, in collection order
    skipped_deep: list[dict[str, Any]] = field(default_factory=list)  # deep tests a fast stage leaves out
    done: dict[str, TestOutcome] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    problem: LoadProblem | None = None
    output: str = ""
    returncode: int = 0

    def absorb(self, watch: _Watch, stopped: str, default_limit: float) -> bool:
        """Take in one child's results; ``True`` when the run should go on with what is left."""
        if not self.order and watch.collected:
            wanted = set(self.nodeids) if self.nodeids is not None else None
            chosen = [item for item in watch.collected if wanted is None or item["nodeid"] in wanted]
            is_deep = [DEEP_MARKER in item.get("markers", ()) for item in chosen]
            left_out = self.stage == "fast"
            self.order = [i for i, deep in zip(chosen, is_deep, strict=True) if not (deep and left_out)]
            self.skipped_deep = [i for i, deep in zip(chosen, is_deep, strict=True) if deep and left_out]
        by_id = {item["nodeid"]: item for item in self.order}
        for nodeid, result in watch.results.items():
            if nodeid in by_id:
                self.done[nodeid] = _outcome(by_id[nodeid], result)
        if watch.preflight_error is not None:
            e = watch.preflight_error
            self.problem = LoadProblem(
                str(e["kind"]), plain(str(e["message"])), str(e["file"]), int(e["line"]), str(e["code"])
            )
            return False
        if watch.finished is not None:
            self._note_leftovers(watch.finished)
            return False
        if watch.preflight_started and not watch.collected:
            why = (
                "did not finish" if stopped == "hung" else f"ended the process (exit code {self.returncode})"
            )
            self.problem = LoadProblem(
                "died",
                f"importing your module {why}: look for code that runs at import time "
                "(a loop, input(), sys.exit or os._exit at the top level)",
            )
            return False
        if not watch.collected:
            messages = [plain(str(e.get("message", ""))) for e in watch.collect_errors]
            last = (self.output.splitlines() or ["the tests could not start"])[-1]
            self.problem = LoadProblem("collect", messages[0] if messages else last)
            return False
        if watch.abandoned is not None and watch.abandoned in by_id:
            self._skip_rest_of_task(by_id[watch.abandoned])
            return True
        culprit = watch.running
        if culprit is not None and culprit in by_id:
            self.done[culprit] = _outcome(
                by_id[culprit], None, outcome="failed",
                message=self._why_stopped(stopped, _limit_of(watch, culprit, default_limit)),
            )  # fmt: skip
            if stopped == "hung":
                self._skip_rest_of_task(by_id[culprit])
            elif stopped != "budget":
                self.notes.append(
                    f"the test process ended while running {culprit.split('::')[-1]}; "
                    "the remaining tests ran again in a new process"
                )
        return True

    def _skip_rest_of_task(self, hung: dict[str, Any]) -> None:
        """The task's other tests would most likely hang the same way: report them
        now instead of spending a time limit on each."""
        for item in self.order:
            if item.get("task") == hung.get("task") and item["nodeid"] not in self.done:
                self.done[item["nodeid"]] = _outcome(
                    item, None, outcome="not run",
                    message="not run: an earlier test of this task ran out of time",
                )  # fmt: skip

    def _why_stopped(self, stopped: str, limit: float) -> str:
        if stopped == "hung":
            return (
                f"did not finish within {limit:g} s and could not be interrupted "
                "(an infinite loop, or a call that blocks?); it was stopped"
            )
        if stopped == "budget":
            return "not finished when the run's time budget ran out"
        return (
            f"the test process ended during this test (exit code {self.returncode}): "
            "sys.exit, os._exit or a crash in the code under test?"
        )

    def _note_leftovers(self, finished: dict[str, Any]) -> None:
        threads = finished.get("threads") or []
        if threads:
            self.notes.append(
                f"your code left threads running after the tests ({', '.join(threads[:5])}); "
                "they were stopped, and every result was kept"
            )
        children = finished.get("children") or []
        if children:
            self.notes.append(f"your code left {len(children)} process(es) running; they were stopped")

    def remaining(self) -> list[str]:
        return [item["nodeid"] for item in self.order if item["nodeid"] not in self.done]

    def any_failed(self) -> bool:
        return any(o.failed for o in self.done.values())

    def result(self, stop_at_first: bool, seconds: float) -> RunResult:
        outcomes = []
        for item in self.order:
            outcome = self.done.get(item["nodeid"])
            if outcome is None:
                if stop_at_first:
                    continue
                outcome = _outcome(
                    item, None, outcome="not run", message="not run: the run stopped before it"
                )
            outcomes.append(outcome)
        outcomes += [
            _outcome(item, None, outcome="not run", message="deep test: runs once its task's fast tests pass")
            for item in self.skipped_deep
        ]
        notes = list(self.notes)
        for o in outcomes:
            if o.printed > 1_000_000:
                notes.append(
                    f"{o.name} printed {o.printed / 1e6:.0f} MB: printing that much slows everything"
                )
        return RunResult(outcomes, self.returncode, self.output, self.problem, notes, seconds)
