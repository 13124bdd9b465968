"""A store's test cases: `tests.json` beside its policies.

```json
{"cases": [{"name": "…", "kind": "evaluation", "request": {…}, "expect": {…}}]}
```

`kind` names the endpoint the request is sent to: `evaluation`, `evaluations`,
`search_subject`, `search_resource` or `search_action`. `expect` is, per kind:
`{"decision": bool, "determining_policies"?: [ids], "requestable"?: "template" | false}`;
the exact response body of the batch endpoint (`{"evaluations": [...]}`); or
`{"results": [...]}`, the exact set of search results. The file is checked strictly, so a
misspelt member is an error at its line, not a test that silently checks nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..authzen.cedar.store import StoreProblem
from ..authzen.models import JSONObject
from .locate import JSONPath, json_members

TESTS_FILE = "tests.json"
KINDS = ("evaluation", "evaluations", "search_subject", "search_resource", "search_action")
_CASE_MEMBERS = ("name", "kind", "request", "expect")


@dataclass(frozen=True)
class Case:
    name: str
    kind: str
    request: JSONObject
    expect: JSONObject
    file: str
    line: int
    column: int

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


class CasesError(Exception):
    def __init__(self, problems: list[StoreProblem]) -> None:
        super().__init__("\n".join(map(str, problems)))
        self.problems = problems


def load_cases(store: Path) -> list[Case]:
    """Every case of the store's `tests.json`; raises `CasesError` listing every problem."""
    file = store / TESTS_FILE
    rel = str(file)
    if not file.is_file():
        raise CasesError([StoreProblem(rel, None, "no test file (every store needs one)")])
    text = file.read_text(encoding="utf-8")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        problem = StoreProblem(rel, exc.lineno, f"not valid JSON: {exc.msg}", exc.colno)
        raise CasesError([problem]) from None
    reader = _Reader(rel, json_members(text))
    cases = reader.cases(data)
    if reader.problems:
        raise CasesError(sorted(reader.problems, key=lambda p: (p.line or 0, p.column or 0)))
    return cases


class _Reader:
    def __init__(self, rel: str, members: dict[JSONPath, tuple[int, int]]) -> None:
        self.rel = rel
        self.members = members
        self.problems: list[StoreProblem] = []

    def fail(self, path: JSONPath, message: str) -> None:
        line, column = self.members.get(path, (1, 1))
        self.problems.append(StoreProblem(self.rel, line, f"{_name(path)} {message}", column))

    def cases(self, data: Any) -> list[Case]:
        if not isinstance(data, dict) or set(data) != {"cases"}:
            self.fail((), 'must be an object with one member, "cases"')
            return []
        if not isinstance(data["cases"], list):
            self.fail(("cases",), "must be an array")
            return []
        seen: set[str] = set()
        out = []
        for n, raw in enumerate(data["cases"]):
            case = self.case(("cases", n), raw)
            if case is None:
                continue
            if case.name in seen:
                self.fail(("cases", n, "name"), f"repeats the name {case.name!r}")
            seen.add(case.name)
            out.append(case)
        return out

    def case(self, path: JSONPath, raw: Any) -> Case | None:
        if not isinstance(raw, dict):
            self.fail(path, "must be an object")
            return None
        before = len(self.problems)
        for key in sorted(raw.keys() - set(_CASE_MEMBERS)):
            allowed = ", ".join(_CASE_MEMBERS)
            self.fail((*path, key), f"is not a member of a case (allowed: {allowed})")
        for key in (k for k in _CASE_MEMBERS if k not in raw):
            self.fail(path, f"has no {key!r}")
        name, kind, request, expect = (raw.get(k) for k in _CASE_MEMBERS)
        if "name" in raw and (not isinstance(name, str) or not name):
            self.fail((*path, "name"), "must be a non-empty string")
        if "kind" in raw and kind not in KINDS:
            self.fail((*path, "kind"), f"must be one of {', '.join(KINDS)}")
        if "request" in raw and not isinstance(request, dict):
            self.fail((*path, "request"), "must be an object")
        if not isinstance(expect, dict):
            if "expect" in raw:
                self.fail((*path, "expect"), "must be an object")
        elif kind in KINDS:
            self.expect((*path, "expect"), str(kind), expect)
        if len(self.problems) > before or not isinstance(request, dict):
            return None
        assert isinstance(expect, dict)
        line, column = self.members.get(path, (1, 1))
        return Case(str(name), str(kind), dict(request), dict(expect), self.rel, line, column)

    def expect(self, path: JSONPath, kind: str, expect: JSONObject) -> None:
        if kind == "evaluation":
            allowed = {"decision", "determining_policies", "requestable"}
            self.member(path, expect, "decision", bool, "true or false")
            ids = expect.get("determining_policies", [])
            if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
                self.fail((*path, "determining_policies"), "must be an array of policy ids")
            requestable = expect.get("requestable", False)
            if requestable is not False and (not isinstance(requestable, str) or not requestable):
                self.fail((*path, "requestable"), "must be a template name or false")
        elif kind == "evaluations":
            allowed = {"evaluations"} if "evaluations" in expect else {"decision", "context"}
            if "evaluations" in expect:
                self.member(path, expect, "evaluations", list, "an array of decisions")
            else:
                self.member(path, expect, "decision", bool, "true or false")
        else:
            allowed = {"results"}
            self.member(path, expect, "results", list, "an array of result objects")
        for key in sorted(expect.keys() - allowed):
            self.fail((*path, key), f"is not expected for kind {kind!r}")

    def member(self, path: JSONPath, obj: JSONObject, key: str, kind: type, what: str) -> None:
        if key not in obj:
            self.fail(path, f"has no {key!r} ({what})")
        elif not isinstance(obj[key], kind):
            self.fail((*path, key), f"must be {what}")


def _name(path: JSONPath) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out or "the file"
