"""Create or repair the course's virtual environment (.venv) from the lock.

Run by every Makefile target (through its stamp file), with the system Python
(3.11 or newer). It is safe to interrupt: a half-built environment (set-up
killed during ``ensurepip``, say) is detected on the next run and rebuilt,
with a message saying so.

Installation uses uv, pinned and installed into the environment first: it
installs the ~180 pinned packages in well under a minute where pip takes a
few. Set ``COURSE_INSTALLER=pip`` to use pip alone.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
STAMP = VENV / ".installed-stamp"
LOCK = ROOT / "requirements.txt"
UV_VERSION = "0.13.8"
# JupyterLab asks every new user whether to fetch Jupyter news; a course
# environment answers for them (no pop-up, no update checks).
LAB_OVERRIDES = {
    "@jupyterlab/apputils-extension:notification": {"fetchNews": "false", "checkForUpdates": False},
}


def say(message: str) -> None:
    print(f"[setup] {message}", flush=True)


def venv_python() -> Path:
    return VENV / "bin" / "python"


def healthy() -> bool:
    """The environment exists, its Python runs, and it can install packages."""
    python = venv_python()
    if not python.exists():
        return False
    probe = subprocess.run(
        [str(python), "-c", "import pip, sys; sys.exit(0)"], capture_output=True, check=False
    )
    return probe.returncode == 0


def create() -> None:
    if VENV.exists() and not healthy():
        say(".venv is incomplete (an interrupted set-up?): removing it and building it again")
        shutil.rmtree(VENV)
    if not VENV.exists():
        say("creating the virtual environment .venv")
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)


def install() -> None:
    python = str(venv_python())
    started = time.monotonic()
    if os.environ.get("COURSE_INSTALLER", "uv") == "uv":
        say(f"installing the uv installer ({UV_VERSION})")
        got_uv = subprocess.run(
            [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", f"uv=={UV_VERSION}"],
            check=False,
        ).returncode == 0  # fmt: skip
        if got_uv:
            say("installing the course's pinned packages with uv (about 30-60 s on a first run)")
            done = subprocess.run(
                # Compiled now, so that a learner's first check does not pay for it.
                [
                    python,
                    "-m",
                    "uv",
                    "pip",
                    "install",
                    "--compile-bytecode",
                    "--python",
                    python,
                    "-r",
                    str(LOCK),
                ],
                check=False,
            )
            if done.returncode == 0:
                say(f"installed in {time.monotonic() - started:.0f} s")
                return
        say("uv did not work here; falling back to pip")
    say("installing the course's pinned packages with pip (about 2-3 minutes on a first run)")
    pip = [python, "-m", "pip", "install", "--disable-pip-version-check", "--progress-bar", "on"]
    subprocess.run([*pip, "-r", str(LOCK)], check=True)
    say(f"installed in {time.monotonic() - started:.0f} s")


def configure() -> None:
    python = str(venv_python())
    purelib = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    # The course root on the environment's import path: coursekit, exercises, solutions.
    Path(purelib, "backend-python-architect.pth").write_text(ROOT.as_posix() + "\n")
    settings = VENV / "share" / "jupyter" / "lab" / "settings"
    settings.mkdir(parents=True, exist_ok=True)
    (settings / "overrides.json").write_text(json.dumps(LAB_OVERRIDES, indent=2) + "\n")


def main() -> int:
    if sys.version_info < (3, 11):  # noqa: UP036 - run by the system Python, which may be older
        print(f"Python 3.11 or newer is needed, found {sys.version.split()[0]}", file=sys.stderr)
        return 1
    newest_input = max(LOCK.stat().st_mtime, Path(__file__).stat().st_mtime)
    if STAMP.exists() and healthy() and STAMP.stat().st_mtime >= newest_input:
        return 0
    STAMP.unlink(missing_ok=True)
    create()
    install()
    configure()
    STAMP.touch()
    say("ready")
    return 0


if __name__ == "__main__":
    sys.exit(main())
