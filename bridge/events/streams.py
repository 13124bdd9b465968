"""An event stream's configuration (SSF 1.0 §8.1.1): what a receiver supplies, what the
transmitter does, and the JSON both read.

Receiver-supplied: `delivery` (`method` and, for push, `endpoint_url` and
`authorization_header`), `events_requested`, `description`. Transmitter-supplied: `stream_id`,
`iss`, `aud` (the receiver's configured `audience`), `events_supported` (the bridge's
`event_types.SENT`), `events_delivered` (those requested that it sends; all of them when
none were requested), `min_verification_interval`; and, for poll delivery, the
`endpoint_url` to poll. A request may repeat a Transmitter-supplied property only with its
value (`events_delivered` as it was before the change); a stream's `aud` never changes.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, replace
from typing import Any

from ..access_requests.callbacks import allowed_target
from ..settings import EventReceiverPeerSettings
from ..store.contract import StreamRecord
from ..store.contract.events import ENABLED
from .event_types import SENT
from .stream_errors import BadStreamRequest

PUSH = "urn:ietf:rfc:8935"
POLL = "urn:ietf:rfc:8936"
MAX_DESCRIPTION = 500
MAX_AUTHORIZATION = 4096
MAX_URL = 2048
_RECEIVER_SUPPLIED = ("delivery", "events_requested", "description")


@dataclass(frozen=True)
class OwnTransmitter:
    """What the transmitter supplies to every stream."""

    issuer: str
    poll_url: str  # `<public_url>/ssf/poll/`; a stream's own is this and its id
    min_verification_interval: int

    def stream_json(
        self, record: StreamRecord, receiver: EventReceiverPeerSettings
    ) -> dict[str, Any]:
        delivery = {"method": record.config["delivery"]["method"]}
        if delivery["method"] == PUSH:
            delivery["endpoint_url"] = record.config["delivery"]["endpoint_url"]
        else:
            delivery["endpoint_url"] = self.poll_url + record.id
        body: dict[str, Any] = {
            "stream_id": record.id,
            "iss": self.issuer,
            "aud": receiver.audience,
            "delivery": delivery,
            "events_supported": list(SENT),
            "events_delivered": record.events_delivered,
            "min_verification_interval": self.min_verification_interval,
        }
        if "events_requested" in record.config:
            body["events_requested"] = record.config["events_requested"]
        if "description" in record.config:
            body["description"] = record.config["description"]
        return body


@dataclass(frozen=True)
class Configured:
    """A receiver's configuration as read: the stream's `config`, what it delivers, and
    the push endpoint's `authorization_header` (None: none, or unchanged)."""

    config: dict[str, Any]
    events_delivered: list[str]
    authorization: str | None


def new_stream(
    body: dict[str, Any], receiver: EventReceiverPeerSettings, now: float, after_seq: int
) -> tuple[StreamRecord, str | None]:
    """The stream a create request (§8.1.1.1) asks for, and its push authorization."""
    configured = read_configuration(body, {}, receiver, replace_all=True)
    record = StreamRecord(
        id=secrets.token_urlsafe(18),
        receiver=receiver.name,
        config=configured.config,
        events_delivered=configured.events_delivered,
        status=ENABLED,
        reason=None,
        created_at=now,
        updated_at=now,
        after_seq=after_seq,
    )
    return record, configured.authorization


def changed_stream(
    record: StreamRecord,
    body: dict[str, Any],
    transmitter: OwnTransmitter,
    receiver: EventReceiverPeerSettings,
    now: float,
    *,
    replace_all: bool,
) -> tuple[StreamRecord, Configured]:
    """The stream after an update (PATCH, §8.1.1.3) or a replacement (PUT, §8.1.1.4)."""
    current = transmitter.stream_json(record, receiver)
    for name, value in body.items():
        if name in _RECEIVER_SUPPLIED or name == "stream_id":
            continue
        if name not in current or current[name] != value:
            raise BadStreamRequest(f"{name} is supplied by the transmitter and is not {value!r}")
    configured = read_configuration(body, record.config, receiver, replace_all=replace_all)
    updated = replace(
        record,
        config=configured.config,
        events_delivered=configured.events_delivered,
        updated_at=now,
        version=record.version + 1,
    )
    return updated, configured


def read_configuration(
    body: dict[str, Any],
    current: dict[str, Any],
    receiver: EventReceiverPeerSettings,
    *,
    replace_all: bool,
) -> Configured:
    """The Receiver-supplied properties of `body` over `current` (all of them replaced when
    `replace_all`: a missing one is deleted)."""
    config = {} if replace_all else dict(current)
    authorization = None
    if "delivery" in body or replace_all:
        config["delivery"], authorization = _delivery(body.get("delivery"), receiver)
    if "events_requested" in body:
        config["events_requested"] = _events(body["events_requested"])
    if "description" in body:
        description = body["description"]
        if not isinstance(description, str):
            raise BadStreamRequest("description must be a string")
        config["description"] = description[:MAX_DESCRIPTION]  # SSF: the transmitter may cut
    requested = config.get("events_requested")
    delivered = [t for t in SENT if requested is None or t in requested]
    return Configured(config, delivered, authorization)


def _delivery(value: Any, receiver: EventReceiverPeerSettings) -> tuple[dict[str, Any], str | None]:
    if value is None:
        return {"method": POLL}, None  # §8.1.1.1: no delivery means poll
    if not isinstance(value, dict):
        raise BadStreamRequest("delivery must be an object")
    method = value.get("method")
    if method == POLL:
        return {"method": POLL}, None
    if method != PUSH:
        raise BadStreamRequest(f"delivery.method must be {PUSH} or {POLL}")
    url = value.get("endpoint_url")
    if (
        not isinstance(url, str)
        or len(url) > MAX_URL
        or not allowed_target(url, receiver.allow_private_network)
    ):
        raise BadStreamRequest(
            "delivery.endpoint_url must be an https URL (plain http to loopback only where the "
            "receiver's allow_private_network says so)"
        )
    authorization = value.get("authorization_header")
    if authorization is not None and (
        not isinstance(authorization, str)
        or not 0 < len(authorization) <= MAX_AUTHORIZATION
        or not authorization.isprintable()
    ):
        raise BadStreamRequest("delivery.authorization_header must be a header value")
    return {"method": PUSH, "endpoint_url": url}, authorization


def _events(value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise BadStreamRequest("events_requested must be an array of event type URIs")
    # §8.1.1: a transmitter ignores what it does not understand; kept as asked for.
    return list(dict.fromkeys(value))[:100]
