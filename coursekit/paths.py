"""Where things live in the course checkout.

Everything generated (databases, scratch files, learner state) goes under the
work folder, which git ignores, so running a notebook never dirties the tree.
"""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS_DIR = ROOT / "notebooks"
EXERCISES_DIR = ROOT / "exercises"
SOLUTIONS_DIR = ROOT / "solutions"
TESTS_DIR = ROOT / "tests"
EXERCISE_TESTS_DIR = TESTS_DIR / "exercises"
DATA_DIR = ROOT / "data"
DATASET_DIR = DATA_DIR / "bookstore"
HINTS_DIR = Path(__file__).resolve().parent / "hints"


def work_dir(*parts: str) -> Path:
    """Return (and create) a folder inside the git-ignored work folder.

    ``COURSE_WORK_DIR`` moves the whole work folder, e.g. to a fast local disk
    on a shared JupyterHub.
    """
    base = Path(os.environ.get("COURSE_WORK_DIR", ROOT / "work"))
    path = base.joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path
