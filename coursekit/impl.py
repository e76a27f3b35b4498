"""The exercise switch: which implementation do the exercise tests import?

``COURSE_IMPL=solutions`` (the default, so ``pytest`` passes on a fresh clone)
or ``COURSE_IMPL=exercises`` (the learner's code). Tests never import either
package directly; they call :func:`load`, so one switch moves every test.

``COURSE_EXERCISES_DIR`` points the ``exercises`` package at another folder:
the course's own checks use it to run the tests against known wrong answers.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import os
import sys
from collections.abc import Sequence
from types import ModuleType
from typing import Final, Literal

Impl = Literal["solutions", "exercises"]
IMPL_ENV: Final = "COURSE_IMPL"
EXERCISES_DIR_ENV: Final = "COURSE_EXERCISES_DIR"
IMPLEMENTATIONS: Final[tuple[Impl, ...]] = ("solutions", "exercises")


def current_impl() -> Impl:
    """The implementation selected by ``COURSE_IMPL`` (default ``solutions``)."""
    value = os.environ.get(IMPL_ENV, "solutions").strip().lower()
    if value == "solutions":
        return "solutions"
    if value == "exercises":
        return "exercises"
    raise ValueError(f"{IMPL_ENV} must be one of {IMPLEMENTATIONS}, not {value!r}")


class ReferenceImportBlocked(ImportError):
    """Raised when code under test as the learner's tries to import the reference solutions."""


class _BlockSolutions(importlib.abc.MetaPathFinder):
    """Refuses ``import solutions...`` while the learner's code is under test.

    An exercise that re-exports the reference would otherwise pass every test.
    """

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname == "solutions" or fullname.startswith("solutions."):
            raise ReferenceImportBlocked(
                f"your exercise imports {fullname!r}: the reference solution is not yours to "
                "import; write the code in exercises/ yourself"
            )
        return None


def block_reference_imports() -> None:
    """Install the import blocker once, and drop any reference module already loaded."""
    if not any(isinstance(finder, _BlockSolutions) for finder in sys.meta_path):
        sys.meta_path.insert(0, _BlockSolutions())
    for name in [n for n in sys.modules if n == "solutions" or n.startswith("solutions.")]:
        del sys.modules[name]


def load(module: str, impl: Impl | None = None) -> ModuleType:
    """Import ``<impl>.<module>``, e.g. ``load("ex01_modern_python")``."""
    chosen = impl or current_impl()
    if chosen == "exercises":
        block_reference_imports()
        override = os.environ.get(EXERCISES_DIR_ENV)
        if override:
            package = importlib.import_module("exercises")
            package.__path__[:] = [override]
    return importlib.import_module(f"{chosen}.{module}")
