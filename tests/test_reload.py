"""Hot reload: a bad store keeps serving its last good decisions and shows up in /readyz."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from tests.conftest import POLICIES, serve, settings_for

ALICE_WRITES_RECORD_1 = {
    "subject": {"type": "user", "id": "alice"},
    "action": {"name": "write"},
    "resource": {"type": "record", "id": "record-1"},
}


def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


def test_bad_reload_keeps_last_good_store_until_fixed(tmp_path: Path) -> None:
    store = tmp_path / "cert"
    shutil.copytree(POLICIES / "certification", store)
    policies = store / "policies.cedar"
    good = policies.read_text()
    with (
        serve(settings_for(tmp_path, {"default": store})) as server,
        httpx.Client(base_url=server.url) as http,
    ):

        def decision() -> bool:
            answer = http.post("/access/v1/evaluation", json=ALICE_WRITES_RECORD_1)
            return bool(answer.json()["decision"])

        assert decision() is True
        assert http.get("/readyz").status_code == 200

        # Turn alice's write permit into a forbid, and break another policy's syntax.
        permit = '@id("write-alice-unarchived")\npermit'
        assert permit in good
        without_write = good.replace(permit, '@id("write-alice-unarchived")\nforbid')
        policies.write_text(without_write + "\npermit (principal, action, resource) when {;\n")
        wait_for(lambda: http.get("/readyz").status_code == 503)
        ready = http.get("/readyz").json()
        assert ready["stores"]["default"]["ready"] is False
        broken_line = without_write.count("\n") + 2
        assert f"policies.cedar:{broken_line}:" in ready["stores"]["default"]["error"]
        assert decision() is True, "the last good policies must keep deciding"

        # A valid store that forbids alice's writes: it is taken, and /readyz recovers.
        policies.write_text(without_write)
        wait_for(lambda: http.get("/readyz").status_code == 200)
        assert decision() is False


def test_reload_applies_changed_entities(tmp_path: Path) -> None:
    store = tmp_path / "cert"
    shutil.copytree(POLICIES / "certification", store)
    entities = store / "entities.json"
    request = {
        "subject": {"type": "user", "id": "bob"},
        "action": {"name": "write"},
        "resource": {"type": "record", "id": "record-2"},
    }
    with (
        serve(settings_for(tmp_path, {"default": store})) as server,
        httpx.Client(base_url=server.url) as http,
    ):
        assert http.post("/access/v1/evaluation", json=request).json()["decision"] is True
        # bob loses the admin role in the stored entities.
        entities.write_text(entities.read_text().replace('"admin"', '"auditor"'))
        wait_for(
            lambda: http.post("/access/v1/evaluation", json=request).json()["decision"] is False
        )
        assert http.get("/readyz").status_code == 200
