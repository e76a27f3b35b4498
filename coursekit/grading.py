"""Score an exercise by section: ``python -m coursekit grade 13``.

``check`` coaches (fast tests first, the deep ones only for tasks whose fast tests
pass, the first failure explained); ``grade`` scores: it runs every test of the
exercise, deep ones included, and reports one score per section (a section is a
task: the capstone's are functionality, security, concurrency, observability and
performance), plus the first failing test of each section that lost points.
``deep=False`` scores the fast tests only (seconds instead of a minute: a notebook's
demonstration), and says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from coursekit import catalog
from coursekit.impl import Impl
from coursekit.runner import Stage, TestOutcome, run_tests

__all__ = ["GradeReport", "SectionScore", "grade"]

GRADE_BUDGET_S = 900.0


@dataclass(frozen=True)
class SectionScore:
    number: int
    title: str
    passed: int
    total: int
    first_failure: str = ""  # "test name: expected ..." of the first test that did not pass
    not_run: int = 0  # deep tests left out (grade(..., deep=False))

    @property
    def full(self) -> bool:
        return self.total > 0 and self.passed == self.total


@dataclass
class GradeReport:
    """What ``grade("ex13")`` returns; ``str()`` is the score table."""

    exercise_id: str
    title: str
    impl: Impl
    sections: list[SectionScore] = field(default_factory=list)
    blocker: str = ""  # why no test could run
    deep: bool = True

    @property
    def passed(self) -> int:
        return sum(section.passed for section in self.sections)

    @property
    def total(self) -> int:
        return sum(section.total for section in self.sections)

    @property
    def full_marks(self) -> bool:
        return not self.blocker and bool(self.sections) and all(s.full for s in self.sections)

    def scores(self) -> dict[str, tuple[int, int]]:
        """Section name -> (passed, total), e.g. ``{"functionality": (10, 10), ...}``."""
        return {section.title: (section.passed, section.total) for section in self.sections}

    def __str__(self) -> str:
        scope = "every test, deep ones included" if self.deep else "fast tests only, deep ones not run"
        graded = "your code in exercises/" if self.impl == "exercises" else "the reference in solutions/"
        lines = [f"{self.exercise_id} · {self.title}: {graded} graded ({scope})"]
        if self.blocker:
            return "\n".join([*lines, f"no score: {self.blocker}"])
        width = max([len(section.title) for section in self.sections] + [len("total")])
        for section in self.sections:
            mark = "✓" if section.full else "✗"
            left_out = f"  ({section.not_run} deep not run)" if section.not_run else ""
            lines.append(f"  {mark} {section.title:<{width}}  {section.passed:>3}/{section.total}{left_out}")
        lines.append(f"    {'total':<{width}}  {self.passed:>3}/{self.total}")
        for section in self.sections:
            if section.first_failure:
                lines.append(f"  {section.title}: {section.first_failure}")
        return "\n".join(lines)

    __repr__ = __str__


def _section_title(outcomes: list[TestOutcome]) -> str:
    # "Task 3: Concurrency." -> "concurrency"
    title = outcomes[0].task_title.strip().rstrip(".").lower()
    return title or f"task {outcomes[0].task}"


def _first_failure(outcomes: list[TestOutcome]) -> str:
    failed = next((o for o in outcomes if not o.passed), None)
    if failed is None:
        return ""
    expected = f" expected: {failed.doc.rstrip('.')}" if failed.doc else ""
    return f"{failed.name} ({failed.outcome});{expected}"


def grade(exercise: str | int, impl: Impl = "exercises", *, deep: bool = True) -> GradeReport:
    """Run every test of ``exercise`` against ``impl`` and score each section.

    ``deep=False``: the fast tests only; the deep ones count in no score.
    """
    found = catalog.find(exercise)
    try:
        title = found.title
    except (OSError, SyntaxError, ValueError):
        title = found.module
    stage: Stage = "all" if deep else "fast"
    result = run_tests([found.test_path], impl, stage=stage, preflight=found.module, timeout_s=GRADE_BUDGET_S)
    report = GradeReport(found.id, title, impl, deep=deep)
    if result.problem is not None:
        report.blocker = (
            result.problem.message.strip().splitlines()[0] if result.problem.message else "no test ran"
        )
    by_task: dict[int, list[TestOutcome]] = {}
    for outcome in result.outcomes:
        by_task.setdefault(outcome.task, [])
        if outcome.outcome != "not run":
            by_task[outcome.task].append(outcome)
    if not by_task and not report.blocker:
        report.blocker = "no test ran: " + (result.output.strip().splitlines() or ["(no output)"])[-1]
    titles = {o.task: _section_title([o]) for o in result.outcomes}
    report.sections = [
        SectionScore(
            number=number,
            title=titles[number],
            passed=sum(o.passed for o in outcomes),
            total=len(outcomes),
            first_failure=_first_failure(outcomes),
            not_run=sum(1 for o in result.outcomes if o.task == number and o.outcome == "not run"),
        )
        for number, outcomes in sorted(by_task.items())
    ]
    return report
