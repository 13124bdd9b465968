"""The approvals side of the store contract, on every backend: "granted by me", access tokens
tied to the approvals they were issued under and revoked with them (in the revocation's
transaction, with its audit entries), a tie to an approval revoked already, and revocations
racing ties through several stores on one database (replicas): a token never outlives its
approval."""

from __future__ import annotations

import asyncio
from typing import Any

from bridge.store.contract import ApprovalRecord, Store
from tests.store.conftest import Backend
from tests.store.records import DAY, HOUR, T0, approval, audit_event, decided, task, unique

pytest_plugins = ["tests.support.plugin"]


async def granted(store: Store, *approvals_of: dict[str, Any]) -> list[ApprovalRecord]:
    """A task decided with one approval per set of values."""
    record = task()
    await store.task_insert(record, None, [])
    made = [approval(record.id, item=n, **values) for n, values in enumerate(approvals_of)]
    assert await store.task_update(decided(record.id, 1, approvals=made))
    return made


async def test_approvals_granted_by_an_approver(store: Store) -> None:
    old, new, lapsed, revoked, others = await granted(
        store,
        {"approved_by": "bob", "approved_at": T0 + 1},
        {"approved_by": "bob", "approved_at": T0 + 2},
        {"approved_by": "bob", "approved_at": T0 + 3, "approved_until": T0 + 50},
        {"approved_by": "bob", "approved_at": T0 + 4},
        {"approved_by": "carol", "approved_at": T0 + 5},
    )
    anonymous = (await granted(store, {}))[0]
    assert anonymous.approved_by is None
    assert (await store.approvals_get([new.id]))[new.id].approved_by == "bob"
    assert await store.approval_revoke(revoked.id, T0 + 10)

    assert await store.approvals_granted_by("bob", T0 + 20, 10) == [lapsed, new, old]
    assert await store.approvals_granted_by("bob", T0 + 20, 1) == [lapsed]
    # In force until `approved_until`, not at it.
    assert await store.approvals_granted_by("bob", T0 + 50, 10) == [new, old]
    assert await store.approvals_granted_by("carol", T0 + 20, 10) == [others]
    assert await store.approvals_granted_by("dave", T0 + 20, 10) == []


async def test_revoking_an_approval_revokes_its_tokens_and_appends_the_audit(
    store: Store, backend: Backend
) -> None:
    first, second = await granted(store, {}, {})
    assert await store.approval_tie_token([first.id, second.id], "jti-both", T0 + HOUR)
    assert await store.approval_tie_token([first.id], "jti-first", T0 + 2 * HOUR)
    assert await store.approval_tie_token([second.id], "jti-second", T0 + HOUR)
    assert await store.approval_tie_token([], "jti-none", T0 + HOUR)  # nothing to tie it to
    for jti in ("jti-both", "jti-first", "jti-second", "jti-none"):
        assert not await store.is_access_token_revoked(jti)

    revoked = audit_event(task_id=first.task_id, event="revoked", actor="bob")
    assert await store.approval_revoke(first.id, T0 + 20, [revoked])
    assert await store.is_access_token_revoked("jti-both")
    assert await store.is_access_token_revoked("jti-first")
    assert not await store.is_access_token_revoked("jti-second")  # tied to the other only
    # Kept as revoked as long as each token could be used.
    assert sorted(backend.rows("SELECT jti, expires_at FROM revoked_access_tokens")) == [
        ("jti-both", T0 + HOUR),
        ("jti-first", T0 + 2 * HOUR),
    ]
    [entry] = await store.audit_entries()
    assert (entry.event, entry.task_id, entry.actor) == ("revoked", first.task_id, "bob")

    # Revoked already, or unknown: False, and nothing written (no audit entry).
    assert not await store.approval_revoke(first.id, T0 + 30, [audit_event(event="again")])
    assert not await store.approval_revoke("unknown", T0 + 30, [audit_event(event="unknown")])
    assert [e.event for e in await store.audit_entries()] == ["revoked"]
    assert (await store.approvals_get([first.id]))[first.id].revoked_at == T0 + 20


async def test_a_token_tied_to_a_revoked_or_unknown_approval_is_revoked_at_once(
    store: Store, backend: Backend
) -> None:
    live, gone = await granted(store, {}, {})
    assert await store.approval_revoke(gone.id, T0 + 5)
    assert not await store.approval_tie_token([live.id, gone.id], "jti-1", T0 + HOUR)
    assert await store.is_access_token_revoked("jti-1")
    assert not await store.approval_tie_token([live.id, "unknown"], "jti-2", T0 + 2 * HOUR)
    assert await store.is_access_token_revoked("jti-2")
    assert sorted(backend.rows("SELECT jti, expires_at FROM revoked_access_tokens")) == [
        ("jti-1", T0 + HOUR),
        ("jti-2", T0 + 2 * HOUR),
    ]
    # The same token tied twice: still one tie, still in force.
    assert await store.approval_tie_token([live.id, live.id], "jti-3", T0 + HOUR)
    assert await store.approval_tie_token([live.id], "jti-3", T0 + HOUR)
    assert backend.rows("SELECT COUNT(*) FROM approval_tokens WHERE jti = 'jti-3'") == [(1,)]
    assert not await store.is_access_token_revoked("jti-3")


async def test_the_purge_forgets_the_ties_of_expired_tokens(store: Store, backend: Backend) -> None:
    [granted_one] = await granted(store, {"approved_until": T0 + 10 * DAY})
    await store.approval_tie_token([granted_one.id], "jti-old", T0 + 100)
    await store.approval_tie_token([granted_one.id], "jti-new", T0 + 300)
    await store.tasks_purge(T0 + 200, 7 * DAY)
    assert backend.rows("SELECT jti FROM approval_tokens") == [("jti-new",)]
    assert await store.approval_revoke(granted_one.id, T0 + 250)
    assert await store.is_access_token_revoked("jti-new")


async def test_revocations_racing_ties_through_replicas_leave_no_token_in_force(
    backend: Backend,
) -> None:
    stores = [await backend.open() for _ in range(3)]
    outcomes: set[bool] = set()
    for round_ in range(40):
        [one] = await granted(stores[0], {})
        jtis = [unique("jti") for _ in range(3)]
        ties = [
            stores[(round_ + n) % 3].approval_tie_token([one.id], jti, T0 + HOUR)
            for n, jti in enumerate(jtis)
        ]
        revoke = stores[round_ % 3].approval_revoke(one.id, T0 + 1)
        # The revocation goes first, last or in between, from one round to the next.
        at = round_ % (len(ties) + 1)
        results = await asyncio.gather(*ties[:at], revoke, *ties[at:])
        assert results[at] is True  # the revocation
        outcomes.update(results[:at] + results[at + 1 :])
        for n, jti in enumerate(jtis):
            assert await stores[n % 3].is_access_token_revoked(jti), (round_, jti)
    assert True in outcomes  # ties did land before revocations (the race was run)
