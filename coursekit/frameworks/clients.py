"""One kind of client for every framework: a synchronous ``httpx.Client``, in-process.

WSGI apps (Django, Flask) are called directly by ``httpx.WSGITransport``. ASGI
apps (FastAPI, Django's ASGI handler) need an event loop: :class:`SyncASGITransport`
runs ``httpx.ASGITransport`` on a private loop in a helper thread, so the same
synchronous contract checks (and threaded races) drive all three frameworks.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any

import anyio.from_thread
import httpx
from anyio.from_thread import BlockingPortal

BASE_URL = "http://test"


class SyncASGITransport(httpx.BaseTransport):
    """``httpx.ASGITransport`` for a synchronous client: each request runs on a private loop."""

    def __init__(self, app: Any) -> None:
        self._asgi = httpx.ASGITransport(app=app)
        self._portal_context: AbstractContextManager[BlockingPortal] = (
            anyio.from_thread.start_blocking_portal()
        )
        self._portal = self._portal_context.__enter__()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        async def send() -> httpx.Response:
            response = await self._asgi.handle_async_request(request)
            body = await response.aread()
            await response.aclose()
            return httpx.Response(response.status_code, headers=response.headers, content=body)

        return self._portal.call(send)

    def close(self) -> None:
        self._portal_context.__exit__(None, None, None)


def asgi_client(app: Any) -> httpx.Client:
    """A synchronous client of an ASGI app (FastAPI, Django's ASGIHandler), in-process."""
    return httpx.Client(transport=SyncASGITransport(app), base_url=BASE_URL)


def wsgi_client(app: Any) -> httpx.Client:
    """A synchronous client of a WSGI app (Flask, Django's WSGIHandler), in-process."""
    return httpx.Client(transport=httpx.WSGITransport(app=app), base_url=BASE_URL)
