"""`/healthz` (the process answers) and `/readyz` (every policy store is loaded and current,
the client registry file in force is the one on disk, and the database answers)."""

from __future__ import annotations

import asyncio
import logging

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .authzen.cedar.reload import StoreHolder
from .oauth.clients import ClientRegistry
from .store.contract import Store

log = logging.getLogger("bridge")

# The most `/readyz` waits for the database (a backend bounds its own ping more tightly).
DATABASE_TIMEOUT_SECONDS = 3.0


def health_routes(
    holders: dict[str, StoreHolder],
    store: Store | None = None,
    registry: ClientRegistry | None = None,
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
        body: dict[str, object] = {"status": "ready", "stores": stores}
        if registry is not None:
            registry.clients()  # look at the file now, not at the next request's turn
            clients: dict[str, object] = {"ready": registry.reload_error is None}
            if registry.reload_error is not None:
                clients["error"] = registry.reload_error
            body["clients"] = clients
            ready = ready and registry.reload_error is None
        if store is not None:
            database = await _database(store)
            body["database"] = database
            ready = ready and database["ready"] is True
        body["status"] = "ready" if ready else "not ready"
        return JSONResponse(body, status_code=200 if ready else 503)

    return [Route("/healthz", healthz, methods=["GET"]), Route("/readyz", readyz, methods=["GET"])]


async def _database(store: Store) -> dict[str, object]:
    """{"ready": true}, or false with the reason (backends name a database without its
    password)."""
    try:
        await asyncio.wait_for(store.ping(), DATABASE_TIMEOUT_SECONDS)
    except TimeoutError:
        reason = f"no answer within {DATABASE_TIMEOUT_SECONDS:g} s"
    except Exception as exc:
        reason = str(exc) or type(exc).__name__
    else:
        return {"ready": True}
    log.warning("readyz: the database does not answer: %s", reason)
    return {"ready": False, "error": f"the database does not answer: {reason}"}
