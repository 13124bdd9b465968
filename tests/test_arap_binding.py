"""ARAP denial binding: `binding_hash` against the published vectors, and `binding_token`
issue and verification (tampering, audience, key, expiry, echo, replay of another request)."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
import rfc8785
from joserfc import jws
from joserfc.jwk import ECKey

from bridge.access_requests.binding import (
    binding_hash,
    bound_context,
    bound_subject,
    bundle_binding_hash,
    relevant_members,
)
from bridge.access_requests.binding_token import BindingTokens
from bridge.access_requests.problems import ExpiredDenial, InvalidDenialBinding
from bridge.access_requests.times import rfc3339
from bridge.oauth.access_tokens import mint
from tests.conftest import interop_file
from tests.test_arap_support import BRIDGE, ENDPOINT, Harness, harness

VECTORS = "profiles/authzen-access-request-approval/test-vectors/binding-hash.json"


def vectors() -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = interop_file(VECTORS)["vectors"]
    return found


def test_there_are_seven_vectors() -> None:
    assert len(vectors()) == 7


@pytest.mark.parametrize("vector", vectors(), ids=lambda v: v["id"])
def test_binding_hash_vectors(vector: dict[str, Any]) -> None:
    request, members = vector["request"], vector["binding_context_members"]
    if vector["kind"] == "single":
        found = binding_hash(
            request["subject"], request["resource"], request["action"], request["context"], members
        )
        projected: dict[str, Any] = {
            "subject": bound_subject(request["subject"]),
            "resource": request["resource"],
            "action": request["action"],
            "context": bound_context(request["context"], members),
        }
    else:
        pairs = [(i["resource"], i["action"]) for i in request["items"]]
        found = bundle_binding_hash(request["subject"], pairs, request["context"], members)
        projected = {
            "subject": bound_subject(request["subject"]),
            "items": [{"resource": r, "action": a} for r, a in pairs],
            "context": bound_context(request["context"], members),
        }
    assert rfc8785.dumps(projected).decode() == vector["jcs"]
    assert found == vector["binding_hash"]


def test_act_only_properties_stay_an_empty_object() -> None:
    subject = {"type": "user", "id": "u", "properties": {"act": {"sub": "agent"}}}
    assert bound_subject(subject) == {"type": "user", "id": "u", "properties": {}}
    assert subject["properties"] == {"act": {"sub": "agent"}}  # the input is not changed


def test_null_and_absent_members_bind_differently() -> None:
    s, r, a = {"type": "user", "id": "u"}, {"type": "doc", "id": "d"}, {"name": "read"}
    assert binding_hash(s, r, a, {"risk": None}, ["risk"]) != binding_hash(s, r, a, {}, ["risk"])


def test_arap_machinery_is_never_relevant_context() -> None:
    assert relevant_members(["tenant", "approval", "evaluation_id", "tenant"]) == ["tenant"]


# -- binding tokens -------------------------------------------------------------------------

S = {"type": "user", "id": "alice"}
R = {"type": "Doc", "id": "plan"}
A = {"name": "read"}
C = {"client_id": "agent-7"}
MEMBERS = ["client_id"]


async def issue(h: Harness, tokens: BindingTokens | None = None, lifetime: int = 600) -> str:
    now = int(h.clock())
    return await (tokens or h.ars.tokens).issue(
        pdp=BRIDGE,
        template="manager",
        evaluation_id="eval_1",
        binding_hash=binding_hash(S, R, A, C, MEMBERS),
        members=MEMBERS,
        issued_at=now,
        expires_at=now + lifetime,
    )


def recompute(resource: dict[str, Any] = R, context: dict[str, Any] = C) -> Any:
    return lambda members: binding_hash(S, resource, A, context, members)


def expiry(h: Harness, lifetime: int = 600) -> str:
    return rfc3339(int(h.clock()) + lifetime)


async def test_a_token_verifies_and_says_what_was_denied(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        token = await issue(h)
        binding = await h.ars.tokens.verify(token, expiry(h), recompute())
        assert (binding.template, binding.pdp, binding.evaluation_id) == (
            "manager",
            BRIDGE,
            "eval_1",
        )
        assert binding.members == MEMBERS
        header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
        assert header["typ"] == "arap-binding+jwt"
        claims = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
        assert claims["aud"] == ENDPOINT and claims["iss"] == BRIDGE
        assert claims["denial_expires_at"] == expiry(h)
        assert claims["exp"] == int(h.clock()) + 600


async def test_a_tampered_token_is_an_invalid_binding(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        header, payload, signature = (await issue(h)).split(".")
        claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
        claims["binding_hash"] = binding_hash(S, {"type": "Doc", "id": "other"}, A, C, MEMBERS)
        forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
        with pytest.raises(InvalidDenialBinding):
            await h.ars.tokens.verify(
                f"{header}.{forged}.{signature}",
                expiry(h),
                recompute({"type": "Doc", "id": "other"}),
            )
        for broken in ("", "not-a-jws", f"{header}.{payload}.", 42):
            with pytest.raises(InvalidDenialBinding):
                await h.ars.tokens.verify(broken, expiry(h), recompute())


async def test_the_submission_must_match_the_denial(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        token = await issue(h)
        with pytest.raises(InvalidDenialBinding, match="does not match"):
            await h.ars.tokens.verify(token, expiry(h), recompute({"type": "Doc", "id": "x"}))
        with pytest.raises(InvalidDenialBinding, match="does not match"):
            await h.ars.tokens.verify(token, expiry(h), recompute(context={"client_id": "evil"}))
        # Members the denial did not bind may be added or changed.
        extra = {**C, "business_justification": "renewal"}
        await h.ars.tokens.verify(token, expiry(h), recompute(context=extra))


async def test_the_echoed_expiry_must_be_the_denials(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        token = await issue(h)
        for echoed in (expiry(h, 900), None, "tomorrow"):
            with pytest.raises(InvalidDenialBinding, match="expires_at"):
                await h.ars.tokens.verify(token, echoed, recompute())


async def test_a_late_submission_is_an_expired_denial(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        token = await issue(h)
        echoed = expiry(h)
        h.clock.advance(600 + 29)  # within the 30 s skew
        await h.ars.tokens.verify(token, echoed, recompute())
        h.clock.advance(2)
        with pytest.raises(ExpiredDenial):
            await h.ars.tokens.verify(token, echoed, recompute())


async def test_tokens_of_another_service_or_kind_do_not_bind(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        elsewhere = BindingTokens(h.keys, BRIDGE, "https://ars.elsewhere.test/requests", h.clock)
        with pytest.raises(InvalidDenialBinding, match="another service"):
            await h.ars.tokens.verify(await issue(h, elsewhere), expiry(h), recompute())
        # An access token signed with the same key is no binding token.
        access = await mint(h.keys, {"iss": BRIDGE, "aud": ENDPOINT, "exp": 2**31})
        with pytest.raises(InvalidDenialBinding):
            await h.ars.tokens.verify(access, expiry(h), recompute())
        # A token signed with a key the bridge does not hold.
        stranger = ECKey.generate_key("P-256", parameters={"kid": "nope"}, private=True)
        payload = (await issue(h)).split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
        resigned = jws.serialize_compact(
            {"typ": "arap-binding+jwt", "alg": "ES256", "kid": "nope"},
            json.dumps(claims).encode(),
            stranger,
        )
        with pytest.raises(InvalidDenialBinding):
            await h.ars.tokens.verify(resigned, expiry(h), recompute())
