"""`bridge.routing.IndexedRouter`: the route a fixed path is looked up in is the one
Starlette's search would pick, for every route of the demo and in the cases where order
matters (a route with parameters first, several methods, a mount, a host); everything else
answers as Starlette does."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Host, Match, Mount, Route, Router

from bridge.app import create_app
from bridge.routing import IndexedRouter
from bridge.settings import load_settings
from tests.conftest import write_demo_config


def _answer(text: str):  # type: ignore[no-untyped-def]
    async def endpoint(request: Request) -> Response:
        return PlainTextResponse(f"{text} {request.url.path} {request.path_params}")

    return endpoint


class _Client:
    """Requests straight into the ASGI app (no server)."""

    def __init__(self, app: Starlette) -> None:
        self.app = app

    def request(self, method: str, path: str, **kwargs: object) -> httpx.Response:
        async def send() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
                return await http.request(method, path, **kwargs)  # type: ignore[arg-type]

        return asyncio.run(send())

    def get(self, path: str, **kwargs: object) -> httpx.Response:
        return self.request("GET", path, **kwargs)


def _client(routes: list[BaseRoute]) -> _Client:
    app = Starlette(routes=routes)
    app.router = IndexedRouter(routes)
    return _Client(app)


def _searched(routes: list[BaseRoute], path: str, method: str) -> BaseRoute | None:
    """The route Starlette's own search would pick (a full match, first in order)."""
    scope = {"type": "http", "path": path, "root_path": "", "method": method}
    return next((r for r in routes if r.matches(scope)[0] is Match.FULL), None)


def test_every_fixed_path_of_the_demo_is_looked_up_where_the_search_finds_it(
    tmp_path: Path,
) -> None:
    app = create_app(load_settings(write_demo_config(tmp_path)))
    router = app.router
    assert isinstance(router, IndexedRouter)
    index = router._lookup()
    fixed = [r for r in router.routes if type(r) is Route and not r.param_convertors]
    assert fixed and len(index) >= len(fixed)
    for route in fixed:
        assert route.methods is not None
        for method in route.methods:
            assert index.get((route.path, method)) is _searched(router.routes, route.path, method)
    # The busiest routes are among them.
    assert ("/token", "POST") in index
    assert ("/access/v1/evaluation", "POST") in index
    assert ("/stores/todo/access/v1/evaluation", "POST") in index


def test_a_looked_up_route_sees_the_scope_the_search_would_have_given() -> None:
    seen: list[dict[str, object]] = []

    async def endpoint(request: Request) -> Response:
        scope = request.scope
        seen.append({k: scope.get(k) for k in ("route", "endpoint", "path_params", "router")})
        return PlainTextResponse("ok")

    routes: list[BaseRoute] = [Route("/x", endpoint, methods=["POST"])]
    app = Starlette(routes=routes)
    app.router = IndexedRouter(routes)
    assert _Client(app).request("POST", "/x").text == "ok"
    plain = Starlette(routes=routes)
    assert _Client(plain).request("POST", "/x").text == "ok"
    looked_up, searched = seen
    assert looked_up["route"] is searched["route"] is routes[0]
    assert looked_up["endpoint"] is searched["endpoint"]
    assert looked_up["path_params"] == searched["path_params"] == {}
    assert looked_up["router"] is app.router


def test_a_route_with_parameters_before_a_fixed_one_keeps_the_path() -> None:
    routes: list[BaseRoute] = [
        Route("/items/{name}", _answer("any"), methods=["GET"]),
        Route("/items/special", _answer("special"), methods=["GET"]),
    ]
    client = _client(routes)
    assert client.get("/items/special").text == "any /items/special {'name': 'special'}"
    assert ("/items/special", "GET") not in IndexedRouter(routes)._lookup()


def test_methods_pick_their_own_route_and_others_answer_405() -> None:
    client = _client(
        [
            Route("/x", _answer("get"), methods=["GET"]),
            Route("/x", _answer("post"), methods=["POST"]),
        ]
    )
    assert client.get("/x").text == "get /x {}"
    assert client.request("POST", "/x").text == "post /x {}"
    assert client.request("HEAD", "/x").status_code == 200
    refused = client.request("PUT", "/x")
    assert refused.status_code == 405
    assert refused.headers["allow"] in ("GET, HEAD", "HEAD, GET")


def test_unknown_paths_slashes_and_mounts_answer_as_starlette_does() -> None:
    inner = Router([Route("/leaf", _answer("leaf"), methods=["GET"])])
    routes: list[BaseRoute] = [
        Route("/a/", _answer("a"), methods=["GET"]),
        Mount("/m", app=inner),
        Route("/m/leaf", _answer("shadowed"), methods=["GET"]),
    ]
    client = _client(routes)
    assert client.get("/nowhere").status_code == 404
    redirected = client.get("/a")
    assert redirected.status_code == 307
    assert redirected.headers["location"].endswith("/a/")
    # The mount comes first, so it serves /m/leaf, as in Starlette's search.
    assert client.get("/m/leaf").text.startswith("leaf")
    assert ("/m/leaf", "GET") not in IndexedRouter(routes)._lookup()


def test_a_host_route_turns_the_index_off() -> None:
    routes: list[BaseRoute] = [
        Host("api.example", app=Router([Route("/x", _answer("host"), methods=["GET"])])),
        Route("/x", _answer("plain"), methods=["GET"]),
    ]
    assert IndexedRouter(routes)._lookup() == {}
    client = _client(routes)
    assert client.get("/x", headers={"host": "api.example"}).text.startswith("host")
    assert client.get("/x").text.startswith("plain")


def test_routes_added_after_a_request_are_indexed() -> None:
    routes: list[BaseRoute] = [Route("/first", _answer("first"), methods=["GET"])]
    app = Starlette(routes=routes)
    app.router = IndexedRouter(routes)
    client = _Client(app)
    assert client.get("/first").status_code == 200
    app.router.routes.append(Route("/later", _answer("later"), methods=["GET"]))
    assert client.get("/later").text == "later /later {}"
