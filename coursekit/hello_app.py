"""Hello world over the lab app's paths: the ceiling of this machine's stack.

Same framework, server and load generator as the lab apps, no work per request:
the requests per second it serves are the most any app here can serve. The lab
reports the tuned app as a fraction of it.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

__all__ = ["create_app"]


def create_app() -> FastAPI:
    app = FastAPI(title="Hello world")

    @app.api_route("/{path:path}", methods=["GET", "POST"])
    async def hello(request: Request) -> JSONResponse:
        status = 201 if request.method == "POST" else 200
        return JSONResponse({"hello": "world"}, status_code=status)

    return app
