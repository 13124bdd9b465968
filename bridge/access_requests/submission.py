"""Reading an access request submission (ARAP §6) into checked values.

Shape only: whether the denial binds is the service's question. The subject, resources and
actions are read with the AuthZEN models, exactly as the PDP read the evaluation, so the
binding hash is computed over the same values on both sides (unknown members dropped,
`properties: null` read as absent).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from ..authzen.models import Action, JSONObject, Resource, Subject, describe
from .actors import read_client
from .binding import entity_json
from .callbacks import check_callback
from .problems import BadRequest, InvalidDenialBinding, NotRequestable
from .times import parse_rfc3339


@dataclass(frozen=True)
class SubmittedItem:
    resource: JSONObject
    action: JSONObject
    requested_access: JSONObject | None
    denial: JSONObject | None


@dataclass(frozen=True)
class Submission:
    subject: JSONObject
    items: list[SubmittedItem]
    bundle: bool  # sent with `items`
    context: JSONObject
    denial: JSONObject | None  # the top-level denial
    requested_access: JSONObject | None
    callback: JSONObject | None
    client: JSONObject | None


def parse_submission(
    body: JSONObject, *, max_items: int, allow_private_callbacks: bool
) -> Submission:
    subject = _entity(Subject, body.get("subject"), "subject")
    context = _object(body.get("context"), "context") or {}
    denial = _denial(body.get("denial"), "denial")
    items_raw = body.get("items")
    if items_raw is None:
        if denial is None:
            raise NotRequestable("a submission needs the denial it is based on (`denial`)")
        item = SubmittedItem(
            _entity(Resource, body.get("resource"), "resource"),
            _entity(Action, body.get("action"), "action"),
            None,
            None,
        )
        items, bundle = [item], False
    else:
        if "resource" in body or "action" in body:
            raise BadRequest("resource and action must be absent when items are given")
        items, bundle = _items(items_raw, max_items), True
        if denial is None and any(i.denial is None for i in items):
            raise NotRequestable("every item needs a denial when there is no top-level denial")
    return Submission(
        subject=subject,
        items=items,
        bundle=bundle,
        context=context,
        denial=denial,
        requested_access=_requested_access(body.get("requested_access"), "requested_access"),
        callback=(
            None
            if body.get("callback") is None
            else check_callback(body["callback"], allow_private=allow_private_callbacks)
        ),
        client=read_client(body.get("client")),
    )


def _items(raw: object, max_items: int) -> list[SubmittedItem]:
    if not isinstance(raw, list) or not raw:
        raise BadRequest("items must be a non-empty array")
    if len(raw) > max_items:
        raise BadRequest(f"items has {len(raw)} entries; at most {max_items} are accepted")
    items = []
    for n, entry in enumerate(raw):
        where = f"items[{n}]"
        if not isinstance(entry, dict):
            raise BadRequest(f"{where} must be an object")
        items.append(
            SubmittedItem(
                _entity(Resource, entry.get("resource"), f"{where}.resource"),
                _entity(Action, entry.get("action"), f"{where}.action"),
                _requested_access(entry.get("requested_access"), f"{where}.requested_access"),
                _denial(entry.get("denial"), f"{where}.denial"),
            )
        )
    return items


def _entity(model: type[BaseModel], raw: object, where: str) -> JSONObject:
    if not isinstance(raw, dict):
        raise BadRequest(f"{where} must be an object")
    try:
        parsed = model.model_validate({k: v for k, v in raw.items() if v is not None})
    except ValidationError as exc:
        raise BadRequest(f"{where}: {describe(exc)}") from None
    return entity_json(parsed)


def _object(raw: object, where: str) -> JSONObject | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise BadRequest(f"{where} must be an object")
    return raw


def _denial(raw: object, where: str) -> JSONObject | None:
    denial = _object(raw, where)
    if denial is not None and "binding_token" not in denial and "evaluation_id" not in denial:
        raise InvalidDenialBinding(f"{where} needs a binding_token or an evaluation_id")
    return denial


def _requested_access(raw: object, where: str) -> JSONObject | None:
    access = _object(raw, where)
    if access is None:
        return None
    if "requested_until" in access and parse_rfc3339(access["requested_until"]) is None:
        raise BadRequest(f"{where}.requested_until must be an RFC 3339 date-time")
    if "emergency" in access and not isinstance(access["emergency"], bool):
        raise BadRequest(f"{where}.emergency must be a boolean")
    return access


def requested_until(*accesses: dict[str, Any] | None) -> float | None:
    """The first `requested_until` among per-item and top-level `requested_access`."""
    for access in accesses:
        if access and "requested_until" in access:
            return parse_rfc3339(access["requested_until"])
    return None
