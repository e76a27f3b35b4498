"""The list of exercises, discovered from the files on disk.

An exercise ``exNN`` is a module (or package) ``exercises/exNN_topic`` with a
twin in ``solutions/``, a test file ``tests/exercises/test_exNN_topic.py``,
a hint file ``coursekit/hints/exNN.toml`` and a notebook ``notebooks/NN-*.ipynb``.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

from coursekit import paths

_EXERCISE_NAME = re.compile(r"^ex(\d{2})_[a-z0-9_]+$")


@dataclass(frozen=True)
class Exercise:
    number: str  # "01"
    module: str  # "ex01_modern_python"

    @property
    def id(self) -> str:
        return f"ex{self.number}"

    @property
    def exercise_path(self) -> Path:
        return _module_path(paths.EXERCISES_DIR, self.module)

    @property
    def solution_path(self) -> Path:
        return _module_path(paths.SOLUTIONS_DIR, self.module)

    @property
    def test_path(self) -> Path:
        return paths.EXERCISE_TESTS_DIR / f"test_{self.module}.py"

    @property
    def hints_path(self) -> Path:
        return paths.HINTS_DIR / f"{self.id}.toml"

    @property
    def notebook(self) -> Path | None:
        found = sorted(paths.NOTEBOOKS_DIR.glob(f"{self.number}-*.ipynb"))
        return found[0] if found else None

    @property
    def title(self) -> str:
        """First line of the reference module's docstring (the learner's file may be broken)."""
        doc = ast.get_docstring(ast.parse(self.solution_path.read_text(encoding="utf-8")))
        return (doc or self.module).strip().splitlines()[0].rstrip(".")


def _module_path(base: Path, module: str) -> Path:
    package = base / module / "__init__.py"
    return package if package.exists() else base / f"{module}.py"


def all_exercises() -> list[Exercise]:
    """Every exercise, found from the reference solutions (a learner may delete their file)."""
    found: list[Exercise] = []
    for entry in sorted(paths.SOLUTIONS_DIR.iterdir()):
        name = entry.stem if entry.suffix == ".py" else entry.name
        match = _EXERCISE_NAME.match(name)
        if match and (entry.suffix == ".py" or (entry / "__init__.py").exists()):
            found.append(Exercise(number=match.group(1), module=name))
    return found


def find(key: str | int) -> Exercise:
    """Accept ``"ex01"``, ``"01"``, ``"1"`` or ``1``."""
    text = str(key).strip().lower().removeprefix("ex")
    if not text.isdigit():
        raise KeyError(f"not an exercise number: {key!r} (try 'ex01' or 1)")
    number = f"{int(text):02d}"
    for exercise in all_exercises():
        if exercise.number == number:
            return exercise
    known = ", ".join(e.id for e in all_exercises())
    raise KeyError(f"no exercise ex{number}; the course has: {known}")
