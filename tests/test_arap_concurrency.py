"""Two approvers deciding at once, on the real SQLite store: exactly one outcome.

`asyncio.gather` starts both decisions before either writes: both read the task at the same
version, and the compare-and-set lets only one of them through. The loser reads the task
again; for a single request it finds it decided (409), for a bundle it decides its own item
on top of the winner's.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from bridge.access_requests.problems import InvalidTaskState
from tests.test_arap_submission import PEP, bundle
from tests.test_arap_support import DORA, MARIA, Harness, harness, report, secret_doc


async def count_approvals(h: Harness, task_id: str) -> int:
    def work() -> int:
        query = "SELECT COUNT(*) FROM access_request_approvals WHERE task_id = ?"
        found: int = h.store.db.execute(query, (task_id,)).fetchone()[0]
        return found

    return await h.store._run(work)


async def test_two_approvers_leave_exactly_one_outcome(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        for round_ in range(5):
            body = await h.submission(
                secret_doc(f"doc-{round_}"), callback={"endpoint": "https://pep.example/cb"}
            )
            task_id = (await h.service.submit(body, PEP, None)).id
            outcomes = await asyncio.gather(
                h.service.decide(task_id, MARIA, "approve"),
                h.service.decide(task_id, DORA, "deny"),
                return_exceptions=True,
            )
            decided = [o for o in outcomes if not isinstance(o, BaseException)]
            refused = [o for o in outcomes if isinstance(o, InvalidTaskState)]
            assert len(decided) == 1 and len(refused) == 1, outcomes
            final = await h.service.status(task_id, PEP)
            assert final.status == decided[0].status
            rows = [kind for kind, payload in await h.outbox() if task_id.encode() in payload]
            assert rows.count("task_terminal") == 1
            approvals = await count_approvals(h, task_id)
            assert approvals == (1 if final.status == "approved" else 0)
        callbacks = [kind for kind, _ in await h.outbox() if kind == "arap_callback"]
        assert len(callbacks) == 5


async def test_concurrent_decisions_on_different_items_both_count(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        task_id = (
            await h.service.submit(await bundle(h, secret_doc("p"), report("r")), PEP, None)
        ).id
        first, second = await asyncio.gather(
            h.service.decide(task_id, MARIA, "approve", items=[0]),
            h.service.decide(task_id, DORA, "deny", items=[1]),
        )
        final = await h.service.status(task_id, PEP)
        assert [i.status for i in final.items] == ["approved", "denied"]
        assert final.status == "partial"
        assert {first.status, second.status} == {"pending", "partial"}
        assert [kind for kind, _ in await h.outbox()] == ["task_terminal"]


async def test_a_cancel_racing_an_approval(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        task_id = (await h.service.submit(await h.submission(secret_doc()), PEP, None)).id
        outcomes = await asyncio.gather(
            h.service.cancel(task_id, PEP),
            h.service.decide(task_id, MARIA, "approve"),
            return_exceptions=True,
        )
        assert sum(isinstance(o, InvalidTaskState) for o in outcomes) == 1
        assert [kind for kind, _ in await h.outbox()] == ["task_terminal"]
