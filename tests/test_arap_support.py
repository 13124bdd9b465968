"""Helpers shared by the tests/test_arap_*.py files (this module holds no tests).

Everything is real: a Cedar store written under the test's folder, the Cedar PDP, the SQLite
store (outbox, signing keys and access request tables in one file), signing keys, the access
request service and the ARAP decision point around the Cedar PDP. Time is a `FakeClock`
the tests move (the signing keys keep the real clock, which only their cache uses).
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from joserfc import jwt
from joserfc.jwk import ECKey

from bridge.access_requests.approvers import Approver
from bridge.access_requests.assembly import AccessRequests
from bridge.access_requests.pdp import ARAPDecisionPoint
from bridge.access_requests.service import AccessRequestService
from bridge.authzen.cedar.engine import CedarPDP
from bridge.authzen.cedar.reload import StoreHolder
from bridge.authzen.cedar.store import load_store
from bridge.authzen.models import Decision, EvaluationRequest
from bridge.authzen.pagination import Paginator
from bridge.jose.signing_keys import SigningKeys
from bridge.jose.trusted_issuers import TrustedIssuers
from bridge.settings import Settings
from bridge.store.sqlite import SQLiteStore

BRIDGE = "https://bridge.test"
PDP_ID = BRIDGE  # the default store's policy_decision_point
ENDPOINT = BRIDGE + "/access/v1/requests"
IDP = "https://idp.test"
IDP_KEY = ECKey.generate_key("P-256", parameters={"kid": "idp-1"}, private=True)
OTHER_IDP = "https://other-idp.test"

POLICIES = """
@id("read-docs")
permit (principal is user, action == Action::"read", resource is Doc);

@id("secret-docs-need-manager")
@approval("manager")
forbid (principal, action == Action::"read", resource is Doc)
when { resource has secret && resource.secret }
unless { context has approval && context.approval.template == "manager" };

@id("read-reports")
permit (principal is user, action == Action::"read", resource is Report);

@id("reports-need-director")
@approval("director")
forbid (principal, action == Action::"read", resource is Report)
unless { context has approval && context.approval.template == "director" };

@id("managers-approve-manager-requests")
permit (principal is user, action == Action::"approve", resource is AccessRequest)
when { principal has role && principal.role == "manager" && resource.template == "manager" };

@id("directors-approve-anything")
permit (principal is user, action == Action::"approve", resource is AccessRequest)
when { principal has role && principal.role == "director" };

@id("no-self-approval")
forbid (principal, action == Action::"approve", resource is AccessRequest)
when { resource.subject_id == context.approver_id };
"""

ENTITIES = [
    {"uid": {"type": "user", "id": "maria"}, "attrs": {"role": "manager"}, "parents": []},
    {"uid": {"type": "user", "id": "alice"}, "attrs": {"role": "manager"}, "parents": []},
    {"uid": {"type": "user", "id": "dora"}, "attrs": {"role": "director"}, "parents": []},
    {"uid": {"type": "user", "id": "bob"}, "attrs": {"role": "clerk"}, "parents": []},
]

MARIA = Approver(IDP, "user", "maria")
ALICE = Approver(IDP, "user", "alice")
DORA = Approver(IDP, "user", "dora")
BOB = Approver(IDP, "user", "bob")

T0 = float(int(time.time()))


ArapStore = SQLiteStore


class FakeClock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def write_store(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "policies.cedar").write_text(POLICIES, encoding="utf-8")
    (folder / "entities.json").write_text(json.dumps(ENTITIES), encoding="utf-8")
    return folder


def make_settings(**access_requests: Any) -> Settings:
    # These tests file anonymously unless they say otherwise (the store asks for no PEP auth).
    options = {
        "approver_issuer": IDP,
        "allow_private_callbacks": True,
        "allow_anonymous_requesters": True,
        **access_requests,
    }
    return Settings.model_validate(
        {
            "server": {"public_url": BRIDGE},
            "oauth": {
                "trusted_issuers": [
                    {"issuer": IDP, "jwks": {"keys": [IDP_KEY.as_dict(private=False)]}},
                ]
            },
            "access_requests": options,
        }
    )


@dataclass
class Harness:
    store: ArapStore
    keys: SigningKeys
    cedar: CedarPDP
    ars: AccessRequests
    pdp: ARAPDecisionPoint
    clock: FakeClock
    http: httpx.AsyncClient

    @property
    def service(self) -> AccessRequestService:
        return self.ars.service

    async def deny(self, request: dict[str, Any]) -> Decision:
        return await self.pdp.evaluate(EvaluationRequest.model_validate(request))

    async def submission(self, request: dict[str, Any], **extra: Any) -> dict[str, Any]:
        """A submission body for `request`, echoing the denial the PDP gives for it."""
        decision = await self.deny(request)
        assert decision.context is not None and "access_request" in decision.context
        ar = decision.context["access_request"]
        body = {
            **request,
            "denial": {
                "evaluation_id": decision.context["evaluation_id"],
                "expires_at": ar["expires_at"],
                "binding_token": ar["binding_token"],
                "reason": decision.context["reason"],
            },
        }
        body.update(extra)
        return body

    async def outbox(self, *, notices: bool = False) -> list[tuple[str, bytes]]:
        """The outbox rows, oldest first; without the notices to approvers (`approval_needed`,
        queued with every new request) unless `notices`."""

        def work() -> list[tuple[str, bytes]]:
            rows = self.store.db.execute("SELECT kind, payload FROM outbox ORDER BY id")
            return [
                (kind, bytes(payload))
                for kind, payload in rows.fetchall()
                if notices or kind != "approval_needed"
            ]

        return await self.store._run(work)


@contextlib.asynccontextmanager
async def harness(tmp_path: Path, **access_requests: Any) -> AsyncIterator[Harness]:
    settings = make_settings(**access_requests)
    folder = write_store(tmp_path / "store")
    cedar = CedarPDP(
        StoreHolder(load_store("default", folder)), Paginator(None, 100), explanations=False
    )
    store = ArapStore(tmp_path / "bridge.sqlite3")
    await store.open()
    keys = SigningKeys(store, bytes(range(32)), "ES256")
    await keys.ensure()
    clock = FakeClock()
    http = httpx.AsyncClient(timeout=5.0)
    issuers = TrustedIssuers(settings.oauth.trusted_issuers, settings.issuer, http)
    ars = AccessRequests(settings, store, keys, {PDP_ID: cedar}, issuers, clock=clock)
    pdp = ars.decision_point(cedar, PDP_ID)
    try:
        yield Harness(store, keys, cedar, ars, pdp, clock, http)
    finally:
        await http.aclose()
        await store.close()


# Approver tokens carry the approver API as their audience, never the bridge's issuer.
APPROVERS = BRIDGE + "/access/v1/approvals"


def approver_token(sub: str, *, issuer: str = IDP, audience: str = APPROVERS) -> str:
    now = int(time.time())
    claims = {"iss": issuer, "sub": sub, "aud": audience, "iat": now, "exp": now + 300}
    return jwt.encode({"alg": "ES256", "kid": "idp-1"}, claims, IDP_KEY)


def secret_doc(doc: str = "plan", user: str = "alice", **context: Any) -> dict[str, Any]:
    """A read of a secret document: a requestable denial (template `manager`)."""
    return {
        "subject": {"type": "user", "id": user},
        "resource": {"type": "Doc", "id": doc, "properties": {"secret": True}},
        "action": {"name": "read"},
        "context": {"client_id": "agent-7", **context},
    }


def report(report_id: str = "q4", user: str = "alice") -> dict[str, Any]:
    """A read of a report: a requestable denial (template `director`)."""
    return {
        "subject": {"type": "user", "id": user},
        "resource": {"type": "Report", "id": report_id},
        "action": {"name": "read"},
        "context": {"client_id": "agent-7"},
    }
