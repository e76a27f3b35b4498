"""The learner's tools: check, progress, hint, solution.

Each returns a small report object that renders as HTML in a notebook and as
plain text on the command line. None of them raises: a learner's mistake is
something to explain, not a traceback.
"""

from __future__ import annotations

import html
import json
import tomllib
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

from coursekit import catalog, paths
from coursekit.catalog import Exercise
from coursekit.impl import Impl
from coursekit.runner import RunResult, TestOutcome, run_tests

BAR_WIDTH = 24


def _bar(done: int, total: int, width: int = BAR_WIDTH) -> str:
    filled = round(width * done / total) if total else 0
    return "█" * filled + "░" * (width - filled)


@dataclass
class TaskSummary:
    name: str
    outcomes: list[TestOutcome] = field(default_factory=list)

    @property
    def passed(self) -> int:
        return sum(o.passed for o in self.outcomes)

    @property
    def done(self) -> bool:
        return self.passed == len(self.outcomes)


@dataclass
class CheckReport:
    """What ``check("exNN")`` returns: per-task results and the first failure explained."""

    exercise_id: str
    title: str
    impl: Impl
    result: RunResult
    error: str = ""
    test_file: str = ""

    @property
    def ok(self) -> bool:
        return not self.error and self.result.ok

    @property
    def tasks(self) -> list[TaskSummary]:
        grouped: OrderedDict[str, TaskSummary] = OrderedDict()
        for outcome in self.result.outcomes:
            # The test class docstring ("Task 1: Money is exact ...") names the task best.
            name = outcome.task_doc.rstrip(".") or outcome.task
            grouped.setdefault(name, TaskSummary(name)).outcomes.append(outcome)
        return list(grouped.values())

    @property
    def first_failure(self) -> TestOutcome | None:
        return next((o for o in self.result.outcomes if not o.passed), None)

    def _headline(self) -> str:
        if self.error:
            return f"{self.exercise_id}: {self.error}"
        total = len(self.result.outcomes)
        verdict = "well done!" if self.ok else "keep going."
        return f"{self.exercise_id} · {self.title}: {self.result.passed}/{total} tests pass: {verdict}"

    def _failure_lines(self) -> list[str]:
        failure = self.first_failure
        if failure is None:
            return []
        lines = [f"First failure: {failure.task} › {failure.name}"]
        if failure.doc:
            lines.append(f"  expected: {failure.doc}")
        message = failure.message or failure.outcome
        if "NotImplementedError" in message:
            message = "NotImplementedError — this part is still a stub: start here."
        lines.append(f"  got:      {message}")
        return lines

    def __str__(self) -> str:
        lines = [self._headline()]
        if self.error:
            return lines[0]
        width = max([len(t.name) for t in self.tasks] + [4])
        lines.append(f"  {'task':<{width}}  tests  status")
        for task in self.tasks:
            mark = "✓ done" if task.done else "✗ open"
            lines.append(f"  {task.name:<{width}}  {task.passed:>2}/{len(task.outcomes):<2}  {mark}")
        lines.extend(self._failure_lines())
        if not self.ok:
            lines.append(f"More help: python -m coursekit hint {self.exercise_id[2:]}")
            if self.test_file:
                lines.append(f"Full tracebacks: python -m pytest --impl={self.impl} -x {self.test_file}")
        return "\n".join(lines)

    __repr__ = __str__

    def _repr_html_(self) -> str:
        colour = "#1a7f37" if self.ok else "#9a6700"
        parts = [f'<div><p style="color:{colour};font-weight:bold">{html.escape(self._headline())}</p>']
        if not self.error:
            rows = "".join(
                f"<tr><td>{html.escape(t.name)}</td><td>{t.passed}/{len(t.outcomes)}</td>"
                f"<td>{'✓ done' if t.done else '✗ open'}</td></tr>"
                for t in self.tasks
            )
            parts.append(f"<table><tr><th>task</th><th>tests</th><th>status</th></tr>{rows}</table>")
            failure = "<br>".join(html.escape(line) for line in self._failure_lines())
            if failure:
                parts.append(f"<p><code>{failure}</code></p>")
        parts.append("</div>")
        return "".join(parts)


def check(exercise: str | int, impl: Impl = "exercises") -> CheckReport:
    """Run one exercise's tests against your code (``exercises/``) and explain the result."""
    try:
        found = catalog.find(exercise)
    except KeyError as exc:
        return CheckReport(str(exercise), "", impl, RunResult(returncode=2), error=str(exc.args[0]))
    try:
        result = run_tests([found.test_path], impl)
    except Exception as exc:  # the report must never raise in a notebook
        return CheckReport(found.id, found.title, impl, RunResult(returncode=2), error=repr(exc))
    test_file = found.test_path.relative_to(paths.ROOT).as_posix()
    if not result.outcomes:
        return CheckReport(found.id, found.title, impl, result, error="no test ran")
    return CheckReport(found.id, found.title, impl, result, test_file=test_file)


@dataclass
class ProgressReport:
    rows: list[tuple[Exercise, int, int]]  # exercise, passed, total

    @property
    def done(self) -> int:
        return sum(1 for _, passed, total in self.rows if total and passed == total)

    def __str__(self) -> str:
        width = max([len(exercise.title) for exercise, _, _ in self.rows] + [5])
        lines = [f"{'exercise':<9} {'topic':<{width}} {'tests':>7}  status"]
        for exercise, passed, total in self.rows:
            status = "done" if total and passed == total else "open"
            lines.append(f"{exercise.id:<9} {exercise.title:<{width}} {passed:>3}/{total:<3}  {status}")
        total_ex = len(self.rows)
        lines.append(f"progress  {_bar(self.done, total_ex)}  {self.done}/{total_ex} exercises done")
        return "\n".join(lines)

    __repr__ = __str__

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><td>{e.id}</td><td>{html.escape(e.title)}</td><td>{p}/{t}</td>"
            f"<td>{'done' if t and p == t else 'open'}</td></tr>"
            for e, p, t in self.rows
        )
        pct = 100 * self.done // max(len(self.rows), 1)
        bar = (
            f'<div style="width:20em;border:1px solid #888"><div style="width:{pct}%;'
            f'background:#1a7f37;height:0.8em"></div></div>'
        )
        return (
            "<table><tr><th>exercise</th><th>topic</th><th>tests</th><th>status</th></tr>"
            f"{rows}</table>{bar}<p>{self.done}/{len(self.rows)} exercises done</p>"
        )


def progress(impl: Impl = "exercises") -> ProgressReport:
    """All exercises at once (one pytest run), each done or open."""
    exercises = catalog.all_exercises()
    result = run_tests([e.test_path for e in exercises], impl)
    rows = []
    for exercise in exercises:
        subset = result.for_file(exercise.test_path)
        rows.append((exercise, subset.passed, len(subset.outcomes)))
    return ProgressReport(rows)


def _hint_state_file() -> Path:
    return paths.work_dir("learner") / "hints.json"


def load_hints(exercise: Exercise) -> list[str]:
    data = tomllib.loads(exercise.hints_path.read_text(encoding="utf-8"))
    return [str(entry["text"]).strip() for entry in data.get("hint", [])]


@dataclass
class HintReport:
    exercise_id: str
    level: int
    total: int
    text: str

    def __str__(self) -> str:
        if not self.total:
            return self.text
        more = "" if self.level == self.total else " (ask again for the next one)"
        return f"{self.exercise_id} hint {self.level}/{self.total}{more}:\n{self.text}"

    __repr__ = __str__

    def _repr_html_(self) -> str:
        return f"<pre>{html.escape(str(self))}</pre>"


def hint(exercise: str | int, level: int | None = None, reset: bool = False) -> HintReport:
    """Show the next hint (graded: the first is gentle, the last nearly gives it away)."""
    try:
        found = catalog.find(exercise)
        hints = load_hints(found)
    except (KeyError, OSError, tomllib.TOMLDecodeError) as exc:
        return HintReport(str(exercise), 0, 0, f"no hints: {exc}")
    state_file = _hint_state_file()
    state: dict[str, int] = json.loads(state_file.read_text()) if state_file.exists() else {}
    if reset:
        state.pop(found.id, None)
    shown = state.get(found.id, 0)
    wanted = level if level is not None else min(shown + 1, len(hints))
    wanted = max(1, min(wanted, len(hints)))
    state[found.id] = max(shown, wanted)
    state_file.write_text(json.dumps(state, indent=1))
    return HintReport(found.id, wanted, len(hints), hints[wanted - 1])


@dataclass
class SolutionReport:
    exercise_id: str
    shown: bool
    text: str

    def __str__(self) -> str:
        return self.text

    __repr__ = __str__

    def _repr_html_(self) -> str:
        return f"<pre>{html.escape(self.text)}</pre>"


def solution(exercise: str | int, force: bool = False) -> SolutionReport:
    """The reference solution, once your own version passes (or with ``force=True``)."""
    try:
        found = catalog.find(exercise)
    except KeyError as exc:
        return SolutionReport(str(exercise), False, str(exc.args[0]))
    if not force:
        report = check(found.id)
        if not report.ok:
            return SolutionReport(
                found.id,
                False,
                f"Not yet: your {found.id} passes {report.result.passed}/"
                f"{len(report.result.outcomes)} tests. Finish it first (that is where the "
                "learning happens), or ask with force=True / --force.",
            )
    files = (
        sorted(found.solution_path.parent.rglob("*.py"))
        if found.solution_path.name == "__init__.py"
        else [found.solution_path]
    )
    chunks = [f"# ==== {f.relative_to(paths.ROOT).as_posix()}\n{f.read_text()}" for f in files]
    return SolutionReport(found.id, True, "\n".join(chunks))
