"""Reading AuthZEN request bodies into models: one function per endpoint's request shape."""

from __future__ import annotations

from typing import TypeVar

from pydantic import BaseModel, ValidationError

from .batch import merge_defaults
from .errors import BadRequest
from .models import EvaluationRequest, EvaluationsSemantic, JSONObject, describe, drop_nulls

_M = TypeVar("_M", bound=BaseModel)

BatchItem = EvaluationRequest | str
"""A merged batch item, or why it cannot be evaluated."""


def parse_model(model: type[_M], body: JSONObject) -> _M:
    try:
        return model.model_validate(drop_nulls(body))
    except ValidationError as exc:
        raise BadRequest(describe(exc)) from None


def parse_evaluations(
    body: JSONObject, max_items: int
) -> tuple[list[BatchItem], EvaluationsSemantic] | EvaluationRequest:
    """The items of an Access Evaluations request, or the single request it stands for.

    Envelope problems fail the whole request (400); an item that is incomplete after
    merging the defaults fails only itself.
    """
    body = drop_nulls(body)
    items = body.get("evaluations")
    if items is None or items == []:
        return parse_model(EvaluationRequest, body)
    if not isinstance(items, list):
        raise BadRequest("evaluations must be an array")
    if len(items) > max_items:
        raise BadRequest(f"evaluations has {len(items)} items; at most {max_items} are accepted")
    semantic = _semantic(body.get("options"))
    parsed: list[BatchItem] = []
    for n, item in enumerate(items):
        if not isinstance(item, dict):
            raise BadRequest(f"evaluations[{n}] must be an object")
        try:
            merged = merge_defaults(body, drop_nulls(item))
            parsed.append(EvaluationRequest.model_validate(drop_nulls(merged)))
        except ValidationError as exc:
            parsed.append(describe(exc))
    return parsed, semantic


def _semantic(options: object) -> EvaluationsSemantic:
    if options is None:
        return EvaluationsSemantic.execute_all
    if not isinstance(options, dict):
        raise BadRequest("options must be an object")
    raw = options.get("evaluations_semantic")
    if raw is None:
        return EvaluationsSemantic.execute_all
    try:
        return EvaluationsSemantic(raw)
    except ValueError:
        allowed = ", ".join(s.value for s in EvaluationsSemantic)
        raise BadRequest(f"options.evaluations_semantic must be one of {allowed}") from None
