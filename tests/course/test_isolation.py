"""Runs never clobber each other: concurrent checks, a notebook, several learners.

Every run (a check, a notebook kernel, a pytest session) gets its own SQLite
files and its own PostgreSQL schemas, named per run and per learner. Here
several real processes race on one checkout, on SQLite or, when
COURSE_DATABASE_URL is set, on one PostgreSQL database as a workshop room
would: each must pass with the reference code, and nothing of theirs may be
left behind.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from coursekit import db, paths

pytestmark = [pytest.mark.maintainers, pytest.mark.db]


def _check(exercise: str, learner: str) -> subprocess.Popen[str]:
    env = {**os.environ, "JUPYTERHUB_USER": learner}
    env.pop("COURSE_RUN_ID", None)
    return subprocess.Popen(
        [sys.executable, "-m", "coursekit", "check", exercise, "--impl", "solutions", "--fast"],
        cwd=paths.ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip


def _notebook(path: Path, out: Path, learner: str) -> subprocess.Popen[str]:
    env = {**os.environ, "JUPYTERHUB_USER": learner}
    env.pop("COURSE_RUN_ID", None)
    return subprocess.Popen(
        [sys.executable, "-m", "jupyter", "nbconvert", "--to", "notebook", "--execute",
         "--ExecutePreprocessor.timeout=300", "--output", str(out), str(path)],
        cwd=paths.ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip


def _leftover_schemas(learners: list[str]) -> list[str]:
    url = db.configured_url()
    if url is None:
        return []
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            names = [row[0] for row in connection.execute(text("SELECT nspname FROM pg_namespace"))]
    finally:
        engine.dispose()
    return [n for n in names if any(n.startswith(f"{learner}_") for learner in learners)]


def test_concurrent_checks_and_a_notebook_all_pass(tmp_path: Path) -> None:
    """Four checks of ex05 and ex00 by three learners and notebook 05, at once: all pass, nothing left over."""
    learners = ["ada", "grace", "linus"]
    runs = [_check("05", learners[i % 3]) for i in range(3)] + [_check("00", "ada")]
    notebook = _notebook(paths.NOTEBOOKS_DIR / "05-orm-tuning.ipynb", tmp_path / "nb05.ipynb", "grace")
    outputs = [process.communicate(timeout=600)[0] for process in runs]
    notebook_output = notebook.communicate(timeout=600)[0]
    for process, output in zip(runs, outputs, strict=True):
        assert process.returncode == 0, output
        assert "✗" not in output
    assert notebook.returncode == 0, notebook_output[-3000:]
    assert _leftover_schemas(learners) == []
    runs_dir = paths.work_dir("runs")
    assert [p.name for p in runs_dir.iterdir() if p.name.startswith("r")] == [] or all(
        _alive(p.name) for p in runs_dir.iterdir()
    )


def _alive(run: str) -> bool:
    from coursekit import runs

    return not runs.stale(run)
