"""How a deferral that also waits for someone's consent (a CIBA request's user) is settled,
by the deferral part alone (real SQLite store, a clock the tests move): only when both have
said yes, whichever comes last; a refusal or a denial at once; a consent nobody answers for
never lets it through. And an `auth_req_id` is only ever polled as one."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bridge.deferral import DeferralService, Resolution
from bridge.deferral.errors import AuthorizationPending
from bridge.deferral.models import CONSENT_MEMBER, HANDLE_MEMBER
from bridge.errors import InvalidGrant
from bridge.store.contract import DeferralRecord
from bridge.store.contract.deferrals import DENIED, PENDING, RESOLVED_OK
from tests.test_deferral_support import (
    KEK,
    SNAPSHOT,
    DeferralStore,
    FakeClock,
    make_client,
    open_store,
)
from tests.test_deferral_support import make_settings as deferral_settings

CLIENT = make_client("agent-1")
CIBA = {**SNAPSHOT, HANDLE_MEMBER: "auth_req_id", CONSENT_MEMBER: {"by": "user", "id": "r-1"}}


class Answers:
    """The consent, as the test sets it; and the access request's outcome."""

    def __init__(self) -> None:
        self.consent: bool | None = None
        self.outcome: Resolution | None = None  # None: the access request is still pending

    async def check(self, record: DeferralRecord) -> bool | None:
        return self.consent

    async def decide(self, snapshot: dict[str, Any], task_id: str | None) -> Resolution | None:
        return self.outcome


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[DeferralStore]:
    async with open_store(tmp_path / "bridge.sqlite3") as opened:
        yield opened


@pytest.fixture
def answers() -> Answers:
    return Answers()


@pytest.fixture
def service(store: DeferralStore, answers: Answers) -> DeferralService:
    service = DeferralService(store, KEK, deferral_settings(), clock=FakeClock())
    service.require_consent("user", answers.check)
    return service


async def defer(service: DeferralService, snapshot: dict[str, Any] = CIBA) -> str:
    body = await service.defer(CLIENT, None, snapshot, "task-1", None, None)
    return str(body["deferral_code"])


async def status(service: DeferralService, store: DeferralStore, code: str) -> str:
    record = await store.deferral_find(service.code_hash(code))
    assert record is not None
    return record.status


async def test_the_task_ending_first_waits_for_her_yes(
    service: DeferralService, store: DeferralStore, answers: Answers
) -> None:
    code = await defer(service)
    answers.outcome = Resolution(ok=True, approvals=[{"id": "ar_1"}])
    assert await service.resolve_task("task-1", answers.decide) == 0
    assert await status(service, store, code) == PENDING
    answers.consent = True
    assert await service.settle(service.code_hash(code), answers.decide)
    assert await status(service, store, code) == RESOLVED_OK


async def test_her_yes_first_waits_for_the_task(
    service: DeferralService, store: DeferralStore, answers: Answers
) -> None:
    code = await defer(service)
    answers.consent = True
    assert not await service.settle(service.code_hash(code), answers.decide)
    assert await status(service, store, code) == PENDING
    answers.outcome = Resolution(ok=True, approvals=[{"id": "ar_1"}])
    assert await service.resolve_task("task-1", answers.decide) == 1
    assert await status(service, store, code) == RESOLVED_OK


async def test_her_no_ends_it_while_the_task_is_pending(
    service: DeferralService, store: DeferralStore, answers: Answers
) -> None:
    code = await defer(service)
    answers.consent = False
    assert await service.settle(service.code_hash(code), answers.decide)
    assert await status(service, store, code) == DENIED


async def test_a_denial_ends_it_before_she_answers(
    service: DeferralService, store: DeferralStore, answers: Answers
) -> None:
    code = await defer(service)
    answers.outcome = Resolution(ok=False)
    assert await service.resolve_task("task-1", answers.decide) == 1
    assert await status(service, store, code) == DENIED


async def test_a_consent_nobody_answers_for_never_lets_it_through(
    service: DeferralService, store: DeferralStore, answers: Answers
) -> None:
    stranger = {**CIBA, CONSENT_MEMBER: {"by": "someone-else"}}
    code = await defer(service, stranger)
    answers.consent = True
    answers.outcome = Resolution(ok=True, approvals=[{"id": "ar_1"}])
    assert await service.resolve_task("task-1", answers.decide) == 0
    assert not await service.settle(service.code_hash(code), answers.decide)
    assert await status(service, store, code) == PENDING


async def test_an_auth_req_id_is_polled_only_as_one(service: DeferralService) -> None:
    code = await defer(service)
    with pytest.raises(InvalidGrant, match="unknown deferral code"):
        await service.poll(CLIENT, code, None)
    with pytest.raises(AuthorizationPending):
        await service.poll(CLIENT, code, None, handle="auth_req_id")
    dtr = await defer(service, SNAPSHOT)
    with pytest.raises(InvalidGrant, match="unknown deferral code"):
        await service.poll(CLIENT, dtr, None, handle="auth_req_id")
    # Nor is it cancelled as a deferral code (CIBA has no cancellation).
    assert await service.cancel(CLIENT, code, None) is None
