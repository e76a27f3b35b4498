"""Learner state on disk: JSON files read and written atomically, under a lock.

Two ``hint`` calls at once, or a ``check`` in the notebook while another runs
in a terminal, must never leave a half-written file behind: every write goes
to a temporary file that replaces the old one in one step, and every
read-modify-write holds an exclusive lock on a companion ``.lock`` file.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock for ``path`` (advisory, shared by every course process)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def read_json(path: Path) -> Any:
    """The file's JSON, or ``None`` when it is missing or unreadable (a reset, not a crash)."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def write_json(path: Path, data: Any) -> None:
    """Replace ``path`` with ``data`` in one step (readers see the old file or the new one)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=path.name, suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=1)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def update_json(path: Path, change: Callable[[Any], Any]) -> Any:
    """Read, change and write back under the lock; returns what was written."""
    with locked(path):
        new = change(read_json(path))
        write_json(path, new)
        return new
