"""A scratch copy of the course, for tests that play the learner.

The copy has the reference of the chosen exercises as the learner's code, so
the tests never depend on the state of the real ``exercises/`` folder (a
learner's half-done work must not turn the course's own tests red).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

from coursekit import catalog, paths


def make_course(root: Path, exercise_ids: tuple[str, ...] = ("ex00",)) -> Path:
    for folder in ("coursekit", "solutions"):
        shutil.copytree(paths.ROOT / folder, root / folder, ignore=shutil.ignore_patterns("__pycache__"))
    (root / "exercises").mkdir()
    (root / "exercises" / "__init__.py").write_text("")
    (root / "tests" / "exercises").mkdir(parents=True)
    keep = {catalog.find(key).module for key in exercise_ids}
    for exercise in catalog.all_exercises():
        if exercise.module not in keep:
            # Only the chosen exercises exist in the copy.
            target = root / "solutions" / exercise.module
            shutil.rmtree(target, ignore_errors=True)
            (root / "solutions" / f"{exercise.module}.py").unlink(missing_ok=True)
            continue
        source = exercise.solution_path
        if source.name == "__init__.py":
            shutil.copytree(source.parent, root / "exercises" / exercise.module,
                            ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
        else:
            shutil.copy(source, root / "exercises" / source.name)
        shutil.copy(exercise.test_path, root / "tests" / "exercises")
    for name in ("conftest.py", "pyproject.toml"):
        shutil.copy(paths.ROOT / name, root / name)
    (root / "data").symlink_to(paths.DATA_DIR)
    # Share the machine's data-set template so no run pays for loading the CSV files.
    from coursekit.dataset import bookstore_engine

    bookstore_engine("coursecopy_warmup").dispose()
    shutil.copytree(paths.work_dir("templates"), root / "work" / "templates")
    return root


def learner_edit(course: Path, filename: str, code: str) -> None:
    """Append code to a learner's module (a later def replaces the reference's)."""
    module = course / "exercises" / filename
    module.write_text(module.read_text() + "\n" + textwrap.dedent(code))


def coursekit_cli(course: Path, *args: str, timeout: float = 120,
                  env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:  # fmt: skip
    """``python -m coursekit ARGS`` run in the copy, as a learner runs it in a terminal."""
    full_env = {
        **os.environ,
        "COURSE_WORK_DIR": str(course / "work"),
        **(env or {}),
    }
    full_env.pop("COURSE_RUN_ID", None)
    return subprocess.run(
        [sys.executable, "-m", "coursekit", *args], cwd=course, env=full_env,
        capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip
