"""Poll delivery, the bridge as the receiver (RFC 8936): for transmitters that offer no push,
the housekeeping pass asks each configured `poll_url` for its SETs.

Each round POSTs `{"returnImmediately": true, "maxEvents": N, "ack": [...], "setErrs":
{...}}` (§2.4) with the transmitter's `Authorization` header (`poll_authorization_file`), and
each SET it answers with goes through the same pipeline as a pushed one. The next round
acknowledges those the bridge took, and those it had taken before (a transmitter that did not
learn of an acknowledgment sends again); the refused ones go back in `setErrs` with the
error a push would have been answered with (§2.4.3). A SET the bridge failed on itself is
neither: the transmitter sends it again. Rounds go on while the transmitter has more, a few
per pass; a last request only acknowledges.
"""

from __future__ import annotations

import logging
from typing import Any

import httpx

from ..secret_files import SecretFileUnusable, read_secret_file
from ..settings import Settings
from .receiving import Receiver
from .set_errors import AlreadyReceived, SETError
from .transmitters import Transmitter

log = logging.getLogger("bridge.events")

MAX_EVENTS = 25
MAX_ROUNDS = 8
_RESPONSE_LIMIT = 2 * 1024 * 1024


class PollingReceiver:
    def __init__(self, receiver: Receiver, http: httpx.AsyncClient, settings: Settings) -> None:
        self._receiver = receiver
        self._http = http
        self._settings = settings

    @property
    def polled(self) -> list[Transmitter]:
        return [t for t in self._receiver.transmitters.all() if t.settings.poll_url is not None]

    async def poll_all(self) -> None:
        for transmitter in self.polled:
            try:
                await self.poll(transmitter)
            except (httpx.HTTPError, SecretFileUnusable, ValueError) as exc:
                log.warning("polling %s failed: %s", transmitter.name, exc)

    async def poll(self, transmitter: Transmitter) -> int:
        """Poll until the transmitter has nothing more (or for a few rounds); how many SETs
        were taken."""
        acks: list[str] = []
        errors: dict[str, Any] = {}
        taken = 0
        for _ in range(MAX_ROUNDS):
            answer = await self._request(transmitter, acks, errors, MAX_EVENTS)
            acks, errors = [], {}
            sets = answer.get("sets")
            if not isinstance(sets, dict) or not sets:
                return taken
            for jti, token in sets.items():
                outcome = await self._take(transmitter, token)
                if outcome is None:
                    acks.append(jti)
                    taken += 1
                elif outcome is not False:
                    errors[jti] = outcome
            if not answer.get("moreAvailable"):
                break
        if acks or errors:
            await self._request(transmitter, acks, errors, 0)
        return taken

    async def _take(self, transmitter: Transmitter, token: Any) -> dict[str, Any] | bool | None:
        """None: taken (acknowledge it); an error body (report it); False: the bridge failed
        on it itself (say nothing, it comes again)."""
        if not isinstance(token, str):
            return {"err": "invalid_request", "description": "a SET is a compact JWS string"}
        try:
            incoming = await self._receiver.receive(token)
        except AlreadyReceived:
            return None
        except SETError as refusal:
            log.info("a polled SET from %s was refused: %s", transmitter.name, refusal.err)
            return refusal.body()
        except Exception:
            log.exception("a polled SET from %s could not be processed", transmitter.name)
            return False
        if incoming.transmitter.name != transmitter.name:
            log.warning("%s answered a poll with a SET of %s", transmitter.name,
                        incoming.transmitter.name)  # fmt: skip
        return None

    async def _request(
        self, transmitter: Transmitter, acks: list[str], errors: dict[str, Any], limit: int
    ) -> dict[str, Any]:
        settings = transmitter.settings
        assert settings.poll_url is not None
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if settings.poll_authorization_file is not None:
            headers["Authorization"] = read_secret_file(
                self._settings.resolve(settings.poll_authorization_file),
                "events.transmitters.poll_authorization_file",
            )
        body: dict[str, Any] = {"returnImmediately": True, "maxEvents": limit}
        if acks:
            body["ack"] = acks
        if errors:
            body["setErrs"] = errors
        response = await self._http.post(str(settings.poll_url), json=body, headers=headers)
        if response.status_code != 200:
            raise ValueError(f"the poll endpoint answered {response.status_code}")
        if len(response.content) > _RESPONSE_LIMIT:
            raise ValueError("the poll endpoint answered with too large a body")
        answer = response.json()
        if not isinstance(answer, dict):
            raise ValueError("the poll endpoint's answer is not a JSON object")
        return answer
