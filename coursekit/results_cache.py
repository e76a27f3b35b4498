"""Remembered check results, keyed by the content of everything they depend on.

``progress`` answers from here when nothing changed since the last check, and
``solution`` and ``hint`` know where the learner is without re-running
anything. The key covers the learner's files, the exercise's tests, the
course's support code and configuration, the implementation checked and the
database in use: change any of them and the result is stale.

The progress record (``progress.json``, below) is the learner's history rather
than the last result: how many checks ran, how many failed in a row, which task
is open. It is what an instructor's class report reads.
"""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from coursekit import paths, statefile
from coursekit.catalog import Exercise
from coursekit.check_protocol import DATABASE_URL_ENV
from coursekit.impl import Impl
from coursekit.preflight import exercise_files
from coursekit.runner import TestOutcome


def _support_files() -> list[Path]:
    kit = sorted((paths.ROOT / "coursekit").rglob("*.py"))
    return [*kit, paths.ROOT / "conftest.py", paths.ROOT / "pyproject.toml"]


def fingerprint(exercise: Exercise, impl: Impl) -> str:
    digest = hashlib.sha256()
    files = exercise_files(exercise) if impl == "exercises" else [exercise.solution_path]
    for path in [*files, exercise.test_path, *_support_files()]:
        digest.update(path.as_posix().encode())
        try:
            digest.update(path.read_bytes())
        except OSError:
            digest.update(b"<missing>")
    # The database URL as written (a different server is a different result);
    # read raw so that remembering results needs no database driver.
    database = os.environ.get(DATABASE_URL_ENV, "").strip() or "sqlite"
    digest.update(f"{impl}|{database}".encode())
    return digest.hexdigest()


def _path(exercise: Exercise, impl: Impl) -> Path:
    return paths.work_dir("learner", "results") / f"{impl}-{exercise.id}.json"


def save(exercise: Exercise, impl: Impl, key: str, payload: dict[str, Any]) -> None:
    statefile.write_json(_path(exercise, impl), {"fingerprint": key, "checked_at": time.time(), **payload})


def load(exercise: Exercise, impl: Impl) -> dict[str, Any] | None:
    data = statefile.read_json(_path(exercise, impl))
    return data if isinstance(data, dict) else None


def outcome_to_dict(outcome: TestOutcome) -> dict[str, Any]:
    data = asdict(outcome)
    data["markers"] = list(outcome.markers)
    return data


def outcome_from_dict(data: dict[str, Any]) -> TestOutcome:
    return TestOutcome(**{**data, "markers": tuple(data.get("markers", ()))})


# ---- the progress record ---------------------------------------------------------------------
#
# ``work/learner/progress.json`` (or ``$COURSE_WORK_DIR/learner/progress.json``) keeps,
# per exercise, how the learner's checks went. ``check`` updates it under the state-file
# lock after every check of the learner's code; ``python -m coursekit class-report``
# reads the records of a whole room. Version 1:
#
#     {"format": "coursekit-progress", "version": 1, "updated_at": <unix time>,
#      "exercises": {"ex05": {
#          "status": "open",               # "done" once a check passes every test
#          "started": true,                # the learner has checked it (or it is done)
#          "tasks": {"1": "done", "2": "open"},
#          "first_open_task": 2,           # null when done
#          "checks_run": 7,                # checks the learner asked for
#          "failing_in_a_row": 4,          # ... that failed, since the last passing one
#          "failing_in_a_row_on_task": 3,  # ... of which the trailing ones on first_open_task
#          "failing_total": 6,
#          "last_check_at": <unix time>,   # any check, also one run on the learner's behalf
#          "first_done_at": <unix time> | null}}}
#
# Only the checks a learner asks for (``check``) are attempts; the ones ``progress``,
# ``hint`` and ``solution`` run on their behalf update status and tasks, never the counts.
# A failing check has a failing test or could not run (a syntax error keeps the first
# open task it had). A fast-only check with nothing failing changes no status. A
# damaged or other-format file is started afresh, never a crash.

PROGRESS_FORMAT = "coursekit-progress"
PROGRESS_VERSION = 1
PROGRESS_FILE = "progress.json"
TaskStatus = Literal["done", "open"]
CheckKind = Literal["done", "failing", "partial"]


class ProgressFormatError(ValueError):
    """A progress record this course cannot read: damaged, or written by another version."""


def progress_path() -> Path:
    return paths.work_dir("learner") / PROGRESS_FILE


@dataclass(frozen=True)
class CheckSummary:
    """What the progress record keeps of one check."""

    exercise_id: str
    kind: CheckKind
    asked: bool  # the learner ran this check (not progress, hint or solution on their behalf)
    tasks: dict[int, bool]  # task number -> every test of it passes (empty if nothing ran)
    first_open_task: int | None
    checked_at: float


def _count(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ProgressFormatError(f"not a count: {value!r}")
    return value


def _moment(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ProgressFormatError(f"not a time: {value!r}")
    return float(value)


@dataclass
class ExerciseProgress:
    """One exercise's entry in the progress record."""

    status: TaskStatus = "open"
    started: bool = False
    tasks: dict[int, TaskStatus] = field(default_factory=dict)
    first_open_task: int | None = None
    checks_run: int = 0
    failing_in_a_row: int = 0
    failing_in_a_row_on_task: int = 0
    failing_total: int = 0
    last_check_at: float | None = None
    first_done_at: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status, "started": self.started,
            "tasks": {str(number): status for number, status in sorted(self.tasks.items())},
            "first_open_task": self.first_open_task, "checks_run": self.checks_run,
            "failing_in_a_row": self.failing_in_a_row,
            "failing_in_a_row_on_task": self.failing_in_a_row_on_task,
            "failing_total": self.failing_total,
            "last_check_at": self.last_check_at, "first_done_at": self.first_done_at,
        }  # fmt: skip

    @classmethod
    def from_json(cls, data: Any) -> ExerciseProgress:
        """Parse one entry; ``ProgressFormatError`` for anything that is not version 1's shape."""
        if not isinstance(data, dict):
            raise ProgressFormatError("an exercise entry is not an object")
        status, started, tasks = data.get("status"), data.get("started"), data.get("tasks")
        if status not in ("done", "open") or not isinstance(started, bool) or not isinstance(tasks, dict):
            raise ProgressFormatError("an exercise entry lacks status, started or tasks")
        parsed: dict[int, TaskStatus] = {}
        for number, task_status in tasks.items():
            if not str(number).isdigit() or task_status not in ("done", "open"):
                raise ProgressFormatError(f"bad task entry: {number!r}")
            parsed[int(number)] = task_status
        first = data.get("first_open_task")
        return cls(
            status=status, started=started, tasks=parsed,
            first_open_task=None if first is None else _count(first),
            checks_run=_count(data.get("checks_run")),
            failing_in_a_row=_count(data.get("failing_in_a_row")),
            failing_in_a_row_on_task=_count(data.get("failing_in_a_row_on_task")),
            failing_total=_count(data.get("failing_total")),
            last_check_at=_moment(data.get("last_check_at")),
            first_done_at=_moment(data.get("first_done_at")),
        )  # fmt: skip

    def record(self, check: CheckSummary) -> None:
        """Fold one more check into this entry."""
        self.last_check_at = check.checked_at
        if check.asked:
            self.checks_run += 1
            self.started = True
        if check.kind == "partial":
            return
        if check.tasks:
            self.tasks = {n: "done" if done else "open" for n, done in check.tasks.items()}
        if check.kind == "done":
            self.status, self.first_open_task, self.started = "done", None, True
            self.failing_in_a_row = self.failing_in_a_row_on_task = 0
            self.first_done_at = self.first_done_at or check.checked_at
            return
        # A check that could not run (syntax error) stays on the task the learner was on.
        task = check.first_open_task if check.first_open_task is not None else self.first_open_task
        same_task = self.status == "open" and task == self.first_open_task
        if check.asked:
            self.failing_in_a_row_on_task = self.failing_in_a_row_on_task + 1 if same_task else 1
            self.failing_in_a_row += 1
            self.failing_total += 1
        elif not same_task:
            self.failing_in_a_row_on_task = 0  # the learner moved on (or back) without a check
        self.status, self.first_open_task = "open", task


def parse_progress(data: Any) -> dict[str, ExerciseProgress]:
    """Every exercise's entry of a progress record (raises ``ProgressFormatError``)."""
    if not isinstance(data, dict) or data.get("format") != PROGRESS_FORMAT:
        raise ProgressFormatError("not a course progress record")
    version = data.get("version")
    if version != PROGRESS_VERSION:
        raise ProgressFormatError(f"format version {version!r}, this course reads {PROGRESS_VERSION}")
    exercises = data.get("exercises")
    if not isinstance(exercises, dict):
        raise ProgressFormatError("no exercises in the record")
    return {str(key): ExerciseProgress.from_json(entry) for key, entry in exercises.items()}


def record_check(check: CheckSummary) -> None:
    """Add one check of the learner's code to the progress record (atomically, under the lock)."""

    def change(state: Any) -> dict[str, Any]:
        try:
            entries = parse_progress(state)
        except ProgressFormatError:
            entries = {}  # damaged or another version: start again rather than fail the check
        entry = entries.setdefault(check.exercise_id, ExerciseProgress())
        entry.record(check)
        return {
            "format": PROGRESS_FORMAT, "version": PROGRESS_VERSION, "updated_at": check.checked_at,
            "exercises": {key: entries[key].to_json() for key in sorted(entries)},
        }  # fmt: skip

    statefile.update_json(progress_path(), change)
