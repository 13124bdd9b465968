"""The pages of the access request side of the store contract, on every backend: the inbox
(newest first, of any status or of some, a page before a time) and a subject's own requests
(by `subject_key`)."""

from __future__ import annotations

from bridge.store.contract import Store, TaskRecord, subject_key
from tests.store.conftest import Backend
from tests.store.records import T0, decided, task

pytest_plugins = ["tests.support.plugin"]


def ids(records: list[TaskRecord]) -> list[str]:
    return [r.id for r in records]


async def test_the_inbox_newest_first_by_status_and_page(store: Store) -> None:
    a = task(id="arq-a", created_at=T0 + 1)
    b = task(id="arq-b", created_at=T0 + 2)
    c = task(id="arq-c", created_at=T0 + 2)  # made with b: the greater id comes first
    d = task(id="arq-d", created_at=T0 + 3)
    e = task(id="arq-e", created_at=T0 + 4)
    for record in (c, e, a, d, b):
        await store.task_insert(record, None, [])
    await store.task_update(decided(b.id, 1, "approved"))
    await store.task_update(decided(d.id, 1, "denied"))
    await store.task_update(decided(e.id, 1, "cancelled"))

    assert ids(await store.tasks_recent(None, None, 10)) == [
        "arq-e",
        "arq-d",
        "arq-c",
        "arq-b",
        "arq-a",
    ]
    assert ids(await store.tasks_recent(None, None, 2)) == ["arq-e", "arq-d"]
    assert ids(await store.tasks_recent(None, T0 + 3, 10)) == ["arq-c", "arq-b", "arq-a"]
    assert ids(await store.tasks_recent(None, T0 + 1, 10)) == []  # before is exclusive
    assert await store.tasks_recent(["pending"], None, 10) == [c, a]
    assert ids(await store.tasks_recent(["approved", "denied"], None, 10)) == ["arq-d", "arq-b"]
    assert ids(await store.tasks_recent(["denied", "denied"], None, 10)) == ["arq-d"]
    # Several statuses: one page, in one order, whichever status each task has.
    assert ids(await store.tasks_recent(["approved", "pending", "cancelled"], T0 + 4, 2)) == [
        "arq-c",
        "arq-b",
    ]
    assert await store.tasks_recent([], None, 10) == []
    assert await store.tasks_recent(["expired"], None, 10) == []


async def test_a_subjects_own_requests(store: Store, backend: Backend) -> None:
    alice = {"type": "user", "id": "alice"}
    mine = [task(subject=alice | {"properties": {"n": n}}, created_at=T0 + n) for n in range(3)]
    namesake = task(subject={"type": "service", "id": "alice"})
    bob = task(subject={"type": "user", "id": "bob"})
    for record in (*mine, namesake, bob):
        await store.task_insert(record, None, [])
    await store.task_update(decided(mine[1].id, 1))  # decided ones are still hers

    key = subject_key(alice)
    assert key == '["user","alice"]'
    assert ids(await store.tasks_of_subject(key, None, 10)) == [r.id for r in reversed(mine)]
    assert ids(await store.tasks_of_subject(key, T0 + 2, 1)) == [mine[1].id]
    assert ids(await store.tasks_of_subject(key, T0, 10)) == []  # before is exclusive
    assert await store.tasks_of_subject('["service","alice"]', None, 10) == [namesake]
    assert await store.tasks_of_subject('["user","carol"]', None, 10) == []
    assert backend.rows("SELECT subject_key FROM access_requests WHERE id = ?", bob.id) == [
        ('["user","bob"]',)
    ]
