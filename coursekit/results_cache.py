"""Remembered check results, keyed by the content of everything they depend on.

``progress`` answers from here when nothing changed since the last check, and
``solution`` and ``hint`` know where the learner is without re-running
anything. The key covers the learner's files, the exercise's tests, the
course's support code and configuration, the implementation checked and the
database in use: change any of them and the result is stale.
"""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from coursekit import paths, statefile
from coursekit.catalog import Exercise
from coursekit.check_protocol import DATABASE_URL_ENV
from coursekit.impl import Impl
from coursekit.preflight import exercise_files
from coursekit.runner import TestOutcome


def _support_files() -> list[Path]:
    kit = sorted((paths.ROOT / "coursekit").rglob("*.py"))
    return [*kit, paths.ROOT / "conftest.py", paths.ROOT / "pyproject.toml"]


def fingerprint(exercise: Exercise, impl: Impl) -> str:
    digest = hashlib.sha256()
    files = exercise_files(exercise) if impl == "exercises" else [exercise.solution_path]
    for path in [*files, exercise.test_path, *_support_files()]:
        digest.update(path.as_posix().encode())
        try:
            digest.update(path.read_bytes())
        except OSError:
            digest.update(b"<missing>")
    # The database URL as written (a different server is a different result);
    # read raw so that remembering results needs no database driver.
    database = os.environ.get(DATABASE_URL_ENV, "").strip() or "sqlite"
    digest.update(f"{impl}|{database}".encode())
    return digest.hexdigest()


def _path(exercise: Exercise, impl: Impl) -> Path:
    return paths.work_dir("learner", "results") / f"{impl}-{exercise.id}.json"


def save(exercise: Exercise, impl: Impl, key: str, payload: dict[str, Any]) -> None:
    statefile.write_json(_path(exercise, impl), {"fingerprint": key, "checked_at": time.time(), **payload})


def load(exercise: Exercise, impl: Impl) -> dict[str, Any] | None:
    data = statefile.read_json(_path(exercise, impl))
    return data if isinstance(data, dict) else None


def outcome_to_dict(outcome: TestOutcome) -> dict[str, Any]:
    data = asdict(outcome)
    data["markers"] = list(outcome.markers)
    return data


def outcome_from_dict(data: dict[str, Any]) -> TestOutcome:
    return TestOutcome(**{**data, "markers": tuple(data.get("markers", ()))})
