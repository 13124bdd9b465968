"""`/healthz` (the process answers) and `/readyz` (every store is loaded and current)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .authzen.cedar.reload import StoreHolder


def health_routes(holders: dict[str, StoreHolder]) -> list[Route]:
    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        stores: dict[str, object] = {}
        for name, holder in holders.items():
            state: dict[str, object] = {
                "ready": holder.reload_error is None,
                "policies": len(holder.current.policies),
                "entities": len(holder.current.entities),
            }
            if holder.reload_error is not None:
                state["error"] = holder.reload_error
            stores[name] = state
        ready = all(holder.reload_error is None for holder in holders.values())
        return JSONResponse(
            {"status": "ready" if ready else "not ready", "stores": stores},
            status_code=200 if ready else 503,
        )

    return [Route("/healthz", healthz, methods=["GET"]), Route("/readyz", readyz, methods=["GET"])]
