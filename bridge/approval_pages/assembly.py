"""The approval pages' routes, on the front door's sessions and sign-in."""

from __future__ import annotations

from starlette.routing import BaseRoute, Route

from ..access_requests.service import AccessRequestService
from ..front_door.assembly import FrontDoor
from .pages import GRANTED_PATH, INBOX_PATH, MINE_PATH, ApprovalPages


def approval_page_routes(
    issuer: str, service: AccessRequestService, front_door: FrontDoor
) -> list[BaseRoute]:
    pages = ApprovalPages(
        issuer, service, front_door.sessions, front_door.sign_in, front_door.pages
    )
    # The fixed paths before the request's, which would otherwise take `granted` for an id.
    return [
        Route(INBOX_PATH, pages.inbox, methods=["GET"]),
        Route(GRANTED_PATH, pages.granted, methods=["GET"]),
        Route(GRANTED_PATH + "/{id}/revoke", pages.revoke, methods=["POST"]),
        Route(INBOX_PATH + "/{id}", pages.show, methods=["GET"]),
        Route(INBOX_PATH + "/{id}/decision", pages.decide, methods=["POST"]),
        Route(INBOX_PATH + "/{id}/review", pages.review, methods=["POST"]),
        Route(MINE_PATH, pages.mine, methods=["GET"]),
        Route(MINE_PATH + "/{id}/cancel", pages.cancel, methods=["POST"]),
    ]
