"""Run an ASGI app under uvicorn in a subprocess, on a free port, and always stop it.

    with start_app("solutions.ex10_lab_app:create_app", database="nb10_tuned") as tuned:
        print(tuned.url)                 # http://127.0.0.1:<free port>

Load tests need a real server in its own process: an in-process app would share
its CPU and event loop with the load generator. Each server is one uvicorn
worker (``--no-access-log``, uvloop and httptools) started from an app factory
with keyword arguments. It is stopped however the caller ends:

- ``stop()`` or the ``with`` block ends (also when a cell raises);
- the calling process exits normally (``atexit``);
- the calling process dies without cleaning up (a killed kernel): the server
  watches its parent's pid and exits within a fraction of a second.

Each server runs in its own process group, so stopping it stops everything it
started.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import importlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Final

import httpx

from coursekit import paths, runs
from coursekit.impl import IMPLEMENTATIONS, load

__all__ = ["Server", "ServerStartError", "port_is_free", "running_servers", "start_app", "stop_all"]

PARENT_POLL_S: Final = 0.2
STOP_GRACE_S: Final = 5.0

_running: list[Server] = []
_running_lock = threading.Lock()


class ServerStartError(RuntimeError):
    """The server did not answer in time; the message carries the end of its log."""


class Server:
    """A uvicorn server running one app in a child process."""

    def __init__(self, target: str, process: subprocess.Popen[bytes], port: int, log: Path) -> None:
        self.target = target
        self.process = process
        self.port = port
        self.log = log

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.process.pid

    def running(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        """Stop the server's process group: SIGTERM, then SIGKILL after a grace period."""
        with _running_lock:
            if self in _running:
                _running.remove(self)
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        # The group may hold processes the app started; they go with it.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)

    def __enter__(self) -> Server:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.running() else "stopped"
        return f"<Server {self.target} on port {self.port}, {state}>"


def running_servers() -> list[Server]:
    """Servers this process started and has not stopped yet."""
    with _running_lock:
        return [server for server in _running if server.running()]


def stop_all() -> None:
    with _running_lock:
        servers = list(_running)
    for server in servers:
        server.stop()


atexit.register(stop_all)


def port_is_free(port: int) -> bool:
    """True when nothing listens on 127.0.0.1:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) != 0


def start_app(
    target: str, *, timeout: float = 30.0, env: dict[str, str] | None = None, **kwargs: Any
) -> Server:
    """Start ``module:factory`` (called with ``kwargs``) under uvicorn; return once it answers.

    ``kwargs`` must be JSON values (they cross a process boundary). Raises
    :class:`ServerStartError` with the server's log when it does not answer
    within ``timeout`` seconds; nothing is left running then.
    """
    log = runs.run_dir("servers") / f"{target.replace(':', '.').replace('/', '_')}.{time.monotonic_ns()}.log"
    command = [
        sys.executable, "-m", "coursekit.servers", target,
        "--kwargs", json.dumps(kwargs), "--parent", str(os.getpid()),
    ]  # fmt: skip
    child_env = {**os.environ, **(env or {})}
    child_env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(paths.ROOT), child_env.get("PYTHONPATH", "")])
    )
    runs.run_id()  # exported in COURSE_RUN_ID before the child starts: it joins this run
    child_env.setdefault(runs.RUN_ID_ENV, os.environ[runs.RUN_ID_ENV])
    with log.open("wb") as log_file:
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=log_file, stdin=subprocess.DEVNULL,
            env=child_env, cwd=paths.ROOT, start_new_session=True,
        )  # fmt: skip
    server = Server(target, process, 0, log)
    with _running_lock:
        _running.append(server)
    try:
        try:
            server.port = _read_port(process, timeout)
        except ServerStartError as exc:
            raise _failure(log, str(exc)) from None
        _wait_until_answering(server, deadline=time.monotonic() + timeout)
    except BaseException:
        server.stop()
        raise
    return server


def _failure(server_log: Path, why: str) -> ServerStartError:
    tail = server_log.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-15:]
    return ServerStartError(why + ("\n--- server log ---\n" + "\n".join(tail) if tail else ""))


def _read_port(process: subprocess.Popen[bytes], timeout: float) -> int:
    assert process.stdout is not None
    result: list[bytes] = []
    reader = threading.Thread(target=lambda: result.append(process.stdout.readline()), daemon=True)  # type: ignore[union-attr]
    reader.start()
    reader.join(timeout)
    line = result[0].decode().strip() if result else ""
    if not line.isdigit():
        raise ServerStartError(f"the server did not report its port within {timeout:g} s")
    return int(line)


def _wait_until_answering(server: Server, deadline: float) -> None:
    while time.monotonic() < deadline:
        if not server.running():
            raise _failure(server.log, f"the server for {server.target} exited during start-up")
        try:
            httpx.get(server.url + "/", timeout=1.0)
            return  # any HTTP answer (even 404) means it serves requests
        except httpx.TransportError:
            time.sleep(0.05)
    raise _failure(server.log, f"the server for {server.target} did not answer in time")


# ----------------------------------------------------------------- the child process
def _watch_parent(parent: int) -> None:
    """Exit when the parent is gone (a killed kernel cannot run its atexit handlers)."""
    while True:
        time.sleep(PARENT_POLL_S)
        if os.getppid() != parent:
            os.killpg(os.getpgrp(), signal.SIGKILL)


def _serve(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m coursekit.servers")
    parser.add_argument("target", help="module:factory, e.g. solutions.ex10_lab_app:create_app")
    parser.add_argument("--kwargs", default="{}")
    parser.add_argument("--parent", type=int, required=True)
    args = parser.parse_args(argv)
    threading.Thread(target=_watch_parent, args=(args.parent,), daemon=True).start()

    import uvicorn

    module_name, _, factory_name = args.target.partition(":")
    package, _, exercise = module_name.partition(".")
    if package in IMPLEMENTATIONS and exercise:
        # The exercise switch (and COURSE_EXERCISES_DIR) applies in the server too.
        module = load(exercise, "exercises" if package == "exercises" else "solutions")
    else:
        module = importlib.import_module(module_name)
    factory = getattr(module, factory_name)
    app = factory(**json.loads(args.kwargs))
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))  # port 0: the kernel picks a free port, no race
    config = uvicorn.Config(
        app,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level="warning",
        lifespan="on",
        backlog=2048,
    )
    server = uvicorn.Server(config)
    print(listener.getsockname()[1], flush=True)
    server.run(sockets=[listener])


if __name__ == "__main__":
    _serve()
