"""The learner's tools: check, progress, hint, solution.

Each returns a small report that renders as HTML in a notebook and as plain
text in a terminal, worded for where it is shown. None of them raises for
anything a learner can do: a mistake is something to explain, not a traceback.

``check`` runs in two stages: the fast tests of every task (an answer within
seconds), then the deep tests (fuzzing, races, type-checking) of the tasks
whose fast tests pass. Results are remembered, keyed by the content of the
files they depend on, so ``progress`` and ``solution`` re-run nothing that is
already known. Every check is also added to the learner's progress record
(``work/learner/progress.json``, see ``results_cache``), which an instructor's
class report reads; ``progress`` follows the course's path (``timings.toml``).
"""

from __future__ import annotations

import datetime as dt
import html
import os
import sys
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from coursekit import catalog, hints, paths, preflight, results_cache
from coursekit.catalog import Exercise
from coursekit.impl import Impl
from coursekit.runner import LoadProblem, RunResult, TestOutcome, run_tests

Where = Literal["notebook", "terminal"]
NO_CLOCK_ENV = "COURSEKIT_NO_CLOCK"
BAR_WIDTH = 24
MAX_MESSAGE = 240


def _where() -> Where:
    shell = sys.modules.get("IPython")
    get = getattr(shell, "get_ipython", None)
    if get is not None and get() is not None and "ipykernel" in sys.modules:
        return "notebook"
    return "terminal"


def _command(where: Where, tool: str, exercise_id: str, extra: str = "") -> str:
    if where == "notebook":
        args = f'"{exercise_id}"' + (f", {extra}" if extra else "")
        return f"{tool}({args})"
    flag = f" {extra}" if extra else ""
    return f"python -m coursekit {tool} {exercise_id[2:]}{flag}"


def _ago(then: float, now: float | None = None) -> str:
    seconds = max(0, int((now or time.time()) - then))
    if seconds < 60:
        return "just now" if seconds < 5 else f"{seconds} s ago"
    if seconds < 3600:
        return f"{seconds // 60} min ago"
    if seconds < 86400:
        return f"{seconds // 3600} h ago"
    return f"{seconds // 86400} days ago"


def _short(text: str, limit: int = MAX_MESSAGE) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _explain_failure(outcome: TestOutcome) -> str:
    message = (outcome.message or outcome.outcome).removeprefix("Failed: ")
    if "NotImplementedError" in message:
        return "NotImplementedError: still a stub, start here"
    return _short(message)


@dataclass
class TaskSummary:
    number: int
    title: str
    outcomes: list[TestOutcome] = field(default_factory=list)

    @property
    def passed(self) -> int:
        return sum(o.passed for o in self.outcomes)

    @property
    def fast_done(self) -> bool:
        return all(o.passed for o in self.outcomes if not o.deep)

    @property
    def deep_waiting(self) -> int:
        return sum(1 for o in self.outcomes if o.deep and o.outcome == "not run")

    @property
    def done(self) -> bool:
        return all(o.passed for o in self.outcomes)

    @property
    def first_failure(self) -> TestOutcome | None:
        return next((o for o in self.outcomes if o.failed), None)

    @property
    def label(self) -> str:
        return f"Task {self.number}" if self.number else "Other tests"


@dataclass
class CheckReport:
    """What ``check("exNN")`` returns: every task done or open, each open one explained."""

    exercise_id: str
    title: str
    impl: Impl
    outcomes: list[TestOutcome] = field(default_factory=list)
    blocker: str = ""  # why no test could run (syntax error, import error, ...)
    blocker_detail: str = ""
    notes: list[str] = field(default_factory=list)
    checked_file: str = ""
    saved_at: float | None = None
    checked_at: float = field(default_factory=time.time)
    final: bool = True  # False for the interim report shown while deep tests run
    where: Where = "terminal"

    @property
    def ok(self) -> bool:
        return not self.blocker and bool(self.outcomes) and all(o.passed for o in self.outcomes)

    @property
    def passed(self) -> int:
        return sum(o.passed for o in self.outcomes)

    @property
    def total(self) -> int:
        return len(self.outcomes)

    @property
    def tasks(self) -> list[TaskSummary]:
        grouped: dict[int, TaskSummary] = {}
        for outcome in self.outcomes:
            task = grouped.setdefault(outcome.task, TaskSummary(outcome.task, outcome.task_title))
            task.outcomes.append(outcome)
        return [grouped[number] for number in sorted(grouped)]

    @property
    def first_open_task(self) -> int | None:
        return next((t.number for t in self.tasks if not t.done), None)

    # ---- wording -------------------------------------------------------------------

    def _file_line(self) -> str:
        if not self.checked_file:
            return ""
        saved = ""
        # Stored notebook outputs carry no clock times (see tools/execute_notebooks.py).
        if self.saved_at is not None and not os.environ.get(NO_CLOCK_ENV):
            clock = dt.datetime.fromtimestamp(self.saved_at).strftime("%H:%M:%S")
            saved = f", saved at {clock} ({_ago(self.saved_at, self.checked_at)})"
        return f"checked {self.checked_file}{saved}: check reads the saved file, so save before you check"

    def _verdict(self) -> str:
        if self.blocker:
            return "no test could run yet."
        if self.ok:
            return f"{self.passed}/{self.total} tests pass: well done!"
        waiting = sum(t.deep_waiting for t in self.tasks)
        if not self.final and waiting:
            return f"{self.passed}/{self.total} tests pass so far; running {waiting} deep tests…"
        return f"{self.passed}/{self.total} tests pass: keep going."

    def _task_lines(self) -> list[tuple[str, str]]:
        """(kind, text) pairs: kind 'done', 'open', 'wait' for a task row, 'why' for its explanation."""
        rows: list[tuple[str, str]] = []
        width = max([len(t.title) for t in self.tasks] + [10])
        for task in self.tasks:
            count = f"{task.passed}/{len(task.outcomes)}"
            title = f"{task.label:<7} {task.title:<{width}}  {count:>5}"
            failure = task.first_failure
            if task.done:
                rows.append(("done", f"✓ {title}"))
            elif failure is None and task.deep_waiting:
                if self.final:
                    plural = "s" if task.deep_waiting != 1 else ""
                    rows.append(("wait", f"… {title}  {task.deep_waiting} deep test{plural} not run"))
                else:
                    rows.append(("wait", f"… {title}  deep tests running"))
            else:
                rows.append(("open", f"✗ {title}"))
                if failure is not None:
                    expected = f" expected: {failure.doc.rstrip('.')};" if failure.doc else ""
                    rows.append(("why", f"{failure.name}:{expected} got: {_explain_failure(failure)}"))
        return rows

    def _footer(self) -> list[str]:
        lines = [f"note: {note}" for note in self.notes]
        deep_later = [t.number for t in self.tasks if t.first_failure is not None and t.deep_waiting]
        if deep_later:
            if len(deep_later) == 1:
                which = f"task {deep_later[0]} run once its"
            else:
                listed = ", ".join(str(n) for n in deep_later[:-1]) + f" and {deep_later[-1]}"
                which = f"tasks {listed} run once their"
            lines.append(f"Deep tests (fuzzing, races, type checks) of {which} fast tests pass.")
        if not self.ok and self.final:
            task = self.first_open_task
            for_task = f" for Task {task}" if task else ""
            lines.append(f"Stuck? {_command(self.where, 'hint', self.exercise_id)} gives a hint{for_task}.")
        return lines

    def __str__(self) -> str:
        lines = [f"{self.exercise_id} · {self.title}: {self._verdict()}"]
        if self._file_line():
            lines.append(self._file_line())
        if self.blocker:
            lines.append(self.blocker)
            if self.blocker_detail:
                lines.append(self.blocker_detail)
        for kind, text in self._task_lines():
            lines.append(f"      {text}" if kind == "why" else f"  {text}")
        lines.extend(self._footer())
        return "\n".join(lines)

    __repr__ = __str__

    def _repr_html_(self) -> str:
        colour = "#1a7f37" if self.ok else "#9a6700"
        esc = html.escape
        parts = [f'<div><p style="color:{colour};font-weight:bold">{esc(self.exercise_id)} · '
                 f"{esc(self.title)}: {esc(self._verdict())}</p>"]  # fmt: skip
        if self._file_line():
            parts.append(f"<p><small>{esc(self._file_line())}</small></p>")
        if self.blocker:
            parts.append(f"<pre>{esc(self.blocker)}\n{esc(self.blocker_detail)}</pre>")
        rows = []
        for kind, text in self._task_lines():
            style = ' style="padding-left:2em;color:#555"' if kind == "why" else ""
            rows.append(f"<div{style}><code>{esc(text)}</code></div>")
        parts.extend(rows)
        parts.extend(f"<p>{esc(line)}</p>" for line in self._footer())
        parts.append("</div>")
        return "".join(parts)

    # ---- remembering -----------------------------------------------------------------

    def to_payload(self) -> dict[str, Any]:
        return {
            "ok": self.ok, "passed": self.passed, "total": self.total,
            "blocker": self.blocker, "blocker_detail": self.blocker_detail, "notes": self.notes,
            "checked_file": self.checked_file, "saved_at": self.saved_at,
            "outcomes": [results_cache.outcome_to_dict(o) for o in self.outcomes],
        }  # fmt: skip

    @classmethod
    def from_payload(cls, exercise: Exercise, impl: Impl, data: dict[str, Any]) -> CheckReport:
        return cls(
            exercise.id, exercise.title, impl,
            outcomes=[results_cache.outcome_from_dict(o) for o in data.get("outcomes", [])],
            blocker=str(data.get("blocker", "")), blocker_detail=str(data.get("blocker_detail", "")),
            notes=list(data.get("notes", [])), checked_file=str(data.get("checked_file", "")),
            saved_at=data.get("saved_at"), checked_at=float(data.get("checked_at", time.time())),
            where=_where(),
        )  # fmt: skip


def _blocker_from_problem(problem: LoadProblem, where: Where) -> tuple[str, str]:
    if problem.file:
        location = f"{preflight.display_path(paths.ROOT / problem.file)}:{problem.line}: "
        return f"{location}{problem.message}", f"    {problem.code}" if problem.code else ""
    return problem.message, ""


def _title(exercise: Exercise) -> str:
    try:
        return exercise.title
    except (OSError, SyntaxError, ValueError):
        return exercise.module


def _run_stage(exercise: Exercise, impl: Impl, stage: Literal["fast", "all"],
               nodeids: list[str] | None = None) -> RunResult:  # fmt: skip
    return run_tests(
        [exercise.test_path], impl, stage=stage, nodeids=nodeids,
        preflight=exercise.module, timeout_s=300,
    )  # fmt: skip


def _report(exercise: Exercise, impl: Impl, where: Where, result: RunResult | None, *, final: bool,
            blocker: tuple[str, str] = ("", "")) -> CheckReport:  # fmt: skip
    files = preflight.exercise_files(exercise) if impl == "exercises" else [exercise.solution_path]
    saved = max((p.stat().st_mtime for p in files if p.exists()), default=None)
    main_file = exercise.exercise_path if impl == "exercises" else exercise.solution_path
    # A package exercise is edited in several files (ex07: test_cart.py): name the folder.
    checked = (
        preflight.display_path(main_file.parent) + "/"
        if main_file.name == "__init__.py"
        else preflight.display_path(main_file)
    )
    report = CheckReport(
        exercise.id, _title(exercise), impl, where=where, final=final,
        checked_file=checked, saved_at=saved,
        blocker=blocker[0], blocker_detail=blocker[1],
    )  # fmt: skip
    if result is not None:
        report.outcomes = result.outcomes
        report.notes = list(result.notes)
        if result.problem is not None and not report.blocker:
            report.blocker, report.blocker_detail = _blocker_from_problem(result.problem, where)
        if not result.outcomes and not report.blocker:
            report.blocker = "no test ran: " + (result.output.splitlines() or ["(no output)"])[-1]
    return report


def _show_live(where: Where) -> Callable[[CheckReport], Callable[[], None]]:
    """Show the interim report now; return a function that removes it later."""
    if where == "notebook":
        from IPython.display import HTML, display

        def show_in_notebook(report: CheckReport) -> Callable[[], None]:
            handle = display(HTML(report._repr_html_()), display_id=True)  # type: ignore[no-untyped-call]
            return lambda: handle.update(HTML("")) if handle is not None else None  # type: ignore[no-untyped-call]

        return show_in_notebook

    def show_in_terminal(report: CheckReport) -> Callable[[], None]:
        print(report, flush=True)
        print("", flush=True)
        return lambda: None

    return show_in_terminal


def check(exercise: str | int, impl: Impl = "exercises", *, deep: bool = True,
          live: bool = True) -> CheckReport:  # fmt: skip
    """Run one exercise's tests against your code (``exercises/``) and explain the result.

    The fast tests of every task run first; the deep ones (fuzzing, races, type
    checks) then run for the tasks whose fast tests pass. ``deep=False`` stops
    after the fast stage.
    """
    return _checked(exercise, impl, deep=deep, live=live, asked=True)


def _checked(exercise: str | int, impl: Impl, *, deep: bool = True, live: bool = False,
             asked: bool = False) -> CheckReport:  # fmt: skip
    """``check``, for the learner (``asked``) or on their behalf (``progress``, ``hint``,
    ``solution``): only the checks a learner asks for count as their attempts."""
    where = _where()
    try:
        found = catalog.find(exercise)
    except KeyError as exc:
        return CheckReport(str(exercise), "", impl, blocker=str(exc.args[0]), where=where)
    try:
        report = _check(found, impl, where, deep=deep, live=live)
    except Exception as exc:  # the report must never raise in a notebook
        return CheckReport(
            found.id, _title(found), impl, blocker=f"check failed unexpectedly: {exc!r}", where=where
        )
    if impl == "exercises":  # the reference's checks are not the learner's progress
        _record_progress(report, asked=asked)
    return report


def _record_progress(report: CheckReport, *, asked: bool) -> None:
    failing = bool(report.blocker) or any(o.failed for o in report.outcomes)
    kind: results_cache.CheckKind = "done" if report.ok else "failing" if failing else "partial"
    summary = results_cache.CheckSummary(
        exercise_id=report.exercise_id, kind=kind, asked=asked,
        tasks={task.number: task.done for task in report.tasks},
        first_open_task=report.first_open_task, checked_at=report.checked_at,
    )  # fmt: skip
    try:
        results_cache.record_check(summary)
    except OSError as exc:  # a full or read-only disk must not cost the learner the report
        report.notes.append(f"progress not recorded: {exc.strerror or exc}")


def _check(found: Exercise, impl: Impl, where: Where, *, deep: bool, live: bool) -> CheckReport:
    key = results_cache.fingerprint(found, impl)
    if impl == "exercises":
        problem = preflight.check_files(found)
        if problem is not None:
            report = _report(found, impl, where, None, final=True, blocker=(problem.headline, problem.detail))
            results_cache.save(found, impl, key, {**report.to_payload(), "complete": True})
            return report
    fast = _run_stage(found, impl, "fast")
    report = _report(found, impl, where, fast, final=True)
    # Deep tests of the tasks whose fast tests all pass.
    ready = {t.number for t in report.tasks if t.fast_done}
    deep_ids = [o.nodeid for o in fast.outcomes if o.deep and o.outcome == "not run" and o.task in ready]
    if report.blocker or not deep or not deep_ids:
        # A fast-only check that left deep tests out is remembered as partial:
        # good enough to pick a hint's task, not to call the exercise done.
        complete = bool(report.blocker) or not deep_ids
        results_cache.save(found, impl, key, {**report.to_payload(), "complete": complete})
        return report
    report.final = False
    clear = _show_live(where)(report) if live else (lambda: None)
    second = _run_stage(found, impl, "all", deep_ids)
    clear()
    by_id = {o.nodeid: o for o in second.outcomes}
    report.outcomes = [by_id.get(o.nodeid, o) for o in fast.outcomes]
    report.notes = [*fast.notes, *second.notes]
    report.final = True
    if second.problem is not None:
        report.blocker, report.blocker_detail = _blocker_from_problem(second.problem, where)
    results_cache.save(found, impl, key, {**report.to_payload(), "complete": True})
    return report


def remembered(exercise: Exercise, impl: Impl = "exercises") -> tuple[CheckReport, bool] | None:
    """The last check of ``exercise``, and whether it is still current: nothing changed
    since, and it was a complete check (deep tests included where they were due)."""
    data = results_cache.load(exercise, impl)
    if data is None:
        return None
    same = data.get("fingerprint") == results_cache.fingerprint(exercise, impl)
    current = same and bool(data.get("complete", False))
    return CheckReport.from_payload(exercise, impl, data), current


# ---- progress ------------------------------------------------------------------------------


def _bar(done: int, total: int, width: int = BAR_WIDTH) -> str:
    filled = round(width * done / total) if total else 0
    return "█" * filled + "░" * (width - filled)


@dataclass(frozen=True)
class PathStep:
    """One notebook on the learner's path, from ``coursekit/timings.toml``."""

    number: str
    title: str  # "" when the entry has none
    minutes: int  # learner time: reading and running, plus the exercise
    prerequisites: tuple[str, ...]  # notebook numbers this one builds on


def course_path(timings: str | None = None) -> dict[str, PathStep]:
    """Every notebook's time and prerequisites, by number, in the course's order
    (from ``coursekit/timings.toml``, or the TOML text ``timings``)."""
    try:
        if timings is None:
            timings = (paths.ROOT / "coursekit" / "timings.toml").read_text(encoding="utf-8")
        data = tomllib.loads(timings)
    except (OSError, ValueError):
        return {}  # progress still lists the exercises, without times
    steps: dict[str, PathStep] = {}
    for entry in data.get("notebook", []):
        try:
            number = str(entry["number"])
            steps[number] = PathStep(
                number, str(entry.get("title", "")),
                int(entry.get("reading", 0)) + int(entry.get("exercise", 0)),
                tuple(str(n) for n in entry.get("prerequisites", [])),
            )  # fmt: skip
        except (KeyError, TypeError, ValueError):
            continue  # a malformed entry costs its row's time, not the whole table
    return steps


def _minutes(total: int) -> str:
    hours, minutes = divmod(total, 60)
    if not hours:
        return f"{minutes} min"
    return f"{hours} h {minutes:02d} min" if minutes else f"{hours} h"


@dataclass
class ProgressRow:
    exercise: Exercise
    title: str
    report: CheckReport
    fresh: bool  # checked just now, rather than remembered
    step: PathStep | None = None

    @property
    def status(self) -> str:
        if self.report.blocker:
            return "blocked"
        return "done" if self.report.ok else "open"

    @property
    def topic(self) -> str:
        return self.step.title if self.step is not None and self.step.title else self.title

    @property
    def time(self) -> str:
        return f"{self.step.minutes} min" if self.step is not None and self.step.minutes else ""

    @property
    def after(self) -> str:
        return " ".join(self.step.prerequisites) if self.step is not None else ""


@dataclass
class ProgressReport:
    """Every exercise in the course's order, with its time and prerequisites, and the next one to do."""

    rows: list[ProgressRow]
    where: Where = "terminal"

    @property
    def done(self) -> int:
        return sum(1 for row in self.rows if row.status == "done")

    @property
    def next_row(self) -> ProgressRow | None:
        """The first exercise not done whose prerequisites are done (else the first not done)."""
        done = {row.exercise.number for row in self.rows if row.status == "done"}
        known = {row.exercise.number for row in self.rows}
        open_rows = [row for row in self.rows if row.status != "done"]
        for row in open_rows:
            needed = set(row.step.prerequisites if row.step is not None else ()) & known
            if needed <= done:
                return row
        return open_rows[0] if open_rows else None

    @property
    def minutes_left(self) -> int:
        return sum(row.step.minutes for row in self.rows if row.status != "done" and row.step is not None)

    def _lines(self) -> list[tuple[str, ...]]:
        following = self.next_row
        lines: list[tuple[str, ...]] = []
        for row in self.rows:
            tasks = row.report.tasks
            tasks_done = sum(t.done for t in tasks)
            clock = dt.datetime.fromtimestamp(row.report.checked_at).strftime("%H:%M:%S")
            when = (
                "checked just now"
                if row.fresh
                else f"remembered from {clock} ({_ago(row.report.checked_at)})"
            )
            mark = "next" if row is following else ""
            lines.append((mark, row.exercise.id, row.topic, row.time, row.after or "-",
                          f"{tasks_done}/{len(tasks)} tasks", row.status, when))  # fmt: skip
        return lines

    def _summary(self) -> list[str]:
        total = len(self.rows)
        left = f"; about {_minutes(self.minutes_left)} of learner time left" if self.minutes_left else ""
        lines = [f"{self.done}/{total} exercises done{left}"]
        row = self.next_row
        if row is None:
            lines.append("next: nothing left, every exercise is done.")
            return lines
        notebook = row.exercise.notebook
        where = f"notebooks/{notebook.name}" if notebook is not None else "its notebook"
        details = [row.title] if row.topic != row.title else []
        if row.time:
            details.append(f"about {row.time}")
        if row.step is not None and row.step.prerequisites:
            details.append(f"builds on {', '.join(row.step.prerequisites)}")
        about = f" ({', '.join(details)})" if details else ""
        lines.append(
            f"next: {row.exercise.id} {row.topic}{about}: "
            f"{where}, then {_command(self.where, 'check', row.exercise.id)}"
        )
        return lines

    def __str__(self) -> str:
        head = ("", "exercise", "topic", "time", "after", "tasks", "status", "last check")
        lines = self._lines()
        widths = [max(len(line[i]) for line in [head, *lines]) for i in range(len(head) - 1)]
        right = {3, 5}  # times and task counts line up on the right

        def render(cells: tuple[str, ...]) -> str:
            parts = [
                c.rjust(w) if i in right else c.ljust(w)
                for i, (c, w) in enumerate(zip(cells[:-1], widths, strict=True))
            ]
            return "  ".join([*parts, cells[-1]]).rstrip()

        out = [render(head), *(render(line) for line in lines)]
        summary = self._summary()
        out.append(f"progress  {_bar(self.done, len(self.rows))}  {summary[0]}")
        out.extend(summary[1:])
        return "\n".join(out)

    __repr__ = __str__

    def _repr_html_(self) -> str:
        esc = html.escape
        rows = "".join(
            f"<tr><td><b>{esc(cells[0])}</b></td>"
            + "".join(f"<td>{esc(c)}</td>" for c in cells[1:])
            + "</tr>"
            for cells in self._lines()
        )
        pct = 100 * self.done // max(len(self.rows), 1)
        bar = (
            f'<div style="width:20em;border:1px solid #888"><div style="width:{pct}%;'
            f'background:#1a7f37;height:0.8em"></div></div>'
        )
        head = "".join(
            f"<th>{name}</th>"
            for name in ("", "exercise", "topic", "time", "after", "tasks", "status", "last check")
        )
        summary = "".join(f"<p>{esc(line)}</p>" for line in self._summary())
        return f"<table><tr>{head}</tr>{rows}</table>{bar}{summary}"


def progress(impl: Impl = "exercises") -> ProgressReport:
    """Every exercise in the course's order, done or open, with its learner time and prerequisites,
    and the next one to do: remembered results where nothing changed, a check where it did."""
    where = _where()
    steps = course_path()
    rows = []
    for exercise in catalog.all_exercises():
        known = remembered(exercise, impl)
        if known is not None and known[1]:
            report, fresh = known[0], False
        else:
            report, fresh = _checked(exercise.id, impl), True
        rows.append(ProgressRow(exercise, _title(exercise), report, fresh, steps.get(exercise.number)))
    return ProgressReport(rows, where)


# ---- hints ---------------------------------------------------------------------------------


@dataclass
class HintReport:
    exercise_id: str
    task: int
    level: int
    total: int
    text: str
    why_this_task: str = ""
    where: Where = "terminal"

    def __str__(self) -> str:
        if not self.total:
            return self.text
        name = hints.LEVELS[self.level - 1]
        lines = [f"{self.exercise_id} · Task {self.task} · hint {self.level}/{self.total} ({name})"]
        if self.why_this_task:
            lines.append(self.why_this_task)
        lines += ["", self.text, ""]
        if self.level < self.total:
            again = _command(
                self.where,
                "hint",
                self.exercise_id,
                f"task={self.task}" if self.where == "notebook" else f"--task {self.task}",
            )
            lines.append(f"Still stuck? {again} gives the next one.")
        else:
            reference = _command(self.where, "solution", self.exercise_id)
            lines.append(
                f"That was the last hint for this task; {reference} shows the reference once yours passes."
            )
        return "\n".join(lines)

    __repr__ = __str__

    def _repr_html_(self) -> str:
        return f"<pre>{html.escape(str(self))}</pre>"


def hint(exercise: str | int, task: int | None = None, level: int | None = None,
         reset: bool = False) -> HintReport:  # fmt: skip
    """The next hint for the first open task (or for ``task``): concept, then approach, then a sketch."""
    where = _where()
    try:
        found = catalog.find(exercise)
        by_task = hints.load(found)
    except (KeyError, OSError, ValueError) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) else str(exc)
        return HintReport(str(exercise), 0, 0, 0, f"no hints: {message}", where=where)
    why = ""
    if task is None:
        known = remembered(found)
        report = known[0] if known is not None else _checked(found.id, "exercises", deep=False)
        task = report.first_open_task
        if task is None:
            task = min(by_task)
            why = "Every task passed at your last check; here are the hints for Task 1."
        else:
            why = f"Task {task} is the first open task at your last check."
    if task not in by_task:
        known_tasks = ", ".join(str(n) for n in sorted(by_task))
        return HintReport(
            found.id, task, 0, 0, f"{found.id} has no Task {task}; its tasks are {known_tasks}", where=where
        )
    texts = by_task[task].texts
    chosen = hints.next_level(found.id, task, len(texts), level=level, reset=reset)
    return HintReport(found.id, task, chosen, len(texts), texts[chosen - 1], why, where)


def load_hints(exercise: Exercise) -> list[str]:
    """Every hint text of an exercise, task by task (for the course's own checks)."""
    return [text for task in hints.load(exercise).values() for text in task.texts]


# ---- solution ------------------------------------------------------------------------------


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
    """The reference solution, once your own version passes (or with ``force=True``).

    Uses your last check when nothing changed since; runs a check otherwise.
    """
    where = _where()
    try:
        found = catalog.find(exercise)
    except KeyError as exc:
        return SolutionReport(str(exercise), False, str(exc.args[0]))
    if not force:
        known = remembered(found)
        report = known[0] if known is not None and known[1] else _checked(found.id, "exercises")
        if not report.ok:
            forced = _command(where, "solution", found.id, "force=True" if where == "notebook" else "--force")
            return SolutionReport(
                found.id, False,
                f"Not yet: your {found.id} passes {report.passed}/{report.total} tests. Finish it first "
                f"(that is where the learning happens), or ask anyway with {forced}.",
            )  # fmt: skip
    files = (
        sorted(p for p in found.solution_path.parent.rglob("*.py") if "__pycache__" not in p.parts)
        if found.solution_path.name == "__init__.py"
        else [found.solution_path]
    )
    chunks = [f"# ==== {f.relative_to(paths.ROOT).as_posix()}\n{f.read_text()}" for f in files]
    return SolutionReport(found.id, True, "\n".join(chunks))
