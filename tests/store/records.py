"""Records for the contract suite, each with every field a test does not care about filled in."""

from __future__ import annotations

import json
import uuid
from typing import Any

from bridge.store.contract import (
    ApprovalRecord,
    AuditEvent,
    DeferralRecord,
    IdempotencyRecord,
    RefreshTokenRecord,
    RemoteTaskRecord,
    SigningKeyRecord,
    TaskChange,
    TaskRecord,
)
from bridge.store.contract.deferrals import PENDING

T0 = 1_900_000_000.0
HOUR = 3600.0
DAY = 86_400.0


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def deferral(**values: Any) -> DeferralRecord:
    fields: dict[str, Any] = {
        "code_hash": unique("code"),
        "client_id": "agent-1",
        "jkt": None,
        "snapshot_json": '{"grant_type": "client_credentials"}',
        "task_id": unique("task"),
        "status": PENDING,
        "created_at": T0,
        "expires_at": T0 + HOUR,
        "interval": 5,
        "required_gap": 5.0,
        "notification_endpoint": "https://client.example.com/cb",
        "code_sealed": b"sealed-code",
        "notification_token_sealed": b"sealed-token",
        "dedupe_key": unique("dedupe"),
    }
    return DeferralRecord(**(fields | values))


def task(**values: Any) -> TaskRecord:
    fields: dict[str, Any] = {
        "id": unique("arq"),
        "pdp": "https://pdp.example.com",
        "requester": "pep-1",
        "bundle": False,
        "subject": {"type": "user", "id": "alice"},
        "context": {"client_id": "agent-1"},
        "items": [{"resource": {"type": "doc", "id": "d1"}, "status": "pending"}],
        "requested_access": None,
        "callback": {"endpoint": "https://pep.example.com/cb", "state": "s"},
        "client": None,
        "status": "pending",
        "created_at": T0,
        "expires_at": T0 + HOUR,
        "retain_until": T0 + HOUR,
        "updated_at": T0,
    }
    return TaskRecord(**(fields | values))


def idempotency(task_id: str, body_hash: str = "body-1", **values: Any) -> IdempotencyRecord:
    fields: dict[str, Any] = {
        "requester": "pep-1",
        "key": "key-1",
        "body_hash": body_hash,
        "task_id": task_id,
        "keep_until": T0 + 2 * HOUR,
    }
    return IdempotencyRecord(**(fields | values))


def approval(task_id: str, **values: Any) -> ApprovalRecord:
    fields: dict[str, Any] = {
        "id": unique("apr"),
        "task_id": task_id,
        "item": 0,
        "pdp": "https://pdp.example.com",
        "template": "manager",
        "members": ["client_id"],
        "binding_hash": "hash",
        "binding": {"subject": {"id": "alice"}},
        "approved_at": T0,
        "approved_until": T0 + HOUR,
    }
    return ApprovalRecord(**(fields | values))


def remote_task(**values: Any) -> RemoteTaskRecord:
    fields: dict[str, Any] = {
        "id": unique("rtask"),
        "client_id": "agent-1",
        "endpoint": "https://ars.example.com/requests",
        "idempotency_key": unique("idem"),
        "state_hash": unique("state"),
        "item_count": 1,
        "status": "pending",
        "created_at": T0,
        "updated_at": T0,
        "expires_at": T0 + HOUR,
        "next_check_at": T0 + 10,
    }
    return RemoteTaskRecord(**(fields | values))


def refresh_token(family: str, **values: Any) -> RefreshTokenRecord:
    fields: dict[str, Any] = {
        "token_hash": unique("rt"),
        "family_id": family,
        "client_id": "agent-1",
        "grant": '{"principal": "alice"}',
        "issued_at": T0,
        "expires_at": T0 + HOUR,
    }
    return RefreshTokenRecord(**(fields | values))


def signing_key(created_at: float, **values: Any) -> SigningKeyRecord:
    kid = unique("kid")
    fields: dict[str, Any] = {
        "kid": kid,
        "alg": "ES256",
        "public_jwk": json.dumps({"kty": "EC", "kid": kid}),
        "private_jwk_sealed": b"sealed-" + kid.encode(),
        "created_at": created_at,
    }
    return SigningKeyRecord(**(fields | values))


def audit_event(**values: Any) -> AuditEvent:
    fields: dict[str, Any] = {
        "at": T0,
        "event": "filed",
        "task_id": unique("arq"),
        "actor": "pep-1",
        "data": {"items": 1},
    }
    return AuditEvent(**(fields | values))


def decided(record_id: str, version: int, status: str = "approved", **values: object) -> TaskChange:
    """The compare-and-set that decides the task `record_id`, found at `version`."""
    fields: dict[str, object] = {
        "task_id": record_id,
        "expected_version": version,
        "status": status,
        "items": [{"status": status}],
        "updated_at": T0 + 10,
        "retain_until": T0 + DAY,
    }
    return TaskChange(**(fields | values))  # type: ignore[arg-type]
