"""The instructor's view of a room: ``python -m coursekit class-report DIR...``.

Every learner's ``check`` keeps a progress record (``work/learner/progress.json``,
see ``results_cache``). The class report reads the records of many course
folders (every home directory on a Littlest JupyterHub, say) and prints, per
exercise in the course's order, how many learners are done, in progress, stuck
or not started, and which task stops most of them. ``--html FILE`` writes the
same as a self-contained page with a bar chart (inline SVG, nothing fetched).

A DIR is a course folder, a home directory holding one (one level down), a
work folder (``COURSE_WORK_DIR``) or a progress file itself; each DIR is one
learner. Missing, damaged and other-version records count as not started, and
the report says how many there were. Learner names (folder names) appear only
with ``--names``.
"""

from __future__ import annotations

import ast
import datetime as dt
import html
import json
import re
import unicodedata
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from coursekit import catalog, results_cache
from coursekit.catalog import Exercise
from coursekit.learner import PathStep, course_path
from coursekit.results_cache import ExerciseProgress, ProgressFormatError

STUCK_AFTER = 5  # failing checks in a row on the same first open task
MAX_RECORD_BYTES = 1_000_000  # a learner's record is a few kB; refuse to read a huge file
RECORD = Path("learner") / results_cache.PROGRESS_FILE
State = Literal["done", "in progress", "stuck", "not started"]
STATES: tuple[State, ...] = ("done", "in progress", "stuck", "not started")
COLOURS = {"done": "#1a7f37", "in progress": "#0969da", "stuck": "#cf222e", "not started": "#d0d7de"}
DEFINITIONS = (
    f"stuck: open, with {STUCK_AFTER} or more failing checks in a row on the same first open task.",
    "in progress: checked at least once by the learner, not done and not stuck.",
    "not started: never checked by the learner (checks that progress runs on their behalf do not "
    "count); a missing or unreadable record counts as not started.",
    "stops most: the first open task of most learners in progress or stuck.",
)
_TASK_CLASS = re.compile(r"^Task (\d+): (.+?)\.?$")


@dataclass
class Learner:
    """One DIR: its label (the folder name), and its record or why there is none."""

    label: str
    exercises: dict[str, ExerciseProgress] = field(default_factory=dict)
    missing: bool = False  # no progress record: never ran a check
    unreadable: str = ""  # why the record could not be read
    copies: int = 1  # course folders found in the DIR (the newest record is used)

    def state(self, exercise_id: str) -> State:
        entry = self.exercises.get(exercise_id)
        if entry is None:
            return "not started"
        if entry.status == "done":
            return "done"
        if not entry.started:
            return "not started"
        return "stuck" if entry.failing_in_a_row_on_task >= STUCK_AFTER else "in progress"


def _label(folder: Path) -> str:
    """The folder name, without control characters (a name is shown, never interpreted)."""
    name = folder.name or str(folder)
    return "".join(c if unicodedata.category(c)[0] != "C" else "?" for c in name)


def _candidates(folder: Path) -> list[Path]:
    """Progress files a DIR may hold: itself, as a work folder, course folder or home directory."""
    if folder.is_file():
        return [folder]
    for direct in (folder / RECORD, folder / "work" / RECORD):
        if direct.is_file():
            return [direct]
    try:
        return sorted(folder.glob(f"*/work/{RECORD.as_posix()}"))
    except OSError:
        return []


def _read(path: Path) -> dict[str, ExerciseProgress]:
    if path.stat().st_size > MAX_RECORD_BYTES:
        raise ProgressFormatError(f"larger than {MAX_RECORD_BYTES} bytes")
    try:
        data = json.loads(path.read_bytes())
    except ValueError as exc:
        raise ProgressFormatError("not JSON") from exc
    return results_cache.parse_progress(data)


def load_learner(folder: Path) -> Learner:
    learner = Learner(_label(folder))
    try:
        found = _candidates(folder)
    except OSError as exc:  # e.g. a home directory the instructor may not read
        learner.unreadable = exc.strerror or type(exc).__name__
        return learner
    if not found:
        learner.missing = True
        return learner
    learner.copies = len(found)
    try:
        newest = max(found, key=lambda path: path.stat().st_mtime)
        learner.exercises = _read(newest)
    except OSError as exc:
        learner.unreadable = exc.strerror or type(exc).__name__
    except ProgressFormatError as exc:
        learner.unreadable = str(exc)
    return learner


def task_titles(exercise: Exercise) -> dict[int, str]:
    """Task titles from the exercise's tests (class docstrings ``Task N: title.``)."""
    try:
        tree = ast.parse(exercise.test_path.read_text(encoding="utf-8"))
    except (OSError, SyntaxError, ValueError):
        return {}
    titles: dict[int, str] = {}
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            doc = (ast.get_docstring(node) or "").strip().splitlines()
            match = _TASK_CLASS.match(doc[0]) if doc else None
            if match:
                titles.setdefault(int(match.group(1)), match.group(2))
    return titles


@dataclass
class ExerciseRow:
    exercise: Exercise
    title: str
    counts: dict[State, int]
    stops_most: tuple[int, int] | None  # (task, learners)
    stops_most_title: str
    stuck: list[tuple[str, int | None]]  # (learner label, first open task)

    def stops(self, limit: int = 40) -> str:
        """``task 2 (4 learners): its title``, the title cut to ``limit`` characters."""
        title = self.stops_most_title
        if len(title) > limit:
            title = title[: limit - 1] + "…"
        return self.stops_text + (f": {title}" if title else "")

    @property
    def stops_text(self) -> str:
        if self.stops_most is None:
            return "-"
        task, learners = self.stops_most
        plural = "s" if learners != 1 else ""
        return f"task {task} ({learners} learner{plural})"


@dataclass
class ClassReport:
    learners: list[Learner]
    rows: list[ExerciseRow]
    not_found: list[str]
    names: bool = False

    @property
    def missing(self) -> int:
        return sum(learner.missing for learner in self.learners)

    @property
    def unreadable(self) -> list[Learner]:
        return [learner for learner in self.learners if learner.unreadable]

    def _head(self) -> str:
        records = len(self.learners) - self.missing - len(self.unreadable)
        return (
            f"class report: {_count(len(self.learners), 'learner')} "
            f"({_count(records, 'progress record')}, {self.missing} without a record, "
            f"{len(self.unreadable)} unreadable)"
        )

    def _notes(self) -> list[str]:
        notes = []
        if self.unreadable:
            reasons = Counter(learner.unreadable for learner in self.unreadable)
            listed = "; ".join(f"{count} × {reason}" for reason, count in reasons.most_common())
            notes.append(f"unreadable records, counted as not started: {listed}")
        several = sum(1 for learner in self.learners if learner.copies > 1)
        if several:
            notes.append(f"{several} folders hold several course copies: the newest record of each is used")
        if self.not_found:
            notes.append(f"not found, not counted: {', '.join(self.not_found)}")
        return notes

    def _named(self) -> list[str]:
        lines = []
        for row in self.rows:
            if row.stuck:
                who = ", ".join(f"{name} (task {task})" if task else name for name, task in row.stuck)
                lines.append(f"{row.exercise.id} stuck: {who}")
        if self.unreadable:
            lines.append("unreadable: " + ", ".join(f"{x.label} ({x.unreadable})" for x in self.unreadable))
        return lines

    def __str__(self) -> str:
        head = ("exercise", "topic", *STATES, "stops most")
        table = [
            (row.exercise.id, row.title, *(str(row.counts[s]) for s in STATES), row.stops())
            for row in self.rows
        ]
        widths = [max(len(line[i]) for line in [head, *table]) for i in range(len(head) - 1)]

        def render(cells: tuple[str, ...]) -> str:
            parts = [
                cell.rjust(width) if 2 <= i < 2 + len(STATES) else cell.ljust(width)
                for i, (cell, width) in enumerate(zip(cells[:-1], widths, strict=True))
            ]
            return "  ".join([*parts, cells[-1]]).rstrip()

        lines = [self._head(), "", render(head), *(render(cells) for cells in table), ""]
        lines += list(DEFINITIONS)
        lines += self._notes()
        if self.names:
            lines += ["", *self._named()]
        else:
            lines.append("learner names are not shown; --names lists the stuck learners per exercise.")
        return "\n".join(lines)

    def html(self) -> str:
        """A self-contained page: an inline SVG bar chart and the table, nothing fetched."""
        esc = html.escape
        total = max(len(self.learners), 1)
        bar_width, row_height, label_width = 480, 26, 70
        bars = []
        for i, row in enumerate(self.rows):
            y, x = i * row_height, float(label_width)
            bars.append(f'<text x="0" y="{y + 17}" font-size="13">{esc(row.exercise.id)}</text>')
            for state in STATES:
                width = bar_width * row.counts[state] / total
                if width:
                    bars.append(
                        f'<rect x="{x:.1f}" y="{y + 4}" width="{width:.1f}" height="{row_height - 8}" '
                        f'fill="{COLOURS[state]}"><title>{esc(row.exercise.id)} {state}: '
                        f"{row.counts[state]}</title></rect>"
                    )
                x += width
        legend_y = len(self.rows) * row_height + 10
        for j, state in enumerate(STATES):
            lx = label_width + j * 120
            bars.append(f'<rect x="{lx}" y="{legend_y}" width="12" height="12" fill="{COLOURS[state]}"/>')
            bars.append(f'<text x="{lx + 16}" y="{legend_y + 11}" font-size="12">{state}</text>')
        height = legend_y + 20
        svg = (
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{label_width + bar_width + 10}" '
            f'height="{height}" role="img" aria-label="learners per state, per exercise">'
            + "".join(bars)
            + "</svg>"
        )
        head = "".join(f"<th>{esc(h)}</th>" for h in ("exercise", "topic", *STATES, "stops most"))
        cells = []
        for row in self.rows:
            stops = row.stops(limit=200)
            numbers = "".join(f'<td class="n">{row.counts[s]}</td>' for s in STATES)
            cells.append(
                f"<tr><td>{esc(row.exercise.id)}</td><td>{esc(row.title)}</td>{numbers}"
                f"<td>{esc(stops)}</td></tr>"
            )
        extra = [*DEFINITIONS, *self._notes(), *(self._named() if self.names else [])]
        notes = "".join(f"<li>{esc(line)}</li>" for line in extra)
        generated = dt.datetime.now().strftime("%Y-%m-%d %H:%M")
        return (
            '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            "<title>Class report</title><style>"
            "body{font-family:system-ui,sans-serif;margin:2em;color:#1f2328}"
            "table{border-collapse:collapse}td,th{border:1px solid #d0d7de;padding:4px 8px}"
            "td.n{text-align:right}"
            "</style></head><body>"
            f"<h1>Class report</h1><p>{esc(self._head())}; generated {esc(generated)}.</p>"
            f"<p>Each bar is the whole room ({len(self.learners)} learners); hover a bar for counts.</p>"
            f"{svg}<table><tr>{head}</tr>{''.join(cells)}</table><ul>{notes}</ul></body></html>\n"
        )


def build(folders: Sequence[str], *, names: bool = False) -> ClassReport:
    learners, not_found = [], []
    for folder in folders:
        path = Path(folder)
        if path.exists():
            learners.append(load_learner(path))
        else:
            not_found.append(_label(path))
    rows = []
    steps = course_path()
    for exercise in catalog.all_exercises():
        counts: dict[State, int] = dict.fromkeys(STATES, 0)
        stopped: Counter[int] = Counter()
        stuck: list[tuple[str, int | None]] = []
        for learner in learners:
            state = learner.state(exercise.id)
            counts[state] += 1
            entry = learner.exercises.get(exercise.id)
            if state in ("in progress", "stuck") and entry is not None:
                if entry.first_open_task is not None:
                    stopped[entry.first_open_task] += 1
                if state == "stuck":
                    stuck.append((learner.label, entry.first_open_task))
        # Most learners first; on a tie, the earlier task (it comes first on the path).
        top = min(stopped.items(), key=lambda item: (-item[1], item[0])) if stopped else None
        titles = task_titles(exercise) if top else {}
        rows.append(ExerciseRow(exercise, _topic(exercise, steps.get(exercise.number)), counts, top,
                                titles.get(top[0], "") if top else "", sorted(stuck)))  # fmt: skip
    return ClassReport(learners, rows, not_found, names)


def _topic(exercise: Exercise, step: PathStep | None) -> str:
    if step is not None and step.title:
        return step.title
    try:
        return exercise.title
    except (OSError, SyntaxError, ValueError):
        return exercise.module


def main(folders: Sequence[str], *, html_file: str | None = None, names: bool = False) -> int:
    report = build(folders, names=names)
    if not report.learners:
        print("class-report: no learner folder found in " + (", ".join(folders) or "(none given)"))
        return 2
    if html_file:  # written first: a table piped into `head` must not cost the page
        Path(html_file).write_text(report.html(), encoding="utf-8")
    print(report)
    if html_file:
        print(f"wrote {html_file}")
    return 0


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"
