"""The class report and the progress record it reads.

Each learner's ``check`` keeps ``work/learner/progress.json``; ``python -m coursekit
class-report DIR...`` reads a room of them. Here the records are written by the
course's own writer (as ``check`` writes them), into generated learner folders laid
out as on a Littlest JupyterHub: ``<home>/<course>/work/learner/progress.json``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from coursekit import catalog, classreport, paths, results_cache
from coursekit.results_cache import CheckSummary, ExerciseProgress

TASKS = (1, 2, 3)
NOW = 1_800_000_000.0


def summary(kind: str, task: int | None = 1, *, asked: bool = True, exercise: str = "ex01") -> CheckSummary:
    """One check of ``exercise``: ``task`` is the first open task (tasks before it are done)."""
    tasks = {} if task is None else {n: kind == "done" or n < task for n in TASKS}
    first = None if kind == "done" else task
    return CheckSummary(exercise, kind, asked, tasks, first, NOW)  # type: ignore[arg-type]


def play(work: Path, monkeypatch: pytest.MonkeyPatch, checks: list[CheckSummary]) -> None:
    """Record checks into the progress record of the work folder ``work``."""
    monkeypatch.setenv("COURSE_WORK_DIR", str(work))
    for check in checks:
        results_cache.record_check(check)


class TestProgressRecord:
    def test_stuck_counts_failing_checks_on_the_same_first_open_task(self) -> None:
        """Failing checks on one task add up; moving on to the next task starts the count again."""
        entry = ExerciseProgress()
        for _ in range(4):
            entry.record(summary("failing", 1))
        assert (entry.failing_in_a_row, entry.failing_in_a_row_on_task) == (4, 4)
        entry.record(summary("failing", 2))
        assert (entry.failing_in_a_row, entry.failing_in_a_row_on_task, entry.first_open_task) == (5, 1, 2)
        assert entry.tasks == {1: "done", 2: "open", 3: "open"}
        entry.record(summary("done"))
        assert entry.status == "done"
        assert entry.first_open_task is None
        assert (entry.failing_in_a_row, entry.failing_in_a_row_on_task, entry.failing_total) == (0, 0, 5)
        assert (entry.checks_run, entry.first_done_at) == (6, NOW)

    def test_a_file_that_does_not_load_stays_on_its_task(self) -> None:
        """A check that could not run (no outcomes) fails on the task the learner was on."""
        entry = ExerciseProgress()
        entry.record(summary("failing", 2))
        entry.record(summary("failing", None))
        assert (entry.first_open_task, entry.failing_in_a_row_on_task) == (2, 2)
        assert entry.tasks == {1: "done", 2: "open", 3: "open"}

    def test_checks_run_on_the_learners_behalf_are_not_attempts(self) -> None:
        """progress, hint and solution update status and tasks, never the counts, and start nothing."""
        entry = ExerciseProgress()
        entry.record(summary("failing", 1, asked=False))
        assert (entry.started, entry.checks_run, entry.failing_total) == (False, 0, 0)
        assert entry.tasks == {1: "open", 2: "open", 3: "open"}
        for _ in range(3):
            entry.record(summary("failing", 1))
        entry.record(summary("failing", 2, asked=False))  # the learner moved on, seen by progress
        assert (entry.started, entry.checks_run) == (True, 3)
        assert (entry.first_open_task, entry.failing_in_a_row_on_task) == (2, 0)
        entry.record(summary("done", asked=False))
        assert entry.status == "done"

    def test_a_fast_only_check_with_nothing_failing_changes_no_status(self) -> None:
        """Deep tests not run are not failures: the check counts as run and nothing else changes."""
        entry = ExerciseProgress()
        entry.record(summary("failing", 2))
        entry.record(summary("partial", 2))
        assert entry.checks_run == 2
        assert entry.failing_in_a_row == 1
        assert entry.first_open_task == 2

    def test_the_file_is_versioned_and_round_trips(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """progress.json names its format and version; what is written reads back the same."""
        play(tmp_path, monkeypatch, [summary("failing", 2), summary("done", exercise="ex00")])
        data = json.loads((tmp_path / "learner" / "progress.json").read_text())
        assert (data["format"], data["version"]) == ("coursekit-progress", 1)
        entries = results_cache.parse_progress(data)
        assert entries["ex00"].status == "done"
        assert entries["ex01"].to_json() == data["exercises"]["ex01"]
        assert entries["ex01"].to_json()["tasks"] == {"1": "done", "2": "open", "3": "open"}

    @pytest.mark.parametrize(
        "damage", ["", "{not json", "[1, 2]", '{"format": "coursekit-progress", "version": 0}'],
        ids=["empty", "garbled", "a list", "older version"],
    )  # fmt: skip
    def test_a_damaged_or_older_record_is_started_afresh(
        self, damage: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A record check cannot read never breaks check: it is replaced by a fresh one."""
        record = tmp_path / "learner" / "progress.json"
        record.parent.mkdir(parents=True)
        record.write_text(damage)
        play(tmp_path, monkeypatch, [summary("failing", 1)])
        assert results_cache.parse_progress(json.loads(record.read_text()))["ex01"].checks_run == 1


# ---- a generated room ---------------------------------------------------------------------------


@pytest.fixture
def room(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Nine learner folders as on a JupyterHub, in every state the report must handle.

    ex01: ada done; bob stuck on task 2; cy, dan and ivy in progress on tasks 2, 3 and 1;
    eve only ever checked by progress (not started). ex00: ada, bob, cy done.
    fay has no record, gus a garbled one, hal another format; ivy's home holds the
    work folder directly (COURSE_WORK_DIR moved it there).
    """
    home = tmp_path / "home"

    def course(name: str) -> Path:
        return home / name / "backend-course" / "work"

    done00 = summary("done", exercise="ex00")
    play(course("jupyter-ada"), monkeypatch, [done00, summary("failing", 1), summary("done")])
    play(course("jupyter-bob"), monkeypatch, [done00, summary("failing", 1), *[summary("failing", 2)] * 6])
    play(course("jupyter-cy"), monkeypatch, [done00, *[summary("failing", 2)] * 4])
    play(course("jupyter-dan"), monkeypatch, [summary("failing", 2), summary("failing", 3)])
    play(course("jupyter-eve"), monkeypatch, [summary("failing", 1, asked=False)])
    (home / "jupyter-fay" / "backend-course").mkdir(parents=True)
    for name, text in (("jupyter-gus", "{garbled"), ("jupyter-hal", json.dumps({"ex01": {"ok": True}}))):
        record = course(name) / "learner" / "progress.json"
        record.parent.mkdir(parents=True)
        record.write_text(text)
    play(home / "jupyter-ivy" / "course-work", monkeypatch, [summary("failing", 1)])
    monkeypatch.delenv("COURSE_WORK_DIR")
    return home


def row_of(text: str, exercise: str) -> list[str]:
    line = next(line for line in text.splitlines() if line.startswith(exercise + " "))
    return re.split(r"\s{2,}", line)


def folders(home: Path) -> list[str]:
    """What the shell makes of ``/home/*``; ivy is named by her work folder."""
    found = [str(p) for p in sorted(home.iterdir()) if p.name != "jupyter-ivy"]
    return [*found, str(home / "jupyter-ivy" / "course-work")]


class TestClassReport:
    def test_one_row_per_exercise_with_each_state_counted(self, room: Path) -> None:
        """done / in progress / stuck / not started per exercise, and the task that stops most."""
        text = str(classreport.build(folders(room)))
        assert text.splitlines()[0] == (
            "class report: 9 learners (6 progress records, 1 without a record, 2 unreadable)"
        )
        ids = [line.split()[0] for line in text.splitlines() if re.match(r"ex\d\d ", line)]
        assert ids == [e.id for e in catalog.all_exercises()], "rows follow the course's order"
        ex01 = row_of(text, "ex01")
        assert ex01[2:6] == ["1", "3", "1", "4"]  # done, in progress, stuck, not started
        assert ex01[6].startswith("task 2 (2 learners): ")
        assert row_of(text, "ex00")[2:7] == ["3", "0", "0", "6", "-"]
        assert row_of(text, "ex05")[2:7] == ["0", "0", "0", "9", "-"]

    def test_the_definitions_are_printed_under_the_table(self, room: Path) -> None:
        """What 'stuck' means (and the other states) is stated, with the threshold used."""
        text = str(classreport.build(folders(room)))
        assert "stuck: open, with 5 or more failing checks in a row on the same first open task." in text
        assert "a missing or unreadable record counts as not started" in text
        assert "unreadable records, counted as not started: " in text
        assert "not JSON" in text
        assert "not a course progress record" in text

    def test_no_learner_names_unless_asked(self, room: Path) -> None:
        """The table names nobody; --names lists the stuck learners per exercise (folder names)."""
        quiet = str(classreport.build(folders(room)))
        assert "jupyter-" not in quiet
        assert "--names lists the stuck learners" in quiet
        named = str(classreport.build(folders(room), names=True))
        assert "ex01 stuck: jupyter-bob (task 2)" in named
        assert "jupyter-cy" not in named.split("ex01 stuck:")[1].splitlines()[0]

    def test_a_course_folder_a_home_or_a_work_folder_all_work(self, room: Path) -> None:
        """Each kind of DIR finds the same learner's record."""
        course = room / "jupyter-bob" / "backend-course"
        for folder in (
            room / "jupyter-bob",
            course,
            course / "work",
            course / "work" / "learner" / "progress.json",
        ):
            learner = classreport.load_learner(folder)
            assert learner.state("ex01") == "stuck", folder
        assert classreport.load_learner(room / "jupyter-fay").missing

    def test_a_huge_record_is_refused_not_read(self, tmp_path: Path) -> None:
        """A record larger than any real one counts as unreadable."""
        record = tmp_path / "learner" / "progress.json"
        record.parent.mkdir(parents=True)
        record.write_text(" " * (classreport.MAX_RECORD_BYTES + 1))
        assert "larger than" in classreport.load_learner(tmp_path).unreadable

    def test_the_html_page_is_self_contained_and_escaped(self, room: Path) -> None:
        """One file with an inline SVG chart, no script and nothing fetched; learner data is escaped."""
        hostile = room / "<img src=x onerror=alert(1)>"
        (room / "jupyter-bob").rename(hostile)
        page = classreport.build(folders(room), names=True).html()
        assert "<script" not in page.lower()
        assert "<img" not in page
        assert "&lt;img src=x onerror=alert(1)&gt; (task 2)" in page
        assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", page)
        assert "@import" not in page
        assert "url(" not in page
        svg = re.search(r"<svg.*?</svg>", page, re.S)
        assert svg is not None
        chart = ET.fromstring(svg.group(0))
        bars = [e for e in chart.iter("{http://www.w3.org/2000/svg}rect") if e.find("{*}title") is not None]
        titles = {e.findtext("{*}title") for e in bars}
        assert {"ex01 stuck: 1", "ex01 in progress: 3", "ex01 done: 1", "ex01 not started: 4"} <= titles

    def test_the_command_line(self, room: Path, tmp_path: Path) -> None:
        """`python -m coursekit class-report DIR... --html FILE` prints the table and writes the page."""
        page = tmp_path / "room.html"
        env = {**os.environ}
        env.pop("COURSE_WORK_DIR", None)
        done = subprocess.run(
            [sys.executable, "-m", "coursekit", "class-report", *folders(room), str(room / "nobody"),
             "--html", str(page)],
            cwd=paths.ROOT, env=env, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert "class report: 9 learners" in done.stdout
        assert "not found, not counted: nobody" in done.stdout
        assert page.read_text().startswith("<!DOCTYPE html>")
        nothing = subprocess.run(
            [sys.executable, "-m", "coursekit", "class-report", str(room / "nobody")],
            cwd=paths.ROOT, env=env, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert nothing.returncode == 2
        assert "no learner folder found" in nothing.stdout
