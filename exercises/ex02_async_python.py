"""A concurrent fetcher over an in-process API

Fetch many paths from one HTTP API concurrently, the way a backend service
fans out to a dependency it does not control. Implement two coroutines:

``fetch_one(client, path, *, per_call_timeout)``
    One GET, classified into a ``FetchResult``. It never raises for a failed
    call; it does let cancellation through.

``fetch_all(client, paths, *, max_concurrency, per_call_timeout, deadline)``
    Every path, concurrently, with

    - bounded concurrency: never more than ``max_concurrency`` requests in
      flight at once, and exactly that many while there is enough work (the
      tests count the requests inside the server);
    - a per-call timeout: each request gets ``per_call_timeout`` seconds from
      the moment it starts (time spent waiting for a free slot does not count);
      a hanging endpoint costs that one path a ``"timeout"`` result, nothing more;
    - partial results: failures (non-2xx, refused connections, timeouts) are
      reported in their own ``FetchResult``; the successes are kept;
    - an overall deadline: ``deadline`` seconds after the call began, every
      unfinished path (in flight, or not yet started) is cancelled and reported
      as ``"deadline"``, and ``fetch_all`` returns promptly with no task of its
      own left running;
    - results in input order: ``results[i]`` belongs to ``paths[i]``;
    - input validation before any request is sent.

The tests run against an in-process FastAPI app through
``httpx.ASGITransport``. Careful: httpx enforces its ``timeout=`` in its
network layer, which ASGITransport never reaches, so use ``asyncio.timeout``.

Check your work: ``check("ex02")`` in the notebook, or ``python -m coursekit check 02``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

import httpx

__all__ = ["ErrorKind", "FetchResult", "fetch_all", "fetch_one"]

ErrorKind: TypeAlias = Literal["timeout", "http_error", "transport_error", "deadline"]
"""Why a fetch failed:

- ``"timeout"``: no response within ``per_call_timeout`` seconds of starting the request;
- ``"http_error"``: a response arrived but is unusable: a non-2xx status, or a 2xx
  whose body is not JSON;
- ``"transport_error"``: no response at all (``httpx.TransportError``: connection
  refused, reset, ...);
- ``"deadline"``: the overall deadline of ``fetch_all`` passed before this path finished
  (it was cancelled in flight, or never started).
"""


@dataclass(frozen=True, slots=True)
class FetchResult:
    """The outcome of fetching one path (given: you do not need to change it).

    Success: ``error is None``, ``status`` is the 2xx status code, ``value`` the
    decoded JSON body and ``message`` is ``""``. Failure: ``error`` names what went
    wrong, ``value`` is ``None``, ``status`` is the HTTP status when a response
    arrived (else ``None``), and ``message`` (never empty) says in words what happened.
    """

    path: str
    status: int | None = None
    value: Any = None
    error: ErrorKind | None = None
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.error is None


async def fetch_one(
    client: httpx.AsyncClient, path: str, *, per_call_timeout: float
) -> FetchResult:
    """GET ``path`` once, within ``per_call_timeout`` seconds, and classify the outcome.

    Returns (never raises for these):

    - 2xx with a JSON body: ``FetchResult(path, status, value)``;
    - non-2xx status, or a 2xx body that is not JSON: ``error="http_error"``,
      ``status`` = the response's status code;
    - no response within ``per_call_timeout`` seconds: ``error="timeout"``, ``status=None``;
    - ``httpx.TransportError`` (e.g. ``httpx.ConnectError``): ``error="transport_error"``,
      ``status=None``.

    Every failure carries a non-empty ``message``. If the task running this
    coroutine is cancelled, ``asyncio.CancelledError`` must propagate: do not
    turn it into a result.

    TODO 1. Send the request with ``client.get(path)`` inside
            ``async with asyncio.timeout(per_call_timeout):`` (passing
            ``timeout=`` to httpx does nothing with an in-process transport).
    TODO 2. Catch ``TimeoutError`` (and ``httpx.TimeoutException``, for real
            networks) -> "timeout"; then ``httpx.TransportError`` -> "transport_error".
            Catch nothing broader: ``except BaseException`` or
            ``except asyncio.CancelledError`` would swallow cancellations.
    TODO 3. Classify the response: ``response.is_success``, then ``response.json()``
            (it raises ``ValueError`` for a body that is not JSON).
    """
    raise NotImplementedError("TODO: fetch one path (TODO 1-3)")


async def fetch_all(
    client: httpx.AsyncClient,
    paths: Sequence[str],
    *,
    max_concurrency: int,
    per_call_timeout: float,
    deadline: float,
) -> list[FetchResult]:
    """Fetch every path concurrently and return one result per path, in input order.

    - At most ``max_concurrency`` requests are in flight at once (and that many
      whenever enough paths are waiting).
    - Each request has ``per_call_timeout`` seconds once it has started.
    - A failure is reported in that path's ``FetchResult``; it never aborts the others.
    - ``deadline`` seconds after the call began, every unfinished path is cancelled
      and reported as ``FetchResult(path, error="deadline", message=...)``; the
      function then returns at once, and none of the tasks it started is still running.
    - ``results[i]`` belongs to ``paths[i]`` (duplicates included); ``[]`` gives ``[]``.
    - If the caller cancels ``fetch_all``, ``asyncio.CancelledError`` propagates
      (after the calls in flight have been cancelled).

    Raises, before sending any request (also when ``paths`` is empty):

    - ``TypeError`` if ``paths`` is a single ``str`` (a string is a sequence of characters);
    - ``ValueError`` naming the argument if ``max_concurrency < 1``,
      ``per_call_timeout <= 0`` or ``deadline <= 0``.

    TODO 4. Validate the arguments first.
    TODO 5. Bound the fan-out with one ``asyncio.Semaphore(max_concurrency)``,
            acquired BEFORE the request starts; only then start the per-call
            timeout (call ``fetch_one`` while holding the slot).
    TODO 6. Start one task per path (``asyncio.TaskGroup``), each storing its
            result at its own index of a list pre-filled with ``None``.
    TODO 7. Wrap the task group in ``async with asyncio.timeout(deadline):`` and
            catch the ``TimeoutError`` it raises at the deadline; then every
            index still ``None`` becomes a "deadline" result.
    """
    raise NotImplementedError("TODO: fetch all paths (TODO 4-7)")
