"""Which endpoints a remote AuthZEN PDP offers: its metadata document (API 1.0 §9), cached.

Kept apart from `remote.py` because discovery decides where requests go, not what they say,
and a wrong answer here would send credentials and decisions to the wrong place:

- the document is read from `/.well-known/authzen-configuration`, inserted between host and
  path of the PDP identifier, and refused unless its `policy_decision_point` is that
  identifier;
- every endpoint URL it lists must be an absolute http(s) URL (https when the identifier is
  https); an absent endpoint member means "not supported";
- the document is kept for as long as `Cache-Control: max-age` allows, or for the client's
  life without one. Without discovery the default paths under the configured URL are used;
- a capability the bridge relies on (the token issuance profile's, when that mapping is
  chosen) must be advertised, or the document is not used: asking a PDP in a vocabulary it
  does not claim to speak could read its answers wrongly (a narrowing ignored).
"""

from __future__ import annotations

import asyncio
import copy
import time
from dataclasses import dataclass
from typing import Final, Literal
from urllib.parse import urlsplit, urlunsplit

import httpx

from .errors import PDPProtocolError
from .models import JSONObject
from .remote_transport import MAX_DETAIL, RemoteConnection, display_url

WELL_KNOWN_PATH: Final = "/.well-known/authzen-configuration"

DEFAULT_PATHS: Final[dict[str, str]] = {
    "access_evaluation_endpoint": "/access/v1/evaluation",
    "access_evaluations_endpoint": "/access/v1/evaluations",
    "search_subject_endpoint": "/access/v1/search/subject",
    "search_resource_endpoint": "/access/v1/search/resource",
    "search_action_endpoint": "/access/v1/search/action",
}

SearchKind = Literal["subject", "resource", "action"]


@dataclass(frozen=True, slots=True)
class RemoteCapabilities:
    """What the remote PDP offers, read from its metadata (or the defaults without discovery).

    An endpoint that is None is not supported. `capabilities` holds the registered capability
    URNs the PDP advertises (e.g. `urn:openid:authzen:capability:access-request`).
    """

    policy_decision_point: str
    access_evaluation_endpoint: str
    access_evaluations_endpoint: str | None
    search_subject_endpoint: str | None
    search_resource_endpoint: str | None
    search_action_endpoint: str | None
    capabilities: frozenset[str]

    @property
    def batch(self) -> bool:
        return self.access_evaluations_endpoint is not None

    def search_endpoint(self, kind: SearchKind) -> str | None:
        if kind == "subject":
            return self.search_subject_endpoint
        if kind == "resource":
            return self.search_resource_endpoint
        return self.search_action_endpoint

    def supports(self, capability: str) -> bool:
        return capability in self.capabilities


def well_known_url(identifier: str) -> str:
    """The metadata URL of a PDP identifier: the well-known segment goes between host and path.

    `https://h` -> `https://h/.well-known/authzen-configuration`;
    `https://h/stores/x` -> `https://h/.well-known/authzen-configuration/stores/x`.
    """
    parts = urlsplit(identifier)
    path = parts.path.rstrip("/")
    return urlunsplit((parts.scheme, parts.netloc, WELL_KNOWN_PATH + path, "", ""))


class RemoteMetadata:
    """The metadata of one PDP, fetched on first use and again once its max-age has passed."""

    def __init__(
        self,
        connection: RemoteConnection,
        identifier: str,
        *,
        discovery: bool,
        required: frozenset[str] = frozenset(),
    ) -> None:
        self._connection = connection
        self._required = required
        self._identifier = identifier
        self._base = identifier.rstrip("/")
        self._display = display_url(identifier)
        self._secure = urlsplit(identifier).scheme == "https"
        self._lock = asyncio.Lock()
        self._document: JSONObject | None = None
        self._view: RemoteCapabilities | None = None
        self._expires_at: float | None = None  # monotonic; None = for the client's life
        if not discovery:
            document: JSONObject = {"policy_decision_point": identifier}
            document.update({member: self._base + path for member, path in DEFAULT_PATHS.items()})
            self._document = document
            self._view = self._read_view(document)

    async def document(self) -> JSONObject:
        """The metadata document (a copy); synthesised from the defaults without discovery."""
        await self.view()
        assert self._document is not None
        return copy.deepcopy(self._document)

    async def view(self) -> RemoteCapabilities:
        """Which endpoints and capabilities the PDP offers, fetched again when stale."""
        self._connection.ensure_open()
        view = self._fresh_view()
        if view is not None:
            return view
        async with self._lock:
            view = self._fresh_view()
            if view is not None:
                return view
            document, max_age = await self._fetch()
            view = self._read_view(document)
            self._document, self._view = document, view
            self._expires_at = None if max_age is None else time.monotonic() + max_age
            return view

    def _fresh_view(self) -> RemoteCapabilities | None:
        if self._view is None:
            return None
        if self._expires_at is not None and time.monotonic() >= self._expires_at:
            return None
        return self._view

    async def _fetch(self) -> tuple[JSONObject, float | None]:
        url = well_known_url(self._identifier)
        what = "metadata"
        response = await self._connection.send("GET", url, what, None)
        document = self._connection.parse(response, what, url)
        if not isinstance(document, dict):
            raise PDPProtocolError(f"{what} from {display_url(url)} is not a JSON object")
        claimed = document.get("policy_decision_point")
        if not isinstance(claimed, str) or claimed.rstrip("/") != self._base:
            raise PDPProtocolError(
                f"{what} from {display_url(url)} names policy_decision_point "
                f"{_quote(claimed)}, not {self._display}; the document is not used"
            )
        return document, _max_age(response.headers.get("cache-control"))

    def _read_view(self, document: JSONObject) -> RemoteCapabilities:
        evaluation = self._endpoint(document, "access_evaluation_endpoint")
        if evaluation is None:
            raise PDPProtocolError(
                f"metadata of the PDP at {self._display} lacks access_evaluation_endpoint"
            )
        urns = document.get("capabilities")
        if urns is None:
            urns = []
        if not isinstance(urns, list) or not all(isinstance(urn, str) for urn in urns):
            raise PDPProtocolError(
                f"metadata of the PDP at {self._display}: capabilities is not an array of strings"
            )
        missing = sorted(self._required - set(urns))
        if missing:
            raise PDPProtocolError(
                f"metadata of the PDP at {self._display} does not advertise {missing[0]}"
            )
        return RemoteCapabilities(
            policy_decision_point=self._identifier,
            access_evaluation_endpoint=evaluation,
            access_evaluations_endpoint=self._endpoint(document, "access_evaluations_endpoint"),
            search_subject_endpoint=self._endpoint(document, "search_subject_endpoint"),
            search_resource_endpoint=self._endpoint(document, "search_resource_endpoint"),
            search_action_endpoint=self._endpoint(document, "search_action_endpoint"),
            capabilities=frozenset(urns),
        )

    def _endpoint(self, document: JSONObject, member: str) -> str | None:
        """An endpoint URL from the metadata, None when absent; a bad value is an error."""
        value = document.get(member)
        if value is None:
            return None
        problem = _url_problem(value, require_https=self._secure)
        if problem:
            raise PDPProtocolError(f"metadata of the PDP at {self._display}: {member} {problem}")
        assert isinstance(value, str)
        return value


def _url_problem(value: object, *, require_https: bool) -> str:
    """Why `value` is not a usable endpoint URL ("" when it is)."""
    if not isinstance(value, str):
        return "is not a string"
    try:
        parts = urlsplit(value)
        httpx.URL(value)
    except (ValueError, httpx.InvalidURL):
        return "is not a valid URL"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "is not an absolute http(s) URL"
    if require_https and parts.scheme != "https":
        return "is not an https URL"
    return ""


def _max_age(cache_control: str | None) -> float | None:
    """Seconds from `Cache-Control: max-age=N`; None when absent or unreadable."""
    if not cache_control:
        return None
    for directive in cache_control.split(","):
        name, _, argument = directive.strip().partition("=")
        if name.strip().lower() == "max-age":
            argument = argument.strip().strip('"')
            if argument.isdigit():
                return float(int(argument))
    return None


def _quote(value: object) -> str:
    if isinstance(value, str):
        return repr(value[:MAX_DETAIL])
    return "nothing" if value is None else f"a {type(value).__name__}"
