"""The baseline for HTTP benchmarks: a bare Starlette JSON echo endpoint under uvicorn.

Started with the same uvicorn settings as the bridge in the benchmark (its HTTP protocol,
`bridge.serving`, included), so the ratio between the two measures what the bridge adds, not
the server.
"""

from __future__ import annotations

import sys

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bridge.serving import CoalescingHttpToolsProtocol


async def echo(request: Request) -> Response:
    return JSONResponse(await request.json())


app = Starlette(routes=[Route("/echo", echo, methods=["POST"])])

if __name__ == "__main__":
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=int(sys.argv[1]),
        log_level="warning",
        access_log=False,
        http=CoalescingHttpToolsProtocol,  # as `bridge serve` has it
    )
