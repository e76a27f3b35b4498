"""Prove the course works where `make` did not build the environment (CI: `make test-installed`).

    python3 tools/test_installed.py                         # notebooks 00, 01 and 04
    python3 tools/test_installed.py notebooks/05-*.ipynb    # others (paths from the course folder)

Binder, a conda env from environment.yml, a JupyterHub image or someone else's CI
install the course the ordinary way: the lock, then the course itself
(`pip install -e .`), and run `pytest --nbval notebooks/` as people type it. This
builds such an environment from scratch in the work folder (no .pth file, no
.venv), checks that the course imports from anywhere as the editable checkout,
and runs plain `pytest --nbval` on the chosen notebooks.

The default notebooks: 00 (the course's own tooling: check, progress), 01 (mypy
on exercise modules) and 04 (the data set, the schema's Alembic migrations and
an exercise package's own migration): what an install can get wrong. The whole
set takes minutes and already runs in `make test`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import venv
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
from setup_venv import UV_VERSION  # noqa: E402 - one pinned uv for the whole course

DEFAULT_NOTEBOOKS = (
    "notebooks/00-welcome.ipynb",
    "notebooks/01-modern-python.ipynb",
    "notebooks/04-databases-sqlalchemy.ipynb",
)


def say(message: str) -> None:
    print(f"[test-installed] {message}", flush=True)


def plain_env_dir() -> Path:
    return Path(os.environ.get("COURSE_WORK_DIR", ROOT / "work")) / "plain-venv"


def clean_environment(bin_dir: Path) -> dict[str, str]:
    """The environment of someone who activated the new venv: nothing of make's or .venv's."""
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME"}}
    env["VIRTUAL_ENV"] = str(bin_dir.parent)
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    return env


def timed(label: str, command: Sequence[str], *, env: dict[str, str], cwd: Path) -> float:
    say(f"{label}: {' '.join(command)}")
    started = time.monotonic()
    subprocess.run(list(command), env=env, cwd=cwd, check=True)
    elapsed = time.monotonic() - started
    say(f"{label}: {elapsed:.1f} s")
    return elapsed


def build(env_dir: Path) -> dict[str, float]:
    """A fresh venv with the lock and the course (editable); the usual download caches are reused."""
    shutil.rmtree(env_dir, ignore_errors=True)
    started = time.monotonic()
    venv.create(env_dir, with_pip=True)
    times = {"venv": time.monotonic() - started}
    bin_dir = env_dir / "bin"
    python = str(bin_dir / "python")
    env = clean_environment(bin_dir)
    pip = [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    times["uv"] = timed("installer", [*pip, f"uv=={UV_VERSION}"], env=env, cwd=ROOT)
    uv_install = [python, "-m", "uv", "pip", "install", "--quiet", "--python", python]
    lock_and_course = [*uv_install, "-r", "requirements.txt", "-e", "."]
    times["install"] = timed("requirements.txt + pip install -e .", lock_and_course, env=env, cwd=ROOT)
    return times


def check_import(env_dir: Path) -> None:
    """From outside the course folder, coursekit imports as this checkout (editable), exercises too."""
    bin_dir = env_dir / "bin"
    probe = (
        "import coursekit.paths, exercises, solutions; "
        "print(coursekit.paths.ROOT); print(coursekit.paths.DATASET_DIR.is_dir())"
    )
    answer = subprocess.run(
        [str(bin_dir / "python"), "-c", probe],
        env=clean_environment(bin_dir), cwd=env_dir, capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    if answer != [str(ROOT), "True"]:
        raise SystemExit(f"the installed course does not point at this checkout: {answer}")
    say("coursekit, exercises and solutions import from anywhere, as this checkout (editable)")


def main(argv: Sequence[str]) -> int:
    notebooks = list(argv) or list(DEFAULT_NOTEBOOKS)
    env_dir = plain_env_dir()
    times = build(env_dir)
    check_import(env_dir)
    bin_dir = env_dir / "bin"
    # Exactly what others type, from the course folder: the conftest supplies nbval's options.
    plain_pytest = [str(bin_dir / "pytest"), "--nbval", *notebooks]
    times["pytest"] = timed("plain pytest", plain_pytest, env=clean_environment(bin_dir), cwd=ROOT)
    say("times: " + ", ".join(f"{step} {seconds:.1f} s" for step, seconds in times.items()))
    # The environment stays for a look inside (uv hard-links it from its cache, so it costs
    # little disk); the next run starts afresh.
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
