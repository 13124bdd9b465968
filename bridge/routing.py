"""Starlette's router, with the route of each fixed path looked up rather than searched for.

Starlette tries the routes in order until one matches: with some forty routes, a request for
a route near the end (a named store's `/stores/{name}/access/v1/evaluation`) paid for about
forty regular expressions before its endpoint ran. `IndexedRouter` knows, for every path
without parameters and each of its methods, which route Starlette's own search would pick,
and hands the request straight to it; every other request (paths with parameters, 404s,
405s, redirects) goes through Starlette's search unchanged.
"""

from __future__ import annotations

from starlette._utils import get_route_path
from starlette.routing import BaseRoute, Host, Match, Route, Router
from starlette.types import Receive, Scope, Send

# (path as routing sees it, method) → the route Starlette's search would pick for it.
_Index = dict[tuple[str, str], Route]


class IndexedRouter(Router):
    """A `Router` whose requests for fixed paths skip the search (same routes, same order,
    same answers)."""

    _index: _Index | None = None
    _indexed = -1  # how many routes there were when the index was built

    async def app(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            route = self._lookup().get((get_route_path(scope), scope["method"]))
            if route is not None:
                # What `route.matches(scope)` gives a fixed path it fully matches.
                scope.setdefault("router", self)
                scope["route"] = route
                scope["endpoint"] = route.endpoint
                scope["path_params"] = dict(scope.get("path_params", {}))
                await route.handle(scope, receive, send)
                return
        await super().app(scope, receive, send)

    def _lookup(self) -> _Index:
        # Built on first use, and again when routes were added (as tests do to a built app).
        if self._index is None or self._indexed != len(self.routes):
            self._index = _first_matches(self.routes)
            self._indexed = len(self.routes)
        return self._index


def _first_matches(routes: list[BaseRoute]) -> _Index:
    """For each fixed path and method some `Route` serves, the first route that fully
    matches it, as Starlette's search finds it, when that route is itself a `Route` with a
    fixed path. Empty when a `Host` route is present: its match depends on a header."""
    if any(isinstance(route, Host) for route in routes):
        return {}
    index: _Index = {}
    for route in routes:
        if not _fixed(route):
            continue
        assert isinstance(route, Route) and route.methods is not None
        for method in route.methods:
            key = (route.path, method)
            if key in index:
                continue
            scope: Scope = {"type": "http", "path": route.path, "root_path": "", "method": method}
            first = next((r for r in routes if r.matches(scope)[0] is Match.FULL), None)
            if first is not None and _fixed(first):
                assert isinstance(first, Route)
                index[key] = first
    return index


def _fixed(route: BaseRoute) -> bool:
    return type(route) is Route and route.methods is not None and not route.param_convertors
