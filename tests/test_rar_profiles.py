"""Loading RAR type profiles: the shipped ones load, and every broken file is reported with
its file and the line of the offending member, all problems at once."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from bridge.rar import ProfileLoadError, load_profiles
from bridge.rar.loader import ProfileProblem

REPO = Path(__file__).resolve().parents[1]

MINIMAL: dict[str, Any] = {
    "type": "documents",
    "description": "Documents of the document store.",
    "schema": {
        "type": "object",
        "properties": {
            "type": {"const": "documents"},
            "actions": {"type": "array", "items": {"enum": ["read"]}},
            "identifier": {"type": "string"},
        },
        "additionalProperties": False,
    },
    "authzen": {"resource_type": "Document", "resource_id": "auto", "actions": "actions"},
}


def profile(**changes: Any) -> dict[str, Any]:
    data = copy.deepcopy(MINIMAL)
    for name, value in changes.items():
        if name.startswith("authzen_"):
            data["authzen"][name.removeprefix("authzen_")] = value
        else:
            data[name] = value
    return data


def write(folder: Path, name: str, data: Any) -> tuple[Path, str]:
    text = data if isinstance(data, str) else json.dumps(data, indent=2)
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path, text


def line_of(text: str, needle: str, nth: int = 1) -> int:
    """1-based line of the `nth` line containing `needle`."""
    hits = [i for i, line in enumerate(text.splitlines(), 1) if needle in line]
    return hits[nth - 1]


def at(path: Path, text: str, needle: str, nth: int = 1) -> str:
    """`<file>:<line>` of the `nth` line containing `needle`."""
    return f"{path}:{line_of(text, needle, nth)}"


def problems(folder: Path) -> list[str]:
    with pytest.raises(ProfileLoadError) as caught:
        load_profiles(folder)
    return [str(p) for p in caught.value.problems]


def test_shipped_profiles_load() -> None:
    profiles = load_profiles(REPO / "profiles")
    assert profiles.types == ["customer_records", "payment_initiation"]
    payment = profiles.get("payment_initiation")
    assert payment is not None
    assert payment.authzen.resource_type == "Payment"
    assert set(payment.authzen.properties) == {"amount_minor", "currency"}
    scope = profiles.scope("customer_records:read")
    assert scope is not None
    assert (scope.resource_type, scope.resource_id, scope.action) == ("CustomerRecord", "*", "read")
    assert profiles.scope("customer_records:write") is None


def test_minimal_profile_loads_and_other_files_are_ignored(tmp_path: Path) -> None:
    write(tmp_path, "documents.json", profile())
    write(tmp_path, "README.md", "not a profile")
    profiles = load_profiles(tmp_path)
    assert profiles.types == ["documents"]
    assert profiles.get("other") is None


def test_missing_folder(tmp_path: Path) -> None:
    assert problems(tmp_path / "nope") == [f"{tmp_path / 'nope'}: not a folder"]


def test_syntax_error_gives_line_and_column(tmp_path: Path) -> None:
    path, _ = write(tmp_path, "bad.json", '{\n  "type": "x",\n  "description": \n}\n')
    assert problems(tmp_path) == [f"{path}:4:1: not valid JSON: Expecting value"]


def test_duplicate_member_is_refused_at_its_second_line(tmp_path: Path) -> None:
    text = json.dumps(profile(), indent=2).replace(
        '"type": "documents",', '"type": "documents",\n  "type": "other",', 1
    )
    path, _ = write(tmp_path, "dup.json", text)
    assert problems(tmp_path) == [f"{path}:3: type: duplicate member"]


def test_not_an_object(tmp_path: Path) -> None:
    path, _ = write(tmp_path, "list.json", "[]")
    assert problems(tmp_path) == [f"{path}:1: a profile must be a JSON object"]


def test_member_types_and_unknown_members(tmp_path: Path) -> None:
    data = profile(type="", description=7, colour="blue")
    path, text = write(tmp_path, "p.json", data)
    assert problems(tmp_path) == [
        at(path, text, '"colour"') + ": colour: unknown member",
        at(path, text, '"type": ""') + ": type: must be a non-empty string",
        at(path, text, '"description"') + ": description: must be a string",
    ]


def test_required_members(tmp_path: Path) -> None:
    data = profile()
    del data["type"], data["schema"], data["authzen"]
    path, _ = write(tmp_path, "p.json", data)
    assert problems(tmp_path) == [
        f'{path}:1: "type" is required',
        f'{path}:1: "schema" is required',
        f'{path}:1: "authzen" is required',
    ]


def test_invalid_json_schema_names_the_schema_line(tmp_path: Path) -> None:
    data = profile()
    data["schema"]["properties"]["actions"]["type"] = "strin"
    path, text = write(tmp_path, "p.json", data)
    [found] = problems(tmp_path)
    where = at(path, text, '"strin"') + ": schema.properties.actions.type:"
    assert found.startswith(f"{where} not a valid JSON Schema: ")


def test_invalid_regex_in_schema(tmp_path: Path) -> None:
    data = profile()
    data["schema"]["properties"]["identifier"]["pattern"] = "([a-z"
    path, text = write(tmp_path, "p.json", data)
    [found] = problems(tmp_path)
    assert found.startswith(
        at(path, text, '"pattern"') + ": schema.properties.identifier.pattern: "
    )


def test_schema_must_refuse_unknown_members(tmp_path: Path) -> None:
    data = profile()
    del data["schema"]["additionalProperties"]
    path, text = write(tmp_path, "p.json", data)
    assert problems(tmp_path) == [
        at(path, text, '"schema"') + ": schema: set additionalProperties to false: "
        "RFC 9396 requires entries with unknown members to be refused"
    ]


def test_closed_schema_must_declare_type(tmp_path: Path) -> None:
    data = profile()
    del data["schema"]["properties"]["type"]
    path, text = write(tmp_path, "p.json", data)
    assert problems(tmp_path) == [
        at(path, text, '"schema"') + ': schema: "type" is not among its properties, '
        "so every entry would be refused"
    ]


def test_other_drafts_and_remote_refs_are_refused(tmp_path: Path) -> None:
    data = profile()
    data["schema"]["$schema"] = "http://json-schema.org/draft-07/schema#"
    write(tmp_path, "a.json", data)
    data = profile(type="other")
    data["schema"]["properties"]["identifier"] = {"$ref": "https://example.com/id.json"}
    path, text = write(tmp_path, "b.json", data)
    found = problems(tmp_path)
    assert found[0].endswith(
        "schema.$schema: only https://json-schema.org/draft/2020-12/schema is supported"
    )
    assert found[1] == (
        at(path, text, '"$ref"') + ": schema.properties.identifier.$ref: "
        "only references inside the profile work"
    )


@pytest.mark.parametrize(
    ("changes", "needle", "message"),
    [
        (
            {"authzen_resource_id": "last"},
            '"resource_id"',
            'authzen.resource_id: resource_id must be "auto" or {"value": "<non-empty string>"}',
        ),
        (
            {"authzen_actions": {"value": []}},
            ('"actions": {', 2),
            'authzen.actions: actions must be "actions" or {"value": [<distinct non-empty '
            "strings>]}",
        ),
        (
            {"authzen_resource_type": 3},
            '"resource_type"',
            "authzen.resource_type: must be a non-empty string",
        ),
        ({"authzen_extra": 1}, '"extra"', "authzen.extra: unknown member"),
        (
            {"authzen_properties": {"amount": "instructedAmount/amount"}},
            '"amount"',
            "authzen.properties.amount: not a JSON Pointer: a JSON Pointer starts with '/'",
        ),
        (
            {"authzen_context": {"x": "/a~2b"}},
            '"x"',
            "authzen.context.x: not a JSON Pointer: '~' must be followed by 0 or 1 in a JSON "
            "Pointer",
        ),
        (
            {"authzen_properties": {"amount": {"pointer": "/a", "as": "minor_units"}}},
            '"amount"',
            "authzen.properties.amount.scale: must be an integer from 0 to 18",
        ),
        (
            {"authzen_properties": {"amount": {"pointer": "/a", "as": "minor_units", "scale": 19}}},
            '"scale"',
            "authzen.properties.amount.scale: must be an integer from 0 to 18",
        ),
        (
            {"authzen_properties": {"amount": {"pointer": "/a", "as": "cents"}}},
            '"as"',
            'authzen.properties.amount.as: must be "value" or "minor_units"',
        ),
        (
            {"authzen_properties": {"amount": {"pointer": "/a", "scale": 2}}},
            '"scale"',
            'authzen.properties.amount.scale: only applies with "as": "minor_units"',
        ),
        (
            {"authzen_context": {"client_id": "/identifier"}},
            '"client_id"',
            'authzen.context.client_id: "client_id" is set by the bridge; choose another name',
        ),
        (
            {"authzen_properties": {"identifier": "/identifier"}},
            '"identifier": "/identifier"',
            'authzen.properties.identifier: "identifier" is already an entry member; choose '
            "another name",
        ),
        (
            {"scopes": {"docs read": {"resource_id": "*", "action": "read"}}},
            '"docs read"',
            "scopes.docs read: not a valid OAuth scope value (RFC 6749 §3.3)",
        ),
        (
            {"scopes": {"docs:read": {"resource_id": "*"}}},
            '"docs:read"',
            'scopes.docs:read: "action" is required',
        ),
        (
            {"scopes": {"docs:read": {"resource_id": "*", "action": "read", "x": 1}}},
            '"x"',
            "scopes.docs:read.x: unknown member",
        ),
    ],
)
def test_authzen_and_scope_member_problems(
    tmp_path: Path, changes: dict[str, Any], needle: str | tuple[str, int], message: str
) -> None:
    path, text = write(tmp_path, "p.json", profile(**changes))
    needle, nth = needle if isinstance(needle, tuple) else (needle, 1)
    assert problems(tmp_path) == [at(path, text, needle, nth) + f": {message}"]


def test_two_profiles_for_one_type(tmp_path: Path) -> None:
    write(tmp_path, "a.json", profile())
    path_b, text_b = write(tmp_path, "b.json", profile(description="again"))
    assert problems(tmp_path) == [
        at(path_b, text_b, '"type"') + ': type "documents" is already defined in '
        f"{tmp_path / 'a.json'}"
    ]


def test_one_scope_claimed_twice(tmp_path: Path) -> None:
    scopes = {"docs:read": {"resource_id": "*", "action": "read"}}
    write(tmp_path, "a.json", profile(scopes=scopes))
    path_b, text_b = write(tmp_path, "b.json", profile(type="other", scopes=scopes))
    assert problems(tmp_path) == [
        at(path_b, text_b, '"docs:read"') + ': scope "docs:read" is already mapped in '
        f"{tmp_path / 'a.json'}"
    ]


def test_every_bad_file_is_reported_in_one_go(tmp_path: Path) -> None:
    write(tmp_path, "a.json", "{")
    write(tmp_path, "b.json", profile(type=""))
    write(tmp_path, "c.json", profile(type="fine"))
    found = problems(tmp_path)
    assert [p.split(":")[0] for p in found] == [
        str(tmp_path / "a.json"),
        str(tmp_path / "b.json"),
    ]


def test_problem_without_a_line() -> None:
    assert str(ProfileProblem("p.json", None, "not UTF-8")) == "p.json: not UTF-8"
    assert str(ProfileProblem("p.json", 3, "x", 7)) == "p.json:3:7: x"


def test_not_utf8(tmp_path: Path) -> None:
    (tmp_path / "p.json").write_bytes(b'{"type": "\xff"}')
    assert problems(tmp_path) == [f"{tmp_path / 'p.json'}: not UTF-8"]
