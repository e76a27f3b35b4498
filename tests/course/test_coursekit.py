"""The learner tools behave as the README promises.

Tests that play the learner work in a scratch copy of the course (see
``coursecopy``), never in the real ``exercises/`` folder.
"""

from __future__ import annotations

import html
import json
import os
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from coursecopy import coursekit_cli, learner_edit, make_course

from coursekit import catalog, learner, paths, results_cache, statefile
from coursekit.impl import current_impl, load

STUB_CANCEL = """
def cheapest_titles(books, n):
    raise NotImplementedError
"""


class TestImplSwitch:
    def test_default_is_solutions(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Without COURSE_IMPL the tests import the solutions, so pytest passes on a fresh clone."""
        monkeypatch.delenv("COURSE_IMPL", raising=False)
        assert current_impl() == "solutions"
        assert load("ex00_warmup").__name__ == "solutions.ex00_warmup"

    def test_bad_values_are_errors(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """An unknown COURSE_IMPL value is an error, not a silent default."""
        monkeypatch.setenv("COURSE_IMPL", "solution")
        with pytest.raises(ValueError, match="COURSE_IMPL"):
            current_impl()


class TestCatalog:
    def test_find_accepts_the_usual_spellings(self) -> None:
        """'ex01', '01', '1' and 1 all name exercise 01; an unknown number says what exists."""
        assert {catalog.find(k).module for k in ("ex01", "01", "1", 1)} == {"ex01_modern_python"}
        with pytest.raises(KeyError, match="ex00"):
            catalog.find("77")


@pytest.fixture(scope="module")
def course(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A course copy whose ex00 is solved, except Task 1 (cheapest_titles is still a stub)."""
    root = make_course(tmp_path_factory.mktemp("coursekit") / "course")
    learner_edit(root, "ex00_warmup.py", STUB_CANCEL)
    return root


class TestCheck:
    def test_every_task_is_listed_and_each_open_one_explained(self, course: Path) -> None:
        """Done tasks are ticked; the open task names its first failing test, what was expected and what happened."""
        result = coursekit_cli(course, "check", "00")
        assert result.returncode == 1
        lines = result.stdout.splitlines()
        assert lines[0].startswith("ex00 · ")
        assert "tests pass: keep going." in lines[0]
        assert any(line.startswith("  ✗ Task 1") for line in lines)
        assert any(line.startswith("  ✓ Task 2") for line in lines)
        why = lines[next(i for i, line in enumerate(lines) if line.startswith("  ✗ Task 1")) + 1]
        assert "expected: " in why
        assert "got: NotImplementedError: still a stub, start here" in why
        assert "python -m coursekit hint 00 gives a hint for Task 1" in result.stdout

    def test_names_the_file_and_when_it_was_saved(self, course: Path) -> None:
        """The report names the file it checked, when it was saved, and that check reads the saved file."""
        result = coursekit_cli(course, "check", "00")
        saved = time.strftime(
            "%H:%M", time.localtime((course / "exercises" / "ex00_warmup.py").stat().st_mtime)
        )
        assert "checked exercises/ex00_warmup.py, saved at " + saved in result.stdout
        assert "check reads the saved file" in result.stdout

    def test_plain_text_whatever_the_terminal_asks(self, course: Path) -> None:
        """No ANSI colour codes and none of pytest's terminal advice, even with FORCE_COLOR set (as kernels do)."""
        learner_edit(course, "ex00_warmup.py", "")
        result = coursekit_cli(course, "check", "00", env={"FORCE_COLOR": "1", "PY_COLORS": "1"})
        assert "\x1b[" not in result.stdout
        assert "Use -v" not in result.stdout

    def test_the_reference_passes_with_exit_0(self, course: Path) -> None:
        """`check 00 --impl solutions`: every task done, exit 0."""
        result = coursekit_cli(course, "check", "00", "--impl", "solutions")
        assert result.returncode == 0, result.stdout + result.stderr
        assert "tests pass: well done!" in result.stdout
        assert "✗" not in result.stdout

    def test_in_a_notebook_it_never_raises(self) -> None:
        """check() with a bad name returns a report (rendered as HTML) instead of raising."""
        report = learner.check("ex77")
        assert not report.ok
        assert "no exercise ex77" in report._repr_html_()

    def test_wording_fits_where_it_is_shown(self) -> None:
        """A terminal report suggests commands; a notebook report suggests notebook calls."""
        report = learner.CheckReport("ex02", "t", "exercises", blocker="")
        report.outcomes = [
            learner.TestOutcome("t.py::TestA::test_x", "failed", "boom", task=1, task_title="a")
        ]
        assert "python -m coursekit hint 02" in str(report)
        report.where = "notebook"
        shown = html.unescape(report._repr_html_())
        assert 'hint("ex02")' in shown
        assert "python -m coursekit" not in shown


class TestProgressAndSolution:
    def test_progress_remembers_until_a_file_changes(self, tmp_path: Path) -> None:
        """progress re-runs nothing that is known; an edit makes that exercise's result stale."""
        root = make_course(tmp_path / "course")
        cold = coursekit_cli(root, "progress")
        assert "checked just now" in cold.stdout
        assert "0/1 exercises done" not in cold.stdout  # the copy's ex00 is the reference: done
        started = time.monotonic()
        warm = coursekit_cli(root, "progress")
        assert "checked just now" not in warm.stdout, "a remembered result was run again"
        assert time.monotonic() - started < 10
        learner_edit(root, "ex00_warmup.py", STUB_CANCEL)
        changed = coursekit_cli(root, "progress")
        assert "checked just now" in changed.stdout
        assert "0/1 exercises done" in changed.stdout

    def test_solution_is_withheld_until_yours_passes(self, course: Path) -> None:
        """solution 00 refuses (exit 1) while a task is open; --force shows the reference code."""
        refused = coursekit_cli(course, "solution", "00")
        assert refused.returncode == 1
        assert "Not yet" in refused.stdout
        forced = coursekit_cli(course, "solution", "00", "--force")
        assert forced.returncode == 0
        assert "def cheapest_titles" in forced.stdout
        assert "NotImplementedError" not in forced.stdout


class TestHints:
    def test_hints_follow_the_first_open_task(self, course: Path) -> None:
        """hint 00 gives Task 1's hints (the open one) in order: concept, approach, sketch, then the sketch again."""
        coursekit_cli(course, "check", "00")
        coursekit_cli(course, "hint", "00", "--reset")
        shown = [coursekit_cli(course, "hint", "00").stdout.splitlines()[0] for _ in range(3)]
        assert shown == [
            "ex00 · Task 1 · hint 2/3 (approach)",
            "ex00 · Task 1 · hint 3/3 (sketch)",
            "ex00 · Task 1 · hint 3/3 (sketch)",
        ]

    def test_a_chosen_task(self, course: Path) -> None:
        """--task 2 gives Task 2's hints, whatever is open."""
        first = coursekit_cli(course, "hint", "00", "--task", "2", "--reset")
        assert first.stdout.startswith("ex00 · Task 2 · hint 1/3 (concept)")

    def test_concurrent_hints_never_corrupt_the_state(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """20 hint calls at once (threads and processes) leave a readable state file."""
        monkeypatch.setenv("COURSE_WORK_DIR", str(tmp_path))
        env = {**os.environ, "COURSE_WORK_DIR": str(tmp_path)}

        def one(i: int) -> int:
            if i % 2:
                return learner.hint("00", task=1).level
            done = subprocess.run(
                [sys.executable, "-m", "coursekit", "hint", "00", "--task", "2"],
                env=env, capture_output=True, text=True, check=False, cwd=paths.ROOT,
            )  # fmt: skip
            return done.returncode

        with ThreadPoolExecutor(max_workers=10) as pool:
            list(pool.map(one, range(20)))
        state = statefile.read_json(tmp_path / "learner" / "hints.json")
        assert state == {"ex00/task1": 3, "ex00/task2": 3}

    def test_a_damaged_state_file_is_a_reset_not_a_crash(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """An empty or garbled state file starts the hints again instead of breaking hint for good."""
        monkeypatch.setenv("COURSE_WORK_DIR", str(tmp_path))
        state = tmp_path / "learner" / "hints.json"
        state.parent.mkdir(parents=True)
        for damage in ("", "{not json", json.dumps([1, 2])):
            state.write_text(damage)
            assert learner.hint("00", task=1).level == 1

    def test_concurrent_checks_never_corrupt_the_progress_record(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """20 writers at once (threads and processes), 5 checks each: a readable record that counts all 100."""
        monkeypatch.setenv("COURSE_WORK_DIR", str(tmp_path))
        env = {**os.environ, "COURSE_WORK_DIR": str(tmp_path)}
        script = (
            "from coursekit import results_cache as r\n"
            "for _ in range(5): r.record_check(r.CheckSummary('ex00', 'failing', True, {1: False}, 1, 1.0))\n"
        )

        def one(i: int) -> int:
            if i % 2:
                for _ in range(5):
                    results_cache.record_check(
                        results_cache.CheckSummary("ex00", "failing", True, {1: False}, 1, 1.0)
                    )
                return 0
            done = subprocess.run(
                [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=False,
                cwd=paths.ROOT,
            )  # fmt: skip
            return done.returncode

        with ThreadPoolExecutor(max_workers=10) as pool:
            assert list(pool.map(one, range(20))) == [0] * 20
        entry = results_cache.parse_progress(statefile.read_json(results_cache.progress_path()))["ex00"]
        assert (entry.checks_run, entry.failing_total, entry.failing_in_a_row_on_task) == (100, 100, 100)
        assert [p.name for p in (tmp_path / "learner").iterdir() if p.suffix == ".tmp"] == []


class TestProgressRecordAndPath:
    def test_check_records_the_learners_attempts_and_progress_does_not(self, tmp_path: Path) -> None:
        """check writes work/learner/progress.json; a check progress runs on the learner's behalf is
        not an attempt; the class report reads the course folder."""
        root = make_course(tmp_path / "course")
        learner_edit(root, "ex00_warmup.py", STUB_CANCEL)
        record = root / "work" / "learner" / "progress.json"
        coursekit_cli(root, "progress")
        entry = results_cache.parse_progress(json.loads(record.read_text()))["ex00"]
        assert (entry.status, entry.started, entry.checks_run, entry.first_open_task) == ("open", False, 0, 1)
        for _ in range(2):
            coursekit_cli(root, "check", "00")
        coursekit_cli(root, "check", "00", "--impl", "solutions")  # the reference is not the learner
        entry = results_cache.parse_progress(json.loads(record.read_text()))["ex00"]
        assert (entry.started, entry.checks_run, entry.failing_in_a_row_on_task) == (True, 2, 2)
        assert entry.tasks[1] == "open"
        assert entry.tasks[2] == "done"
        room = coursekit_cli(root, "class-report", str(root))
        assert room.returncode == 0, room.stderr
        ex00 = next(line for line in room.stdout.splitlines() if line.startswith("ex00 "))
        cells = re.split(r"\s{2,}", ex00)
        assert cells[2:6] == ["0", "1", "0", "0"]  # done, in progress, stuck, not started
        assert cells[6].startswith("task 1 (1 learner)")

    def test_progress_follows_the_path_and_names_the_next_exercise(self) -> None:
        """In the course's order, each with its time and prerequisites; 'next' is the first one open
        whose prerequisites are done."""
        steps = learner.course_path(
            '[[notebook]]\nnumber = "00"\ntitle = "welcome"\nprerequisites = []\nreading = 30\nexercise = 15\n'
            '[[notebook]]\nnumber = "01"\nreading = 60\nexercise = 60\n'  # an entry without the new fields
            '[[notebook]]\nnumber = "02"\ntitle = "async Python"\nprerequisites = ["01"]\nreading = 70\n'
            "exercise = 60\n"
        )
        assert steps["01"] == learner.PathStep("01", "", 120, ())

        def row(number: str, ok: bool) -> learner.ProgressRow:
            outcome = learner.TestOutcome("t::T::t", "passed" if ok else "failed", task=1, task_title="x")
            exercise = catalog.find(number)
            report = learner.CheckReport(exercise.id, "t", "exercises", outcomes=[outcome], checked_at=0.0)
            return learner.ProgressRow(exercise, exercise.title, report, True, steps[number])

        report = learner.ProgressReport([row("00", True), row("01", False), row("02", False)])
        assert report.next_row is not None
        assert report.next_row.exercise.id == "ex01"
        text = str(report)
        lines = text.splitlines()
        assert lines[0].split() == ["exercise", "topic", "time", "after", "tasks", "status", "last", "check"]
        assert lines[2].startswith("next  ex01")
        assert "120 min" in lines[2]
        assert "130 min  01" in lines[3]
        assert "1/3 exercises done; about 4 h 10 min of learner time left" in text
        assert lines[-1].startswith(f"next: ex01 {catalog.find('01').title} (")
        assert lines[-1].endswith("python -m coursekit check 01")
        report.where = "notebook"
        assert "check(&quot;ex01&quot;)" in report._repr_html_()

    def test_every_notebook_has_a_title_and_earlier_prerequisites(self) -> None:
        """timings.toml draws the path: each entry's prerequisites are earlier notebooks of the course."""
        steps = learner.course_path()
        assert list(steps) == sorted(steps)
        for number, step in steps.items():
            assert step.title, number
            assert all(p in steps and p < number for p in step.prerequisites), number
        assert steps["00"].prerequisites == ()
