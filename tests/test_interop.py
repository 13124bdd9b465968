"""The AuthZEN interop suites replayed against the real server, compared as their harnesses do.

- todo and api-gateway: single evaluations compare only the boolean `decision`; todo batches
  compare the `evaluations` array exactly (each item exactly `{"decision": b}`);
- search and IdP: `results` sorted and compared as serialised strings (exact set, exact keys).
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

import httpx
import pytest

from tests.conftest import INTEROP, interop_file

TODO = interop_file("interop/authzen-todo-backend/test/decisions-authorization-api-1_0-02.json")
GATEWAY = interop_file("interop/authzen-api-gateways/test-harness/test/decisions.json")
SEARCH = {
    kind: interop_file(f"interop/authzen-search-demo/test-harness/src/{kind}/results.json")
    for kind in ("subject", "resource", "action")
}
IDP = interop_file("interop/authzen-idp/test-harness/src/results.json")


def _ids(cases: list[Any]) -> list[str]:
    return [f"case{n}" for n in range(len(cases))]


def _canonical(results: list[dict[str, Any]]) -> str:
    """What the search harness compares: sorted, nulls dropped, serialised."""
    cleaned = [{k: v for k, v in item.items() if v is not None} for item in results]
    cleaned.sort(key=lambda r: (r.get("type", ""), r.get("id", ""), r.get("name", "")))
    return json.dumps(cleaned)


def test_suite_sizes() -> None:
    # The acceptance counts; a changed data file should not silently shrink the replay.
    assert len(TODO["evaluation"]) == 40 and len(TODO["evaluations"]) == 3
    sizes = [len(SEARCH[k]["evaluation"]) for k in ("subject", "resource", "action")]
    assert sizes == [60, 18, 120]
    assert len(GATEWAY["evaluation"]) == 25 and len(IDP["search"]) == 6


def test_the_data_files_are_the_listed_upstream_copies() -> None:
    # Each row of the README's table: | `path` | commit | licence | `sha256` |
    readme = (INTEROP / "README.md").read_text(encoding="utf-8")
    row = r"^\| `([^`]+)` \|[^|]+\|[^|]+\| `([0-9a-f]{64})` \|$"
    rows = re.findall(row, readme, re.MULTILINE)
    listed = dict(rows)
    assert len(listed) == len(rows) == 11
    found = {
        path.relative_to(INTEROP).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in INTEROP.rglob("*")
        if path.is_file() and path.name != "README.md"
    }
    assert found == listed


@pytest.mark.parametrize("case", TODO["evaluation"], ids=_ids(TODO["evaluation"]))
def test_todo_evaluation(client: httpx.Client, case: dict[str, Any]) -> None:
    answer = client.post("/stores/todo/access/v1/evaluation", json=case["request"]).json()
    assert answer.get("decision", False) is case["expected"]


@pytest.mark.parametrize("case", TODO["evaluations"], ids=_ids(TODO["evaluations"]))
def test_todo_evaluations(client: httpx.Client, case: dict[str, Any]) -> None:
    answer = client.post("/stores/todo/access/v1/evaluations", json=case["request"]).json()
    assert answer["evaluations"] == case["expected"]


@pytest.mark.parametrize("case", GATEWAY["evaluation"], ids=_ids(GATEWAY["evaluation"]))
def test_gateway_evaluation(client: httpx.Client, case: dict[str, Any]) -> None:
    answer = client.post("/stores/gateway/access/v1/evaluation", json=case["request"]).json()
    assert answer.get("decision", False) is case["expected"]


SEARCH_CASES = [
    pytest.param(kind, case, id=f"{kind}{n}")
    for kind in ("subject", "resource", "action")
    for n, case in enumerate(SEARCH[kind]["evaluation"])
]


@pytest.mark.parametrize(("kind", "case"), SEARCH_CASES)
def test_search(client: httpx.Client, kind: str, case: dict[str, Any]) -> None:
    answer = client.post(f"/stores/search/access/v1/search/{kind}", json=case["request"]).json()
    assert _canonical(answer["results"]) == _canonical(case["expected"]["results"])


@pytest.mark.parametrize("case", IDP["search"], ids=_ids(IDP["search"]))
def test_idp_search(client: httpx.Client, case: dict[str, Any]) -> None:
    answer = client.post("/stores/idp/access/v1/search/resource", json=case["request"]).json()
    assert _canonical(answer["results"]) == _canonical(case["expected"]["results"])
