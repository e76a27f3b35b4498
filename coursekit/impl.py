"""The exercise switch: which implementation do the exercise tests import?

``COURSE_IMPL=solutions`` (the default, so ``pytest`` passes on a fresh clone)
or ``COURSE_IMPL=exercises`` (the learner's code). Tests never import either
package directly; they call :func:`load`, so one switch moves every test.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType
from typing import Final, Literal

Impl = Literal["solutions", "exercises"]
IMPL_ENV: Final = "COURSE_IMPL"
IMPLEMENTATIONS: Final[tuple[Impl, ...]] = ("solutions", "exercises")


def current_impl() -> Impl:
    """The implementation selected by ``COURSE_IMPL`` (default ``solutions``)."""
    value = os.environ.get(IMPL_ENV, "solutions").strip().lower()
    if value == "solutions":
        return "solutions"
    if value == "exercises":
        return "exercises"
    raise ValueError(f"{IMPL_ENV} must be one of {IMPLEMENTATIONS}, not {value!r}")


def load(module: str, impl: Impl | None = None) -> ModuleType:
    """Import ``<impl>.<module>``, e.g. ``load("ex01_modern_python")``."""
    return importlib.import_module(f"{impl or current_impl()}.{module}")
