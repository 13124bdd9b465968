"""Reading `profiles/*.json` into a `ProfileSet`, or a list of every problem with its line.

Profiles are written by hand and decide what clients may ask for, so loading is strict:
unknown members, malformed pointers, an invalid JSON Schema, a schema that would accept
unknown entry members, two profiles for one type or one scope claimed twice are all refused.
Loading yields a complete set or raises `ProfileLoadError`; never half a set.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, NoReturn

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from ..problems import Problem, ProblemsError
from .describe import template_problem
from .json_lines import JSONPath, MemberLines, dotted, member_lines
from .profile_members import MemberChecker
from .profiles import Profile, ProfileSet

DRAFT_2020_12 = "https://json-schema.org/draft/2020-12/schema"
_PROFILE_MEMBERS = ("type", "description", "schema", "authzen", "scopes", "describe")
_MAX_MESSAGE = 300


ProfileProblem = Problem


class ProfileLoadError(ProblemsError):
    """Profiles that cannot be loaded, with every problem found in them."""


def profile_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("*.json") if p.is_file())


def load_profiles(folder: Path, *, missing_ok: bool = False) -> ProfileSet:
    """Every `*.json` profile in `folder` (not its subfolders); `ProfileLoadError` if any is bad.

    With `missing_ok`, an absent folder is an empty set (a bridge that serves only the
    AuthZEN API needs no profiles)."""
    if missing_ok and not folder.exists():
        return ProfileSet()
    if not folder.is_dir():
        raise ProfileLoadError([ProfileProblem(str(folder), None, "not a folder")])
    problems: list[ProfileProblem] = []
    loaded: list[tuple[Profile, MemberLines]] = []
    for file in profile_files(folder):
        found = _load_file(file, problems)
        if found is not None:
            loaded.append(found)
    _check_unique(loaded, problems)
    if problems:
        raise ProfileLoadError(problems)
    return ProfileSet(profile for profile, _ in loaded)


def _load_file(file: Path, problems: list[ProfileProblem]) -> tuple[Profile, MemberLines] | None:
    name = str(file)
    try:
        text = file.read_bytes().decode("utf-8")
    except OSError as exc:
        problems.append(ProfileProblem(name, None, f"cannot read: {exc.strerror}"))
        return None
    except UnicodeDecodeError:
        problems.append(ProfileProblem(name, None, "not UTF-8"))
        return None
    try:
        data = json.loads(text, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        problems.append(ProfileProblem(name, exc.lineno, f"not valid JSON: {exc.msg}", exc.colno))
        return None
    except (ValueError, RecursionError) as exc:
        problems.append(ProfileProblem(name, None, f"not valid JSON: {exc}"))
        return None
    lines = member_lines(text)
    before = len(problems)
    for path, line in lines.duplicates:
        problems.append(ProfileProblem(name, line, f"{dotted(path)}: duplicate member"))
    if not isinstance(data, dict):
        problems.append(ProfileProblem(name, 1, "a profile must be a JSON object"))
        return None
    check = _FileChecker(name, lines, problems)
    profile = check.profile(data)
    if profile is None or len(problems) > before:
        return None
    return profile, lines


class _FileChecker(MemberChecker):
    def __init__(self, file: str, lines: MemberLines, problems: list[ProfileProblem]) -> None:
        self.file, self.lines, self.problems = file, lines, problems

    def problem(self, path: JSONPath, message: str) -> None:
        line = self.lines.line_of(path) if path else 1
        text = f"{dotted(path)}: {message}" if path else message
        self.problems.append(ProfileProblem(self.file, line, _cut(text)))

    def profile(self, data: dict[str, Any]) -> Profile | None:
        self.unknown_members(data, (), _PROFILE_MEMBERS)
        type_ = self.string(data, ("type",), required=True, non_empty=True)
        description = self.string(data, ("description",), required=True)
        schema = self.schema(data.get("schema"))
        authzen = self.authzen(data.get("authzen"), schema)
        scopes = self.scopes(data.get("scopes"), type_, authzen)
        describe = self.describe(data.get("describe"))
        if type_ is None or description is None or schema is None or authzen is None:
            return None
        return Profile(
            type=type_,
            description=description,
            schema=schema,
            authzen=authzen,
            scopes=scopes,
            file=self.file,
            validator=Draft202012Validator(schema),
            describe=describe,
        )

    def describe(self, raw: Any) -> dict[str, str]:
        """`describe`: action → sentence template (`rar.describe`)."""
        if raw is None:
            return {}
        if not isinstance(raw, dict):
            self.problem(("describe",), "must be an object of action: sentence template")
            return {}
        found: dict[str, str] = {}
        for action, template in raw.items():
            if not isinstance(template, str) or not template:
                self.problem(("describe", action), "must be a non-empty string")
                continue
            problem = template_problem(template)
            if problem is not None:
                self.problem(("describe", action), problem)
                continue
            found[action] = template
        return found

    def schema(self, schema: Any) -> dict[str, Any] | None:
        if schema is None:
            self.problem((), '"schema" is required')
            return None
        if not isinstance(schema, dict):
            self.problem(("schema",), "must be an object (a JSON Schema)")
            return None
        declared = schema.get("$schema", DRAFT_2020_12)
        if declared != DRAFT_2020_12:
            self.problem(("schema", "$schema"), f"only {DRAFT_2020_12} is supported")
            return None
        try:
            Draft202012Validator.check_schema(schema)
        except SchemaError as exc:
            where = ("schema", *exc.absolute_path)
            self.problem(where, f"not a valid JSON Schema: {exc.message}")
            return None
        for where in _remote_refs(schema, ("schema",)):
            self.problem(where, "only references inside the profile work")
        closed = schema.get("additionalProperties") is False
        if not closed and schema.get("unevaluatedProperties") is not False:
            self.problem(
                ("schema",),
                "set additionalProperties to false: RFC 9396 requires entries with "
                "unknown members to be refused",
            )
        elif closed and "type" not in schema.get("properties", {}):
            self.problem(
                ("schema",),
                '"type" is not among its properties, so every entry would be refused',
            )
        return schema


def _check_unique(loaded: list[tuple[Profile, MemberLines]], out: list[ProfileProblem]) -> None:
    types: dict[str, str] = {}
    scopes: dict[str, str] = {}
    for profile, lines in loaded:
        if profile.type in types:
            message = f'type "{profile.type}" is already defined in {types[profile.type]}'
            out.append(ProfileProblem(profile.file, lines.line_of(("type",)), message))
        types.setdefault(profile.type, profile.file)
        for scope in profile.scopes:
            if scope in scopes:
                message = f'scope "{scope}" is already mapped in {scopes[scope]}'
                out.append(ProfileProblem(profile.file, lines.line_of(("scopes", scope)), message))
            scopes.setdefault(scope, profile.file)


def _remote_refs(schema: Any, path: JSONPath) -> list[JSONPath]:
    """Paths of `$ref`s that leave the document: they would fail (or fetch) at request time."""
    found: list[JSONPath] = []
    if isinstance(schema, dict):
        for key, value in schema.items():
            if key in ("$ref", "$dynamicRef") and isinstance(value, str):
                if not value.startswith("#"):
                    found.append((*path, key))
            else:
                found.extend(_remote_refs(value, (*path, key)))
    elif isinstance(schema, list):
        for index, value in enumerate(schema):
            found.extend(_remote_refs(value, (*path, index)))
    return found


def _cut(message: str) -> str:
    return message if len(message) <= _MAX_MESSAGE else message[: _MAX_MESSAGE - 3] + "..."


def _no_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not JSON")
