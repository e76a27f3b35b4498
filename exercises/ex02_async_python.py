"""A concurrent fetcher over an in-process API

Fetch many paths from one HTTP API concurrently, the way a backend service
fans out to a dependency it does not control. Two coroutines to write:
``fetch_one`` (one GET, classified into a ``FetchResult``) and ``fetch_all``
(every path, concurrently, within a concurrency bound, a per-call timeout and
an overall deadline). Their docstrings below are the contract.

Facts about the world worth knowing before you start:

- The tests call your code through ``httpx.ASGITransport`` (the app runs in the
  same event loop) and, for a few cases, over real sockets on 127.0.0.1. httpx
  enforces its own ``timeout=`` in its network layer, which ASGITransport never
  reaches: an in-process call that hangs is not stopped by httpx.
- httpx's exceptions form a hierarchy (``httpx.HTTPError`` > ``httpx.RequestError``
  > ``httpx.TransportError`` > ``httpx.TimeoutException`` > ``httpx.ReadTimeout``, ...).
  Not every failed request is a ``TransportError``: a body that cannot be decoded
  (``httpx.DecodingError``) or a redirect loop (``httpx.TooManyRedirects``) is not.
- ``asyncio.CancelledError`` is how asyncio stops a task (a timeout, a caller
  giving up, a task group shutting down). Code that turns it into a value
  breaks every timeout above it.

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

- ``"timeout"``: no response within the time allowed for that one call, whichever
  clock ran out (``per_call_timeout``, or the client's own network timeout);
- ``"http_error"``: the server answered, but not with a value: a status other than
  2xx (redirects included), a 2xx without a JSON body (``204 No Content`` included),
  or a response httpx itself rejects (a body it cannot decode, too many redirects);
- ``"transport_error"``: no answer at all for another reason (connection refused,
  reset, ...);
- ``"deadline"``: the overall deadline of ``fetch_all`` passed before this path finished
  (it was cancelled in flight, or never started).
"""


@dataclass(frozen=True, slots=True)
class FetchResult:
    """The outcome of fetching one path (given: you do not need to change it).

    Success: ``error is None``, ``status`` is the 2xx status code, ``value`` the
    decoded JSON body and ``message`` is ``""``. Failure: ``error`` names what went
    wrong, ``value`` is ``None``, ``status`` is the status code of the response
    received (``None`` when no response was handed over: timeouts, transport
    errors, deadline, responses httpx rejected), and ``message`` (never empty)
    says in words what happened.
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
    """GET ``path`` once with ``client``, and classify the outcome.

    Returns, and never raises for, a failed call:

    - 2xx with a JSON body: ``FetchResult(path, status, value)``;
    - any other status, or a 2xx whose body is not JSON: ``error="http_error"``,
      ``status`` = the response's status code;
    - a response httpx rejects (undecodable body, redirect loop): ``error="http_error"``,
      ``status=None``;
    - no response within ``per_call_timeout`` seconds, or the client's own timeout:
      ``error="timeout"``, ``status=None``, returned soon after the time is up (and
      the request is stopped, not left running);
    - no response for another reason (e.g. connection refused): ``error="transport_error"``,
      ``status=None``.

    Every failure carries a non-empty ``message``; the request is sent exactly once
    (no retries: retrying is the caller's decision). Cancellation is not a failed
    call: if the task running this coroutine is cancelled, it ends cancelled.
    """
    raise NotImplementedError("fetch_one: see the contract above")


async def fetch_all(
    client: httpx.AsyncClient,
    paths: Sequence[str],
    *,
    max_concurrency: int,
    per_call_timeout: float,
    deadline: float,
) -> list[FetchResult]:
    """Fetch every path concurrently and return one result per path, in input order.

    - Bounded concurrency: never more than ``max_concurrency`` requests in flight at
      once, and that many whenever enough paths are waiting (the tests count the
      requests inside the server). Each path is requested exactly once.
    - Per-call timeout: each request gets ``per_call_timeout`` seconds from the moment
      it is sent; time spent waiting for a free slot does not count against it. A
      hanging endpoint costs its own path a ``"timeout"`` result, nothing more.
    - Partial results: a failed call is reported in its own ``FetchResult`` and never
      aborts or loses the others.
    - Overall deadline: ``deadline`` seconds after ``fetch_all`` was called, every
      unfinished path (in flight, or not yet sent) is cancelled and reported as
      ``FetchResult(path, error="deadline", message=...)``; no request is sent after
      the deadline; ``fetch_all`` then returns promptly, and none of the tasks it
      started is still running when it does.
    - Order: ``results[i]`` belongs to ``paths[i]``, duplicates included; ``[]`` gives ``[]``.
    - If the caller cancels ``fetch_all``, it ends cancelled too, and the calls it had
      in flight are stopped.

    Raises, before sending any request (also when ``paths`` is empty):

    - ``TypeError`` if ``paths`` is a single ``str`` (a string is a sequence of characters);
    - ``ValueError`` naming the argument if ``max_concurrency < 1``,
      ``per_call_timeout <= 0`` or ``deadline <= 0``.
    """
    raise NotImplementedError("fetch_all: see the contract above")
