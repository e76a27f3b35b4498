"""A concurrent fetcher over an in-process API

Fetch many paths from one HTTP API concurrently, the way a backend service
fans out to a dependency: at most ``max_concurrency`` requests in flight, a
timeout on every single call, every failure reported next to the successes
(never raised), and an overall deadline after which whatever is left is
cancelled and reported. Results come back in input order.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

import httpx

__all__ = ["ErrorKind", "FetchResult", "fetch_all", "fetch_one"]

ErrorKind: TypeAlias = Literal["timeout", "http_error", "transport_error", "deadline"]


@dataclass(frozen=True, slots=True)
class FetchResult:
    """The outcome of fetching one path.

    Success: ``error is None``, ``status`` is the 2xx status code and ``value``
    the decoded JSON body. Failure: ``error`` names what went wrong, ``value`` is
    ``None``, ``status`` is the status of the response we got (``None`` when no
    usable response was handed over) and ``message`` says in words what happened.
    """

    path: str
    status: int | None = None
    value: Any = None
    error: ErrorKind | None = None
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.error is None


def _describe(exc: BaseException) -> str:
    """``ReadTimeout`` or ``ConnectError: All connection attempts failed`` (some have no text)."""
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


async def fetch_one(
    client: httpx.AsyncClient, path: str, *, per_call_timeout: float
) -> FetchResult:
    """GET ``path`` once, within ``per_call_timeout`` seconds, and classify the outcome.

    Never raises for a failed call (timeout, transport error, non-2xx status,
    body that is not JSON, a response httpx rejects): each becomes a
    ``FetchResult`` with ``error`` set. Cancellation is not a failed call: it
    propagates.
    """
    try:
        # asyncio.timeout, not httpx's timeout: httpx enforces its timeouts in the
        # network layer, which an in-process ASGITransport never reaches.
        async with asyncio.timeout(per_call_timeout):
            response = await client.get(path)
    except TimeoutError:
        return FetchResult(path, error="timeout", message=f"no response within {per_call_timeout:g} s")
    except httpx.TimeoutException as exc:
        # The client's own network timeout fired first. TimeoutException is a
        # subclass of TransportError, so this clause must come before that one.
        return FetchResult(path, error="timeout", message=_describe(exc))
    except httpx.TransportError as exc:
        return FetchResult(path, error="transport_error", message=_describe(exc))
    except httpx.RequestError as exc:
        # The server answered, but httpx gave up on the answer: a body it cannot
        # decode (DecodingError), a redirect loop (TooManyRedirects).
        return FetchResult(path, error="http_error", message=_describe(exc))
    # Note what is NOT caught: CancelledError. Whoever cancels us (the overall
    # deadline, or our caller) must see the cancellation, or timeouts stop working.
    if not response.is_success:  # 1xx and 3xx are not a value either, only 2xx is
        message = f"HTTP {response.status_code} {response.reason_phrase}"
        return FetchResult(path, response.status_code, error="http_error", message=message)
    try:
        value = response.json()
    except ValueError:  # json.JSONDecodeError and UnicodeDecodeError both are ValueErrors
        message = f"HTTP {response.status_code} with a body that is not JSON"
        return FetchResult(path, response.status_code, error="http_error", message=message)
    return FetchResult(path, response.status_code, value)


async def fetch_all(
    client: httpx.AsyncClient,
    paths: Sequence[str],
    *,
    max_concurrency: int,
    per_call_timeout: float,
    deadline: float,
) -> list[FetchResult]:
    """Fetch every path concurrently and return one result per path, in input order.

    At most ``max_concurrency`` requests are in flight at once; each request has
    ``per_call_timeout`` seconds once it has started; whatever is unfinished
    ``deadline`` seconds after the call began is cancelled and reported as
    ``"deadline"``. Raises ``TypeError``/``ValueError`` for bad arguments,
    before any request is sent.
    """
    if isinstance(paths, str):
        raise TypeError("paths must be a sequence of paths, not a single string")
    if max_concurrency < 1:
        raise ValueError(f"max_concurrency must be at least 1, got {max_concurrency}")
    if per_call_timeout <= 0:
        raise ValueError(f"per_call_timeout must be positive, got {per_call_timeout}")
    if deadline <= 0:
        raise ValueError(f"deadline must be positive, got {deadline}")

    # One semaphore for the whole batch: it is the bound. (One per task would bound nothing.)
    slots = asyncio.Semaphore(max_concurrency)
    # One entry per input position (not a dict keyed by path): keeps input order
    # and duplicates, whatever order the calls finish in. None = not finished.
    results: list[FetchResult | None] = [None] * len(paths)

    async def worker(index: int, path: str) -> None:
        # The per-call timeout lives inside fetch_one, so it starts once the slot
        # is held: time spent queueing for a slot is not the callee's fault.
        async with slots:
            results[index] = await fetch_one(client, path, per_call_timeout=per_call_timeout)

    try:
        async with asyncio.timeout(deadline):
            # fetch_one never raises for a failed call, so one bad path cannot
            # make the TaskGroup cancel its siblings. On the deadline the group
            # cancels every unfinished worker and waits until they have stopped,
            # so no task outlives this call.
            async with asyncio.TaskGroup() as group:
                for index, path in enumerate(paths):
                    group.create_task(worker(index, path))
    except TimeoutError:
        pass  # only the overall deadline raises here: fetch_one handles its own

    unfinished = f"not finished by the overall deadline of {deadline:g} s"
    return [
        result
        if result is not None
        else FetchResult(path, error="deadline", message=unfinished)
        for path, result in zip(paths, results, strict=True)
    ]
