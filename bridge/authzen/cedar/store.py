"""Loading a policy store folder into one immutable snapshot.

A store is a folder: `*.cedar` policy files, at most one schema (`*.cedarschema` or
`*.cedarschema.json`) and an optional `entities.json`. Loading either yields a complete
`PolicyStore` or raises `StoreLoadError` listing every problem with its file and line; it
never yields half a store.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import cedarpy

from ...grammar import is_template_name
from ...problems import Problem, ProblemsError
from .entities import EntityGraph
from .index import PolicyIndex, PolicyRecord, build_policy_set
from .names import ACTION_TYPE
from .source import Statement, array_element_lines, find_word_line, split_policies

ENTITIES_FILE = "entities.json"
# `@approval("<template>")` on a forbid policy: its denials can be requested (ARAP).
APPROVAL_ANNOTATION = "approval"
# What each template needs (steps, quorum, emergencies): read by the access request service,
# watched and versioned here with the rest of the store's files.
APPROVAL_TEMPLATES_FILE = "approvals.toml"
# The request forms and catalogs the templates name (`approval_templates`), versioned too.
TEMPLATE_DATA_FOLDERS = ("forms", "catalogs")


# Store problems are ordinary file problems; the names say where they come from.
StoreProblem = Problem


class StoreLoadError(ProblemsError):
    """A store that cannot be loaded, with every problem found in it."""


@dataclass(frozen=True)
class PolicyStore:
    name: str
    path: Path
    policies: tuple[PolicyRecord, ...]
    index: PolicyIndex
    entities: EntityGraph
    schema: cedarpy.Schema | None
    policy_set: cedarpy.PolicySet
    # What the audit trail records as "under which policies": a digest of the store's files
    # (names and contents), the same on every replica that loaded the same files.
    version: str = ""

    def policy(self, policy_id: str) -> PolicyRecord | None:
        return self.by_id.get(policy_id)

    def approval_template(self, determining: list[str]) -> str | None:
        """The template a denial can be requested with: when every policy that determined
        it is a `forbid` carrying the same `@approval("<template>")`; else None."""
        templates = set()
        for policy_id in determining:
            policy = self.policy(policy_id)
            if policy is None or policy.effect != "forbid":
                return None
            template = policy.annotations.get(APPROVAL_ANNOTATION)
            if not template or not is_template_name(template):
                return None  # `bridge policy validate` reports a name outside the grammar
            templates.add(template)
        return templates.pop() if len(templates) == 1 else None

    @cached_property
    def by_id(self) -> dict[str, PolicyRecord]:
        return {p.policy_id: p for p in self.policies}

    @property
    def actions(self) -> list[str]:
        """Every action the store knows: from its schema and from its policies' scopes."""
        known = set(self.entities.ids_of_type(ACTION_TYPE)) | self.index.named_actions
        return sorted(known)


def store_files(path: Path) -> list[Path]:
    """The files that make up a store (what the reload watcher looks at)."""
    if not path.is_dir():
        return []
    return sorted(
        p
        for p in path.rglob("*")
        if p.is_file()
        and (
            p.suffix == ".cedar"
            or p.name.endswith((".cedarschema", ".cedarschema.json"))
            or p.name in (ENTITIES_FILE, APPROVAL_TEMPLATES_FILE)
            or (p.suffix == ".json" and p.parent in [path / f for f in TEMPLATE_DATA_FOLDERS])
        )
    )


def load_store(name: str, path: Path) -> PolicyStore:
    problems: list[StoreProblem] = []
    if not path.is_dir():
        raise StoreLoadError([StoreProblem(str(path), None, "not a folder")])
    files = store_files(path)
    schema = _load_schema(path, files, problems)
    policies = _load_policies(path, files, schema, problems)
    handle = _load_entities(path, schema, problems)
    if problems:
        raise StoreLoadError(problems)
    assert handle is not None
    entities = EntityGraph(handle)
    return PolicyStore(
        name=name,
        path=path,
        policies=tuple(policies),
        index=PolicyIndex(policies, entities.action_descendants),
        entities=entities,
        schema=schema,
        policy_set=build_policy_set(policies),
        version=store_version(path, files),
    )


def store_version(path: Path, files: list[Path]) -> str:
    """`sha256:` and the first 16 hex digits of the digest of the store's files: each
    relative name and its bytes, length-prefixed so that no two stores share a digest by
    moving bytes between files."""
    digest = hashlib.sha256()
    for file in files:
        name = file.relative_to(path).as_posix().encode("utf-8")
        data = file.read_bytes()
        for part in (name, data):
            digest.update(len(part).to_bytes(8, "big"))
            digest.update(part)
    return "sha256:" + digest.hexdigest()[:16]


def _rel(path: Path, file: Path) -> str:
    return str(path / file.relative_to(path))


def _load_schema(
    path: Path, files: list[Path], problems: list[StoreProblem]
) -> cedarpy.Schema | None:
    schemas = [f for f in files if f.name.endswith((".cedarschema", ".cedarschema.json"))]
    if not schemas:
        return None
    if len(schemas) > 1:
        names = ", ".join(f.name for f in schemas)
        problems.append(StoreProblem(str(path), None, f"more than one schema: {names}"))
        return None
    file = schemas[0]
    text = file.read_text(encoding="utf-8")
    try:
        if file.name.endswith(".json"):
            return cedarpy.Schema.from_json_str(text)
        return cedarpy.Schema.from_str(text)
    except ValueError as exc:
        message = str(exc)
        # The token a message names: `quoted`, or after "type(s): " (the first of a list).
        token = re.search(r"`([^`]+)`|: (\w+)(?:, \w+)*$", message)
        line = find_word_line(text, (token.group(1) or token.group(2)) if token else "")
        problems.append(StoreProblem(_rel(path, file), line, f"schema: {message}"))
        return None


def _load_policies(
    path: Path,
    files: list[Path],
    schema: cedarpy.Schema | None,
    problems: list[StoreProblem],
) -> list[PolicyRecord]:
    records: list[PolicyRecord] = []
    seen_ids: dict[str, str] = {}
    for file in (f for f in files if f.suffix == ".cedar"):
        rel = _rel(path, file)
        text = file.read_text(encoding="utf-8")
        statements = split_policies(text)
        try:
            parsed = cedarpy.PolicySet.from_str(text).to_pst()
        except ValueError as exc:
            problems.extend(_locate_parse_errors(rel, statements, str(exc)))
            continue
        if parsed.templates:
            problems.append(StoreProblem(rel, None, "policy templates are not supported"))
            continue
        policies = list(parsed.static_policies.values())
        lines = [s.line for s in statements] if len(statements) == len(policies) else None
        for n, template in enumerate(policies):
            line = lines[n] if lines else None
            policy_id = template.annotations.get("id") or f"{file.name}#{n}"
            if policy_id in seen_ids:
                problems.append(
                    StoreProblem(
                        rel, line, f"duplicate policy id {policy_id!r} ({seen_ids[policy_id]})"
                    )
                )
                continue
            seen_ids[policy_id] = f"{rel}:{line}" if line else rel
            records.append(PolicyRecord(policy_id, rel, line, template))
        if schema is not None:
            problems.extend(_validate(rel, text, schema, lines))
    return records


def _locate_parse_errors(rel: str, statements: list[Statement], whole: str) -> list[StoreProblem]:
    """Parse each statement alone to say which one is broken."""
    found = []
    for statement in statements:
        try:
            cedarpy.PolicySet.from_str(statement.text)
        except ValueError as exc:
            found.append(StoreProblem(rel, statement.line, str(exc), statement.column))
    return found or [StoreProblem(rel, None, whole)]


_POLICY_PREFIX = re.compile(r"^for policy `policy(\d+)`, ")


def _validate(
    rel: str, text: str, schema: cedarpy.Schema, lines: list[int] | None
) -> list[StoreProblem]:
    result = cedarpy.validate_policies(text, schema)
    out = []
    for error in result.errors:
        message = _POLICY_PREFIX.sub("", error.error)
        # Not every message names its policy; the error's own policy id always does.
        found = re.fullmatch(r"policy(\d+)", error.policy_id or "")
        n = int(found.group(1)) if found else None
        line = lines[n] if n is not None and lines and n < len(lines) else None
        out.append(StoreProblem(rel, line, message))
    return out


def _load_entities(
    path: Path, schema: cedarpy.Schema | None, problems: list[StoreProblem]
) -> cedarpy.Entities | None:
    file = path / ENTITIES_FILE
    text = file.read_text(encoding="utf-8") if file.is_file() else "[]"
    rel = _rel(path, file) if file.is_file() else str(file)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        problems.append(StoreProblem(rel, exc.lineno, f"not valid JSON: {exc.msg}", exc.colno))
        return None
    if not isinstance(data, list):
        problems.append(StoreProblem(rel, 1, "must be a JSON array of entities"))
        return None
    try:
        return cedarpy.Entities.from_json_str(text, schema)
    except ValueError as exc:
        problems.extend(_locate_entity_errors(rel, text, data, schema, str(exc)))
        return None


def _locate_entity_errors(
    rel: str, text: str, data: list[object], schema: cedarpy.Schema | None, whole: str
) -> list[StoreProblem]:
    lines = array_element_lines(text)
    found = []
    for n, element in enumerate(data):
        try:
            cedarpy.Entities.from_json_str(json.dumps([element]), schema)
        except ValueError as exc:
            line = lines[n] if n < len(lines) else None
            found.append(StoreProblem(rel, line, f"entity #{n}: {exc}"))
    return found or [StoreProblem(rel, None, whole)]
