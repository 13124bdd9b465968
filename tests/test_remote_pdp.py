"""The remote PDP client against a second bridge process over HTTP.

The same todo and certification cases as the direct tests, decided through discovery and
`RemotePDP`; then the process is stopped and the client must fail closed.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bridge.authzen.errors import PDPUnavailable
from bridge.authzen.models import (
    EvaluationRequest,
    EvaluationsSemantic,
    ResourceSearchRequest,
    SubjectSearchRequest,
)
from bridge.authzen.remote import RemotePDP
from bridge.settings import RemotePDPSettings
from tests.conftest import POLICIES, bridge_process, free_port, interop_file, write_config

TODO = interop_file("interop/authzen-todo-backend/test/decisions-authorization-api-1_0-02.json")

CERTIFICATION = [
    ("alice", None, "read", None, "record-1", None, True),
    ("alice", None, "write", None, "record-1", None, True),
    ("bob", None, "read", None, "record-1", None, True),
    ("bob", None, "write", None, "record-1", None, False),
    ("alice", None, "write", None, "record-2", {"status": "archived"}, False),
    ("bob", {"role": "admin"}, "write", None, "record-2", {"status": "archived"}, True),
    ("alice", None, "delete", {"soft": True}, "record-1", None, True),
    ("alice", None, "delete", {"soft": False}, "record-1", None, False),
]


def _request(case: tuple[Any, ...]) -> EvaluationRequest:
    subject, subject_props, action, action_props, resource, resource_props, _ = case
    return EvaluationRequest.model_validate(
        {
            "subject": {"type": "user", "id": subject, "properties": subject_props},
            "action": {"name": action, "properties": action_props},
            "resource": {"type": "record", "id": resource, "properties": resource_props},
        }
    )


@pytest.fixture(scope="module")
def second_bridge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    folder = tmp_path_factory.mktemp("second")
    config = write_config(
        folder / "bridge.toml",
        {"todo": POLICIES / "todo", "certification": POLICIES / "certification"},
    )
    # Metadata is built from public_url, which must be where the client reaches the PDP.
    text = config.read_text()
    config.write_text(f'[server]\npublic_url = "http://127.0.0.1:{port}"\n\n{text}')
    with bridge_process(config, port) as proc:
        yield proc.url  # type: ignore[attr-defined,misc]


def _remote(url: str, **options: Any) -> RemotePDP:
    return RemotePDP(RemotePDPSettings.model_validate({"url": url, **options}))


async def test_todo_cases_through_remote_client(second_bridge: str) -> None:
    async with _remote(f"{second_bridge}/stores/todo") as pdp:
        for case in TODO["evaluation"]:
            decision = await pdp.evaluate(EvaluationRequest.model_validate(case["request"]))
            assert decision.decision is case["expected"], json.dumps(case["request"])
        for case in TODO["evaluations"]:
            body = case["request"]
            items = [
                EvaluationRequest.model_validate(
                    {"subject": body["subject"], "action": body["action"], **item}
                )
                for item in body["evaluations"]
            ]
            decisions = await pdp.evaluations(items)
            assert [d.to_json() for d in decisions] == case["expected"]


async def test_certification_cases_through_remote_client(second_bridge: str) -> None:
    async with _remote(f"{second_bridge}/stores/certification") as pdp:
        for case in CERTIFICATION:
            assert (await pdp.evaluate(_request(case))).decision is case[-1], case
        batch = [_request(case) for case in CERTIFICATION]
        decisions = await pdp.evaluations(batch)
        assert [d.decision for d in decisions] == [case[-1] for case in CERTIFICATION]
        # deny_on_first_deny stops at bob's write (the fourth case).
        short = await pdp.evaluations(batch, EvaluationsSemantic.deny_on_first_deny)
        assert [d.decision for d in short] == [True, True, True, False]
        subjects = await pdp.search_subject(
            SubjectSearchRequest.model_validate(
                {
                    "subject": {"type": "user"},
                    "action": {"name": "read"},
                    "resource": {"type": "record", "id": "record-1"},
                }
            )
        )
        assert {"type": "user", "id": "alice"} in subjects.results
        assert {"type": "user", "id": "bob"} in subjects.results
        resources = await pdp.search_resource(
            ResourceSearchRequest.model_validate(
                {
                    "subject": {"type": "user", "id": "alice"},
                    "action": {"name": "read"},
                    "resource": {"type": "record"},
                    "page": {"limit": 1},
                }
            )
        )
        # The client follows next_token across pages of one result each.
        assert resources.results == [
            {"type": "record", "id": "record-1"},
            {"type": "record", "id": "record-2"},
        ]


async def test_fails_closed_when_the_pdp_process_stops(tmp_path: Path) -> None:
    port = free_port()
    config = write_config(tmp_path / "bridge.toml", {"certification": POLICIES / "certification"})
    config.write_text(f'[server]\npublic_url = "http://127.0.0.1:{port}"\n\n' + config.read_text())
    url = f"http://127.0.0.1:{port}/stores/certification"
    async with _remote(url, retries=2, backoff_seconds=0.01, timeout_seconds=1) as pdp:
        with bridge_process(config, port):
            assert (await pdp.evaluate(_request(CERTIFICATION[0]))).decision is True
        with pytest.raises(PDPUnavailable):
            await pdp.evaluate(_request(CERTIFICATION[0]))
        with pytest.raises(PDPUnavailable):
            await pdp.evaluations([_request(c) for c in CERTIFICATION])
