"""check never crashes and never hangs, whatever the learner's code does.

Each test writes a learner-shaped mistake into a copy of the course (the ex00
reference with one fault added, as a learner's edit would) and runs the real
command a learner runs, ``python -m coursekit check 00``, in a subprocess:
syntax errors, imports of missing modules, infinite loops (in a function and at
import time), ``sys.exit`` and ``os._exit``, leftover threads and processes,
huge output, a blocking call in a coroutine, a deleted file, a re-exported
reference, and the check itself being killed. Every case must give a clear
message within the time limit, keep every other result, and leave nothing
running.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import coursecopy
import pytest
from coursecopy import coursekit_cli, make_course

from coursekit import paths

pytestmark = pytest.mark.maintainers

TIME_LIMIT_S = 1  # per test phase inside check, so hangs are found quickly
TASK_2_TESTS = "Task 2"


@pytest.fixture
def course(tmp_path: Path) -> Path:
    return make_course(tmp_path / "course")


def learner_edit(course: Path, code: str) -> None:
    coursecopy.learner_edit(course, "ex00_warmup.py", code)


def run_check(course: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return coursekit_cli(course, "check", "00", *args, timeout=timeout,
                         env={"COURSEKIT_TIME_LIMIT": str(TIME_LIMIT_S)})  # fmt: skip


def task_line(output: str, task: str) -> str:
    return next(line for line in output.splitlines() if line.strip()[2:].startswith(task))


def no_process_mentions(marker: str) -> bool:
    found = subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True, check=False)
    return found.stdout.strip() == ""


def test_a_syntax_error_is_reported_like_a_compiler_would(course: Path) -> None:
    """file:line:column, the message, the offending line and a caret; no traceback."""
    learner_edit(course, "def broken(:\n    pass\n")
    result = run_check(course)
    assert result.returncode == 1
    lines = (course / "exercises" / "ex00_warmup.py").read_text().splitlines()
    line_number = next(i for i, line in enumerate(lines, 1) if line.startswith("def broken"))
    assert f"exercises/ex00_warmup.py:{line_number}:" in result.stdout
    assert "SyntaxError" in result.stdout
    assert "def broken(:" in result.stdout
    assert "^" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


def test_an_import_error_names_the_module_and_the_learners_line(course: Path) -> None:
    """The missing name, and the learner's own file:line that imports it."""
    learner_edit(course, "import requets  # a typo\n")
    result = run_check(course)
    lines = (course / "exercises" / "ex00_warmup.py").read_text().splitlines()
    line_number = next(i for i, line in enumerate(lines, 1) if line.startswith("import requets"))
    assert (
        f"exercises/ex00_warmup.py:{line_number}: ModuleNotFoundError: No module named 'requets'"
        in result.stdout
    )
    assert "import requets" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


def test_an_infinite_loop_fails_its_tests_and_keeps_every_other_result(course: Path) -> None:
    """A loop that never ends costs each affected test its time limit; Task 2 still passes."""
    learner_edit(
        course,
        """
        def cheapest_titles(books, n):
            while True:
                pass
        """,
    )
    started = time.monotonic()
    result = run_check(course)
    elapsed = time.monotonic() - started
    assert "did not finish within 1 s" in result.stdout
    assert "✗" in task_line(result.stdout, "Task 1")
    assert "✓" in task_line(result.stdout, TASK_2_TESTS)
    assert elapsed < 30, f"check took {elapsed:.0f} s"


def test_a_blocking_call_that_ignores_signals_is_stopped(course: Path) -> None:
    """A call that cannot be interrupted (SIGALRM ignored) is killed; the rest still runs."""
    learner_edit(
        course,
        """
        import signal as _signal, time as _time
        def cheapest_titles(books, n):
            _signal.signal(_signal.SIGALRM, _signal.SIG_IGN)
            _time.sleep(3600)
        """,
    )
    result = run_check(course)
    assert "could not be interrupted" in result.stdout
    assert "✓" in task_line(result.stdout, TASK_2_TESTS)


def test_code_that_loops_at_import_time_is_reported(course: Path) -> None:
    """An import that never finishes gives a message about import-time code, within the limit."""
    learner_edit(course, "while True:\n    pass\n")
    result = coursekit_cli(course, "check", "00", timeout=60, env={"COURSEKIT_IMPORT_TIME_LIMIT": "3"})
    assert "importing your module did not finish within 3 s" in result.stdout
    assert result.returncode == 1


@pytest.mark.parametrize("exit_call", ["os._exit(0)", "sys.exit(0)"])
def test_exiting_at_import_time_is_reported(course: Path, exit_call: str) -> None:
    """sys.exit or os._exit at the top level: a clear message, never a silent pass."""
    learner_edit(course, f"import os, sys\n{exit_call}\n")
    result = run_check(course)
    assert result.returncode == 1
    assert "import" in result.stdout
    assert "well done" not in result.stdout


def test_os_exit_inside_a_test_fails_that_test_only(course: Path) -> None:
    """os._exit in the learner's function fails the test that ran it; the others run on."""
    learner_edit(
        course,
        """
        import os as _os
        def cheapest_titles(books, n):
            _os._exit(0)
        """,
    )
    result = run_check(course)
    assert "the test process ended during this test" in result.stdout
    assert "✓" in task_line(result.stdout, TASK_2_TESTS)
    assert "well done" not in result.stdout


def test_leftover_threads_do_not_lose_results(course: Path) -> None:
    """A non-daemon thread that never ends: every result kept, a note, nothing left running."""
    marker = f"leftover-{uuid.uuid4().hex[:8]}"
    learner_edit(
        course,
        f"""
        import threading as _threading, time as _time
        def _forever():
            while True:
                _time.sleep(0.05)
        _threading.Thread(target=_forever, name="{marker}").start()
        """,
    )
    result = run_check(course, timeout=40)
    assert "tests pass: well done!" in result.stdout
    assert f"left threads running after the tests ({marker})" in result.stdout


def test_leftover_processes_are_stopped(course: Path) -> None:
    """A child process the learner's code started and forgot is reported and stopped."""
    seconds = 3000 + os.getpid() % 1000
    learner_edit(course, f"import subprocess as _sp\n_sp.Popen(['sleep', '{seconds}'])\n")
    result = run_check(course, timeout=40)
    assert "process(es) running; they were stopped" in result.stdout
    assert no_process_mentions(f"sleep {seconds}")


def test_huge_output_is_named(course: Path) -> None:
    """A test that prints megabytes still gets its result, and the report says who printed."""
    learner_edit(
        course,
        """
        _reference = cheapest_titles
        def cheapest_titles(books, n):
            print("x" * 3_000_000)
            return _reference(books, n)
        """,
    )
    result = run_check(course)
    assert "printed 3 MB" in result.stdout


def test_a_deleted_file_says_how_to_restore_it(course: Path) -> None:
    """A missing exercise file: the path, and the git command that brings it back."""
    (course / "exercises" / "ex00_warmup.py").unlink()
    result = run_check(course)
    assert "exercises/ex00_warmup.py is missing" in result.stdout
    assert "git checkout -- exercises/ex00_warmup.py" in result.stdout


@pytest.mark.parametrize(
    "code",
    [
        "from solutions.ex00_warmup import *\n",
        "import importlib\nimportlib.import_module('solutions.ex00_warmup')\n",
    ],
    ids=["star-import", "importlib"],
)
def test_reexporting_the_reference_is_refused(course: Path, code: str) -> None:
    """An exercise that imports the reference is refused, not passed."""
    (course / "exercises" / "ex00_warmup.py").write_text(
        '"""Warm-up with the bookstore data"""\n__all__ = ["cheapest_titles", "orders_per_status"]\n' + code
    )
    result = run_check(course)
    assert "imports the reference solution" in result.stdout
    assert "well done" not in result.stdout


def test_a_disguised_reference_import_is_blocked_at_run_time(course: Path) -> None:
    """An import the static scan cannot see is refused when the module loads."""
    (course / "exercises" / "ex00_warmup.py").write_text(
        '"""Warm-up with the bookstore data"""\nimport importlib\n'
        "globals().update(vars(importlib.import_module('sol' + 'utions.ex00_warmup')))\n"
    )
    result = run_check(course)
    assert "the reference solution is not yours to import" in result.stdout
    assert "well done" not in result.stdout


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL], ids=["terminated", "killed"])
def test_stopping_check_stops_its_tests(course: Path, how: signal.Signals) -> None:
    """Killing the check command (even with SIGKILL) leaves no test process running."""
    marker = f"stuck{uuid.uuid4().hex[:8]}"
    learner_edit(
        course,
        f"""
        import time as _time
        def cheapest_titles(books, n):
            _time.sleep(3600)  # {marker}
        """,
    )
    env = {**os.environ, "COURSE_WORK_DIR": str(course / "work"), "COURSEKIT_TIME_LIMIT": "600"}
    env.pop("COURSE_RUN_ID", None)
    check = subprocess.Popen(
        [sys.executable, "-m", "coursekit", "check", "00"], cwd=course, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 20
        while _no_child_tests(course) and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1.5)  # let the tests reach the sleeping test
        check.send_signal(how)
        check.wait(timeout=10)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not _no_child_tests(course):
            time.sleep(0.1)
        assert _no_child_tests(course), "a test process outlived the check command"
    finally:
        check.kill()


def _no_child_tests(course: Path) -> bool:
    found = subprocess.run(["pgrep", "-f", "-a", "pytest"], capture_output=True, text=True, check=False)
    ours = [line for line in found.stdout.splitlines() if "results_plugin" in line]
    return not any(_cwd_of(line.split()[0]) == course for line in ours)


def _cwd_of(pid: str) -> Path | None:
    try:
        return Path(os.readlink(f"/proc/{pid}/cwd"))
    except OSError:
        return None


def test_the_course_tests_ignore_the_learners_exercises(tmp_path: Path) -> None:
    """`make test`'s selection stays green whatever the learner's exercises do (here: os._exit at import)."""
    course = make_course(tmp_path / "course", ("ex00", "ex01"))
    shutil.copytree(paths.TESTS_DIR / "course", course / "tests" / "course",
                    ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
    shutil.copytree(paths.TESTS_DIR / "wrong", course / "tests" / "wrong")
    shutil.copytree(paths.HINTS_DIR, course / "coursekit" / "hints", dirs_exist_ok=True)
    (course / "notebooks").symlink_to(paths.NOTEBOOKS_DIR)
    learner_edit(course, "import os\nos._exit(0)\n")
    env = {**os.environ, "COURSE_WORK_DIR": str(course / "work")}
    env.pop("COURSE_RUN_ID", None)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:nbval", "tests/exercises",
         "tests/course/test_exercise_invariants.py"],
        cwd=course, env=env, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-2000:]
    assert " passed" in result.stdout.splitlines()[-1]


def test_a_blocking_call_in_a_coroutine_is_named_not_misreported(tmp_path: Path) -> None:
    """time.sleep inside async def stalls the event loop: the stalled tests say they ran out of time,
    and the async tests after them still run normally in a fresh process."""
    course = make_course(tmp_path / "course", ("ex02",))
    coursecopy.learner_edit(
        course,
        "ex02_async_python.py",
        """
        import time as _time
        _reference_fetch_one = fetch_one
        async def fetch_one(client, path, *, per_call_timeout):
            if "slow" in path or "hang" in path:
                _time.sleep(30)  # blocks the event loop
            return await _reference_fetch_one(client, path, per_call_timeout=per_call_timeout)
        """,
    )
    result = coursekit_cli(
        course, "check", "02", "--fast", timeout=300, env={"COURSEKIT_TIME_LIMIT": str(TIME_LIMIT_S)}
    )
    assert "did not finish within 1 s" in result.stdout
    assert "ClosedResourceError" not in result.stdout
    assert "✓" in task_line(result.stdout, "Task 1")
