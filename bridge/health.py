"""`/healthz` (the process answers) and `/readyz` (every policy store is loaded and current,
and the client registry file in force is the one on disk)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .authzen.cedar.reload import StoreHolder
from .oauth.clients import ClientRegistry


def health_routes(
    holders: dict[str, StoreHolder], registry: ClientRegistry | None = None
) -> list[Route]:
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
        body: dict[str, object] = {"stores": stores}
        if registry is not None:
            registry.clients()  # look at the file now, not at the next request's turn
            clients: dict[str, object] = {"ready": registry.reload_error is None}
            if registry.reload_error is not None:
                clients["error"] = registry.reload_error
            body["clients"] = clients
            ready = ready and registry.reload_error is None
        return JSONResponse(
            {"status": "ready" if ready else "not ready", **body},
            status_code=200 if ready else 503,
        )

    return [Route("/healthz", healthz, methods=["GET"]), Route("/readyz", readyz, methods=["GET"])]
