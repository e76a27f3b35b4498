"""Per-run isolation: every test run, check and notebook kernel gets its own names.

A *run* is one process tree: a notebook kernel, one ``check``, one ``pytest``.
Its databases (SQLite files, PostgreSQL schemas) and scratch folders carry the
run's id, so a notebook and a check at once, four checks at once or two
``make test`` at once never drop each other's tables. On a shared PostgreSQL
server the learner's name is part of every schema name, so a workshop room can
share one database.

The first process that asks for a run id creates it and exports it in
``COURSE_RUN_ID``: the processes it starts (a race across processes, say) join
the same run. That first process owns the run and removes its files and
schemas when it exits; runs whose owner died without cleaning up are swept by
the next run on the same machine.
"""

from __future__ import annotations

import atexit
import contextlib
import getpass
import os
import re
import secrets
import shutil
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Final

from coursekit import paths

RUN_ID_ENV: Final = "COURSE_RUN_ID"
RUNS_FOLDER: Final = "runs"
_RUN_FOLDER = re.compile(r"^r(?P<pid>\d+)x[0-9a-f]{4}$")

_cleanups: list[Callable[[], None]] = []
_owned_run: str | None = None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by another user
        return True
    return True


def run_id() -> str:
    """This run's id, e.g. ``r4242x9f3a``: the owner's pid and a random suffix."""
    global _owned_run
    existing = os.environ.get(RUN_ID_ENV, "")
    if _RUN_FOLDER.match(existing):
        return existing
    new = f"r{os.getpid()}x{secrets.token_hex(2)}"
    os.environ[RUN_ID_ENV] = new
    _owned_run = new
    atexit.register(_clean_up_owned_run)
    sweep_stale_runs()
    return new


def owns_run() -> bool:
    """True in the process that created this run (it cleans up on exit)."""
    return _owned_run is not None and _owned_run == os.environ.get(RUN_ID_ENV)


def owner_pid(run: str) -> int | None:
    match = _RUN_FOLDER.match(run)
    return int(match.group("pid")) if match else None


def learner_name() -> str:
    """Who is learning, for names on a shared server: JupyterHub's user, else the login."""
    raw = os.environ.get("JUPYTERHUB_USER") or os.environ.get("COURSE_LEARNER") or ""
    if not raw:
        try:
            raw = getpass.getuser()
        except (KeyError, OSError):
            raw = "learner"
    cleaned = re.sub(r"[^a-z0-9]+", "_", raw.lower()).strip("_")
    return (cleaned or "learner")[:12]


def host_tag() -> str:
    return re.sub(r"[^a-z0-9]+", "", socket.gethostname().lower())[:16] or "host"


def run_dir(*parts: str) -> Path:
    """A scratch folder of this run (removed when the run's owner exits)."""
    return paths.work_dir(RUNS_FOLDER, run_id(), *parts)


def on_run_exit(cleanup: Callable[[], None]) -> None:
    """Call ``cleanup`` when the run's owner exits (never in processes that joined the run)."""
    _cleanups.append(cleanup)


def _clean_up_owned_run() -> None:
    if not owns_run():
        return
    for cleanup in reversed(_cleanups):
        # A cleanup must never turn a clean exit into a traceback.
        with contextlib.suppress(Exception):
            cleanup()
    if _owned_run:
        shutil.rmtree(paths.work_dir(RUNS_FOLDER) / _owned_run, ignore_errors=True)


def sweep_stale_runs() -> list[str]:
    """Remove the scratch folders of runs whose owner process is gone; return their ids."""
    base = paths.work_dir(RUNS_FOLDER)
    swept = []
    for folder in base.iterdir():
        pid = owner_pid(folder.name)
        if pid is not None and folder.name != os.environ.get(RUN_ID_ENV) and not _pid_alive(pid):
            shutil.rmtree(folder, ignore_errors=True)
            swept.append(folder.name)
    return swept


def stale(run: str) -> bool:
    """A run of this machine whose owner has exited."""
    pid = owner_pid(run)
    return pid is not None and run != os.environ.get(RUN_ID_ENV) and not _pid_alive(pid)
