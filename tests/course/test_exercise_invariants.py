"""Course invariants: no free points, stub/solution parity, every exercise complete."""

from __future__ import annotations

import ast
import importlib
import json
import re
import textwrap
from pathlib import Path
from types import ModuleType

import pytest

from coursekit import catalog, hints, learner, paths, variants
from coursekit.catalog import Exercise
from coursekit.invariants import free_points, parity_problems
from coursekit.runner import RunResult, run_tests

EXERCISES = catalog.all_exercises()
IDS = [e.id for e in EXERCISES]


@pytest.fixture(scope="session")
def stub_run() -> RunResult:
    # Against the stubs as shipped: `make verify` runs on a clean clone.
    """Every exercise's tests against the untouched stubs, in one subprocess."""
    return run_tests([e.test_path for e in EXERCISES], "exercises")


def test_the_course_has_exercises() -> None:
    """Discovery finds the exercises (an empty list would make every check vacuous)."""
    assert len(EXERCISES) >= 2
    assert {"ex00", "ex01"} <= set(IDS)


@pytest.mark.maintainers
@pytest.mark.parametrize("exercise", EXERCISES, ids=IDS)
def test_every_test_fails_on_the_stub(exercise: Exercise, stub_run: RunResult) -> None:
    """No free points: against the stub every test fails (bar marked stub_keeps ones)."""
    result = stub_run.for_file(exercise.test_path)
    assert result.outcomes, f"no test of {exercise.id} ran against the stub"
    assert result.failed > 0, f"{exercise.id}: nothing fails against the stub"
    free = free_points(result.outcomes)
    assert not free, "these tests pass on the untouched stub:\n" + "\n".join(o.nodeid for o in free)


@pytest.mark.maintainers
@pytest.mark.parametrize("exercise", EXERCISES, ids=IDS)
def test_exercise_and_solution_expose_the_same_api(exercise: Exercise) -> None:
    """Same __all__, same parameters for every public function and method."""
    stub = importlib.import_module(f"exercises.{exercise.module}")
    reference = importlib.import_module(f"solutions.{exercise.module}")
    assert parity_problems(stub, reference) == []


@pytest.mark.parametrize("exercise", EXERCISES, ids=IDS)
def test_every_exercise_is_complete(exercise: Exercise) -> None:
    """Each exercise has a solution, tests, hints, wrong variants and a notebook that checks it."""
    assert exercise.solution_path.exists()
    assert exercise.test_path.exists()
    assert len(learner.load_hints(exercise)) >= 3
    assert len(variants.load_variants(exercise)) >= variants.MIN_VARIANTS
    assert exercise.notebook is not None, f"no notebooks/{exercise.number}-*.ipynb"
    cells = json.loads(exercise.notebook.read_text(encoding="utf-8"))["cells"]
    sources = ["".join(cell["source"]) for cell in cells if cell["cell_type"] == "code"]
    assert any(f'check("{exercise.id}")' in source for source in sources)


# ---- the invariants themselves must catch broken exercises -------------------------


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))


def test_a_stub_that_returns_a_constant_is_caught(tmp_path: Path) -> None:
    """A stub returning the answer the tests expect gives free points, and is reported."""
    _write(tmp_path / "exercises" / "__init__.py", "")
    _write(tmp_path / "solutions" / "__init__.py", "")
    _write(
        tmp_path / "exercises" / "ex99_demo.py",
        """
        __all__ = ["answer", "double"]
        def answer() -> int:
            return 42  # a "stub" that already returns what the weak test expects
        def double(x: int) -> int:
            raise NotImplementedError
        """,
    )
    _write(
        tmp_path / "tests" / "test_ex99_demo.py",
        """
        from coursekit.impl import load
        ex = load("ex99_demo")
        def test_answer() -> None:
            assert ex.answer() == 42
        def test_double() -> None:
            assert ex.double(2) == 4
        """,
    )
    result = run_tests([tmp_path / "tests" / "test_ex99_demo.py"], "exercises", cwd=tmp_path)
    assert {o.name: o.outcome for o in result.outcomes} == {
        "test_answer": "passed",
        "test_double": "failed",
    }
    assert [o.name for o in free_points(result.outcomes)] == ["test_answer"]


def test_a_marked_stub_keeps_test_is_not_a_free_point(tmp_path: Path) -> None:
    """A passing test marked stub_keeps (behaviour the learner must keep) is allowed."""
    _write(tmp_path / "exercises" / "__init__.py", "")
    _write(
        tmp_path / "exercises" / "ex97_kept.py",
        """
        __all__ = ["login"]
        def login(password: str) -> bool:
            return password == "correct horse"  # the stub's working flow
        """,
    )
    _write(
        tmp_path / "tests" / "test_ex97_kept.py",
        """
        import pytest
        from coursekit.impl import load
        ex = load("ex97_kept")
        @pytest.mark.stub_keeps
        def test_the_right_password_still_logs_in() -> None:
            assert ex.login("correct horse")
        """,
    )
    result = run_tests([tmp_path / "tests" / "test_ex97_kept.py"], "exercises", cwd=tmp_path)
    assert [o.outcome for o in result.outcomes] == ["passed"]
    assert free_points(result.outcomes) == []


def _module(name: str, source: str) -> ModuleType:
    module = ModuleType(name)
    exec(textwrap.dedent(source), module.__dict__)
    return module


def test_parity_catches_renamed_parameters_and_missing_names() -> None:
    """A stub whose signature or names differ from the solution is reported."""
    stub = _module(
        "exercises.ex98",
        """
        __all__ = ["place_order", "Repo"]
        def place_order(customer_id, lines): ...
        class Repo:
            def get(self, key): ...
        """,
    )
    solution = _module(
        "solutions.ex98",
        """
        __all__ = ["place_order", "Repo", "OutOfStock"]
        class OutOfStock(Exception): ...
        def place_order(customer, lines, *, retries=3): ...
        class Repo:
            def get(self, key, default=None): ...
            def list(self): ...
        """,
    )
    problems = parity_problems(stub, solution)
    assert len(problems) == 4, problems
    assert any("__all__ differs" in p and "OutOfStock" in p for p in problems)
    assert any(p.startswith("place_order") for p in problems)
    assert "Repo.get: parameters differ" in problems
    assert "Repo.list: in the solution but not in the stub" in problems


# ---- tasks, hints and wrong variants ------------------------------------------------


def _task_classes(exercise: Exercise) -> tuple[dict[int, list[str]], list[str]]:
    """Task number -> test classes, and every test defined outside a task class."""
    tree = ast.parse(exercise.test_path.read_text(encoding="utf-8"))
    tasks: dict[int, list[str]] = {}
    loose = []
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
            match = re.match(r"^Task (\d+): \S", ast.get_docstring(node) or "")
            tasks.setdefault(int(match.group(1)) if match else -1, []).append(node.name)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test"):
            loose.append(node.name)
    return tasks, loose


@pytest.mark.parametrize("exercise", EXERCISES, ids=IDS)
def test_every_test_belongs_to_a_numbered_task(exercise: Exercise) -> None:
    """Tests live in classes whose docstring starts 'Task N: ', numbered 1, 2, 3, ... without gaps."""
    tasks, loose = _task_classes(exercise)
    assert loose == [], f"tests outside a task class: {loose}"
    assert -1 not in tasks, f"classes without a 'Task N: ' docstring: {tasks.get(-1)}"
    assert sorted(tasks) == list(range(1, len(tasks) + 1))


@pytest.mark.parametrize("exercise", EXERCISES, ids=IDS)
def test_every_task_has_its_three_hints(exercise: Exercise) -> None:
    """Concept, approach and sketch for every task, and no hint gives away a whole function."""
    tasks, _ = _task_classes(exercise)
    by_task = hints.load(exercise)
    assert sorted(by_task) == sorted(tasks)
    reference = importlib.import_module(f"solutions.{exercise.module}")
    assert hints.problems(exercise, set(getattr(reference, "__all__", ()))) == []


@pytest.mark.parametrize("exercise", EXERCISES, ids=IDS)
def test_wrong_variants_still_apply_to_the_reference(exercise: Exercise, tmp_path: Path) -> None:
    """Each wrong variant's edits still find their text in today's reference (make verify runs them)."""
    for number, variant in enumerate(variants.load_variants(exercise)):
        variants.build(variant, tmp_path / str(number))


def test_a_hint_with_a_whole_function_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The hint check catches a sketch that pastes a public function."""
    monkeypatch.setattr(paths, "HINTS_DIR", tmp_path)
    (tmp_path / "ex00.toml").write_text(
        '[[task]]\nnumber = 1\nconcept = "c"\napproach = "a"\n'
        'sketch = """\n    def cheapest_titles(books, n):\n        return sorted(books)\n"""\n'
    )
    assert hints.problems(catalog.find("00"), {"cheapest_titles"}) == [
        "task 1 sketch: contains the whole of `cheapest_titles`"
    ]
