"""The OAuth side of the store contract, on every backend: the replay cache, signing keys,
refresh token families, revoked access tokens; concurrent callers through two stores on one
database behave as replicas would."""

from __future__ import annotations

import asyncio
import time

from bridge.store.contract import Store
from tests.store.conftest import Backend
from tests.store.records import HOUR, T0, refresh_token, signing_key, unique

pytest_plugins = ["tests.support.plugin"]


# -- the replay cache ------------------------------------------------------------------


async def test_a_value_is_used_once_and_reusable_after_it_expired(store: Store) -> None:
    now = time.time()
    assert await store.use_once("dpop:jkt-1", "jti-1", now + 60) is True
    assert await store.use_once("dpop:jkt-1", "jti-1", now + 60) is False
    # Another namespace is another cache.
    assert await store.use_once("dpop:jkt-2", "jti-1", now + 60) is True
    # A record that has expired no longer refuses the value, and is recorded again.
    assert await store.use_once("assertion:c", "jti-2", now - 1) is True
    assert await store.use_once("assertion:c", "jti-2", now + 60) is True
    assert await store.use_once("assertion:c", "jti-2", now + 60) is False


async def test_replicas_recording_one_value_at_once_accept_it_once(backend: Backend) -> None:
    stores = [await backend.open() for _ in range(3)]
    expires = time.time() + 60
    for round_ in range(5):
        value = f"jti-{round_}"
        results = await asyncio.gather(
            *(s.use_once("dpop:jkt", value, expires) for s in stores for _ in range(4))
        )
        assert sorted(results) == [False] * 11 + [True]


# -- signing keys ----------------------------------------------------------------------


async def test_a_rotation_retires_the_active_key_and_keeps_it_published(store: Store) -> None:
    now = time.time()
    first, second = signing_key(now - 10), signing_key(now)
    assert await store.add_first_signing_key(first) is True
    await store.add_signing_key(second, retire_others_at=now, others_expire_at=now + 600)
    keys = await store.signing_keys()
    assert [k.kid for k in keys] == [second.kid, first.kid]  # newest first
    assert keys[0].retired_at is None and keys[0].expires_at is None
    assert keys[0].private_jwk_sealed == second.private_jwk_sealed
    assert keys[1].retired_at == now and keys[1].expires_at == now + 600
    # Retired with no time left: gone from the list at once.
    third = signing_key(now + 1)
    await store.add_signing_key(third, retire_others_at=now + 1, others_expire_at=now - 1)
    assert [k.kid for k in await store.signing_keys()] == [third.kid, first.kid]


async def test_the_first_key_is_made_once(store: Store) -> None:
    now = time.time()
    assert await store.add_first_signing_key(signing_key(now)) is True
    late = signing_key(now + 1)
    assert await store.add_first_signing_key(late) is False
    keys = await store.signing_keys()
    assert len(keys) == 1 and keys[0].kid != late.kid and keys[0].retired_at is None


async def test_replicas_starting_together_make_one_key(backend: Backend) -> None:
    stores = [await backend.open() for _ in range(4)]
    now = time.time()
    made = await asyncio.gather(*(s.add_first_signing_key(signing_key(now)) for s in stores))
    assert sorted(made) == [False, False, False, True]
    keys = await stores[0].signing_keys()
    assert len(keys) == 1 and keys[0].retired_at is None


async def test_rotations_at_once_leave_one_active_key(backend: Backend) -> None:
    stores = [await backend.open() for _ in range(4)]
    now = time.time()
    await stores[0].add_first_signing_key(signing_key(now - 60))
    await asyncio.gather(
        *(
            s.add_signing_key(signing_key(now + n), retire_others_at=now, others_expire_at=now + 60)
            for n, s in enumerate(stores)
        )
    )
    keys = await stores[0].signing_keys()
    assert len(keys) == 5
    assert len([k for k in keys if k.retired_at is None]) == 1


# -- refresh tokens --------------------------------------------------------------------


async def test_a_refresh_token_is_used_once_and_reuse_revokes_its_family(store: Store) -> None:
    family, other = unique("family"), unique("family")
    first, second = refresh_token(family), refresh_token(family)
    stranger = refresh_token(other)
    for record in (first, second, stranger):
        await store.save_refresh_token(record)
    assert await store.find_refresh_token(first.token_hash) == first

    used = await store.use_refresh_token(first.token_hash, T0 + 1)
    assert used == first  # as it was when it was still active
    found = await store.find_refresh_token(first.token_hash)
    assert found is not None and found.used_at == T0 + 1 and found.revoked_at is None

    # The rotated token comes back: it leaked, the whole family goes.
    assert await store.use_refresh_token(first.token_hash, T0 + 2) is None
    for record in (first, second):
        revoked = await store.find_refresh_token(record.token_hash)
        assert revoked is not None and revoked.revoked_at == T0 + 2
    assert await store.use_refresh_token(second.token_hash, T0 + 3) is None
    untouched = await store.find_refresh_token(stranger.token_hash)
    assert untouched is not None and untouched.revoked_at is None
    assert await store.use_refresh_token(stranger.token_hash, T0 + 3) == stranger


async def test_expired_revoked_and_unknown_refresh_tokens_are_refused(store: Store) -> None:
    family = unique("family")
    expired = refresh_token(family, expires_at=T0 + 10)
    revoked = refresh_token(unique("family"))
    await store.save_refresh_token(expired)
    await store.save_refresh_token(revoked)
    await store.revoke_refresh_family(revoked.family_id, T0)
    assert await store.use_refresh_token(expired.token_hash, T0 + 10) is None
    assert await store.use_refresh_token(revoked.token_hash, T0 + 1) is None
    assert await store.use_refresh_token("unknown", T0) is None
    assert await store.find_refresh_token("unknown") is None
    gone = await store.find_refresh_token(revoked.token_hash)
    assert gone is not None and gone.revoked_at == T0


async def test_one_token_presented_to_two_replicas_at_once(backend: Backend) -> None:
    one, two = await backend.open(), await backend.open()
    for _ in range(5):
        family = unique("family")
        token, sibling = refresh_token(family), refresh_token(family)
        await one.save_refresh_token(token)
        await one.save_refresh_token(sibling)
        results = await asyncio.gather(
            one.use_refresh_token(token.token_hash, T0 + 1),
            two.use_refresh_token(token.token_hash, T0 + 1),
        )
        # One of them rotates it; the other presents a used token, which revokes the family.
        assert sorted(r is None for r in results) == [False, True]
        for record in (token, sibling):
            found = await two.find_refresh_token(record.token_hash)
            assert found is not None and found.revoked_at == T0 + 1


async def test_a_rotation_racing_a_reuse_does_not_outlive_it(backend: Backend) -> None:
    rotating, elsewhere = await backend.open(), await backend.open()
    family = unique("family")
    first, rotated = refresh_token(family), refresh_token(family)
    await rotating.save_refresh_token(first)
    assert await rotating.use_refresh_token(first.token_hash, T0 + 1) == first
    # Before the rotation saves its new token, the old one comes back at another replica.
    assert await elsewhere.use_refresh_token(first.token_hash, T0 + 2) is None
    await rotating.save_refresh_token(rotated)
    saved = await elsewhere.find_refresh_token(rotated.token_hash)
    assert saved is not None and saved.revoked_at == T0 + 2
    assert await rotating.use_refresh_token(rotated.token_hash, T0 + 3) is None
    # Another family is saved as it is.
    fresh = refresh_token(unique("family"))
    await rotating.save_refresh_token(fresh)
    assert await elsewhere.find_refresh_token(fresh.token_hash) == fresh


async def test_a_save_and_a_revocation_at_once_leave_the_family_revoked(
    backend: Backend,
) -> None:
    one, two = await backend.open(), await backend.open()
    for _ in range(8):
        family = unique("family")
        await one.save_refresh_token(refresh_token(family))
        late = refresh_token(family)
        await asyncio.gather(one.save_refresh_token(late), two.revoke_refresh_family(family, T0))
        found = await one.find_refresh_token(late.token_hash)
        assert found is not None and found.revoked_at == T0


# -- revoked access tokens -------------------------------------------------------------


async def test_revoked_access_tokens(backend: Backend) -> None:
    one, two = await backend.open(), await backend.open()
    assert await two.is_access_token_revoked("jti-1") is False
    await one.revoke_access_token("jti-1", T0 + HOUR)
    await two.revoke_access_token("jti-1", T0 + HOUR)  # twice is once
    assert await two.is_access_token_revoked("jti-1") is True
    assert await one.is_access_token_revoked("jti-2") is False
    assert backend.rows("SELECT jti, expires_at FROM revoked_access_tokens") == [
        ("jti-1", T0 + HOUR)
    ]
