"""What can be said about a learner's exercise before any test runs.

Checked in the notebook's own process, in milliseconds: the file exists, it
parses (a syntax error is reported like a compiler does: file, line, column,
the line itself and a caret), and it does not import the reference solutions.
"""

from __future__ import annotations

import ast
import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from coursekit import paths
from coursekit.catalog import Exercise


@dataclass(frozen=True)
class Problem:
    """Why the exercise cannot be tested yet, in the words a compiler would use."""

    kind: str  # "missing" | "syntax" | "reference"
    headline: str
    detail: str = ""


def exercise_files(exercise: Exercise) -> list[Path]:
    """The learner's files of one exercise: a module, or every module of a package."""
    path = exercise.exercise_path
    if path.name == "__init__.py":
        return sorted(p for p in path.parent.rglob("*.py") if "__pycache__" not in p.parts)
    return [path]


def display_path(path: Path) -> str:
    try:
        return path.resolve().relative_to(paths.ROOT).as_posix()
    except ValueError:
        return path.as_posix()


def last_saved(exercise: Exercise) -> dt.datetime | None:
    """When the learner last saved any file of the exercise (local time)."""
    times = [p.stat().st_mtime for p in exercise_files(exercise) if p.exists()]
    return dt.datetime.fromtimestamp(max(times)) if times else None


def _imports_reference(tree: ast.AST) -> int | None:
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names = [node.module or ""]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            # importlib.import_module("solutions.ex01_...") and friends
            names = [node.value] if node.value.startswith("solutions.") else []
        if any(name == "solutions" or name.startswith("solutions.") for name in names):
            return getattr(node, "lineno", 0)
    return None


def check_files(exercise: Exercise) -> Problem | None:
    """The first problem that stops the tests from running, or ``None``."""
    main = exercise.exercise_path
    if not main.exists():
        where = display_path(main)
        return Problem(
            "missing",
            f"{where} is missing",
            f"Restore the original with:  git checkout -- {where}",
        )
    for path in exercise_files(exercise):
        source = path.read_text(encoding="utf-8", errors="replace")
        try:
            tree = ast.parse(source, filename=str(path))
        except SyntaxError as exc:
            line = exc.lineno or 0
            column = exc.offset or 0
            code = (exc.text or "").rstrip("\n")
            shown = f"    {code.strip()}\n{_caret(code, column)}" if code.strip() else ""
            return Problem("syntax", f"{display_path(path)}:{line}:{column}: SyntaxError: {exc.msg}", shown)
        reference_line = _imports_reference(tree)
        if reference_line is not None:
            return Problem(
                "reference",
                f"{display_path(path)}:{reference_line}: imports the reference solution",
                "The exercise must be your own code: remove the import of `solutions` and write it yourself.",
            )
    return None


def _caret(code: str, column: int) -> str:
    """A caret under ``column`` of ``code`` shown stripped and indented by four spaces."""
    stripped = len(code) - len(code.lstrip())
    return " " * (4 + max(column - 1 - stripped, 0)) + "^"
