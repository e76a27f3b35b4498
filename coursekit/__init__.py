"""coursekit: the small support library shared by the notebooks and the tests.

In a notebook::

    from coursekit import check, hint
    check("ex01")
"""

from coursekit.learner import check, hint, progress, solution

__all__ = ["check", "hint", "progress", "solution"]
