"""The learner tools behave as the README promises."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from coursekit import catalog, learner, paths
from coursekit.impl import current_impl, load


def run_cli(*args: str, cwd: Path = paths.ROOT, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "coursekit", *args],
        cwd=cwd, capture_output=True, text=True, check=False, timeout=300,
        env={**os.environ, **(env or {})},
    )  # fmt: skip


class TestImplSwitch:
    def test_default_is_solutions(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Without COURSE_IMPL the tests import the solutions, so pytest passes on a fresh clone."""
        monkeypatch.delenv("COURSE_IMPL", raising=False)
        assert current_impl() == "solutions"
        assert load("ex00_warmup").__name__ == "solutions.ex00_warmup"

    def test_exercises_and_bad_values(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """COURSE_IMPL=exercises selects the stubs; an unknown value is an error, not a silent default."""
        monkeypatch.setenv("COURSE_IMPL", "exercises")
        assert load("ex00_warmup").__name__ == "exercises.ex00_warmup"
        monkeypatch.setenv("COURSE_IMPL", "solution")
        with pytest.raises(ValueError, match="COURSE_IMPL"):
            current_impl()


class TestCatalog:
    def test_find_accepts_the_usual_spellings(self) -> None:
        """'ex01', '01', '1' and 1 all name exercise 01; an unknown number says what exists."""
        assert {catalog.find(k).module for k in ("ex01", "01", "1", 1)} == {"ex01_modern_python"}
        with pytest.raises(KeyError, match="ex00"):
            catalog.find("77")


class TestCheck:
    def test_solution_passes_with_exit_0(self) -> None:
        """`check 01 --impl solutions` reports every task done and exits 0."""
        done = run_cli("check", "01", "--impl", "solutions")
        assert done.returncode == 0, done.stdout + done.stderr
        assert "39/39 tests pass" in done.stdout
        assert "open" not in done.stdout

    def test_stub_fails_with_exit_1_and_explains(self) -> None:
        """Against the stub: a non-zero exit, the first failure with what was expected, and a hint pointer."""
        result = run_cli("check", "ex01")
        assert result.returncode == 1
        assert "0/39 tests pass" in result.stdout
        assert "expected:" in result.stdout
        assert "still a stub" in result.stdout
        assert "hint 01" in result.stdout

    def test_in_a_notebook_it_never_raises(self) -> None:
        """check() with a bad name returns a report (rendered as HTML) instead of raising."""
        report = learner.check("ex77")
        assert not report.ok
        assert "no exercise ex77" in report._repr_html_()


class TestProgress:
    def test_fresh_clone_then_solved(self, tmp_path: Path) -> None:
        """progress shows ex01 open on a fresh copy, and done once the solution is copied over the stub."""
        for folder in ("coursekit", "exercises", "solutions", "data"):
            shutil.copytree(paths.ROOT / folder, tmp_path / folder, ignore=shutil.ignore_patterns("__pycache__"))
        (tmp_path / "tests" / "exercises").mkdir(parents=True)
        for exercise in catalog.all_exercises():
            if exercise.id not in ("ex00", "ex01"):
                shutil.rmtree(tmp_path / "exercises" / exercise.module, ignore_errors=True)
                (tmp_path / "exercises" / f"{exercise.module}.py").unlink(missing_ok=True)
                continue
            shutil.copy(exercise.test_path, tmp_path / "tests" / "exercises")
        shutil.copy(paths.ROOT / "pyproject.toml", tmp_path)
        shutil.copy(paths.ROOT / "conftest.py", tmp_path)
        # Share the real work folder: its mypy cache and loaded databases make this 5x faster.
        env = {"COURSE_WORK_DIR": str(paths.work_dir())}

        fresh = run_cli("progress", cwd=tmp_path, env=env)
        assert fresh.returncode == 0, fresh.stderr
        assert _status(fresh.stdout, "ex01") == "open"
        assert "0/2 exercises done" in fresh.stdout

        shutil.copy(tmp_path / "solutions" / "ex01_modern_python.py", tmp_path / "exercises")
        solved = run_cli("progress", cwd=tmp_path, env=env)
        assert _status(solved.stdout, "ex01") == "done"
        assert _status(solved.stdout, "ex00") == "open"
        assert "1/2 exercises done" in solved.stdout


def _status(table: str, exercise_id: str) -> str:
    row = next(line for line in table.splitlines() if line.startswith(exercise_id))
    return row.split()[-1]


class TestHintsAndSolutions:
    def test_hints_are_graded_one_at_a_time(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """Each call shows the next hint; the last one repeats; --reset starts again."""
        monkeypatch.setenv("COURSE_WORK_DIR", str(tmp_path))
        total = len(learner.load_hints(catalog.find("01")))
        levels = [learner.hint("01").level for _ in range(total + 1)]
        assert levels == [*range(1, total + 1), total]
        assert learner.hint("01", reset=True).level == 1
        assert learner.hint("01", level=3).text == learner.load_hints(catalog.find("01"))[2]

    def test_solution_is_withheld_until_yours_passes(self) -> None:
        """solution 01 refuses (exit 1) while the stub fails; --force shows the reference code."""
        refused = run_cli("solution", "01")
        assert refused.returncode == 1
        assert "Not yet" in refused.stdout
        forced = run_cli("solution", "01", "--force")
        assert forced.returncode == 0
        assert "def normalize_isbn13" in forced.stdout
        assert "NotImplementedError" not in forced.stdout
