"""coursekit: the small support library shared by the notebooks and the tests.

In a notebook::

    from coursekit import check, hint, progress, solution
    check("ex01")

The learner tools are imported on first use, so that the test process inside
``check`` (which imports other parts of coursekit) starts quickly.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from coursekit.learner import check, hint, progress, solution

__all__ = ["check", "hint", "progress", "solution"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from coursekit import learner

        return getattr(learner, name)
    raise AttributeError(f"module 'coursekit' has no attribute {name!r}")
