"""`bridge policy validate`: everything the engine refuses, placed precisely, plus our rules.

`load_store` stays the authority: whatever it refuses, validate refuses too, with the same
message. This module only moves each problem to the most precise position it can find
(`file:line:column`) and adds the authoring rules of `rules.py`. The precise placing runs
only for problems, so validating a good store costs one load plus one parse per file.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path

import cedarpy

from ..approval_templates import templates_problems
from ..authzen.cedar.entities import EntityGraph
from ..authzen.cedar.source import Statement
from ..authzen.cedar.store import (
    ENTITIES_FILE,
    StoreLoadError,
    StoreProblem,
    load_store,
    store_files,
)
from .approval import APPROVE_ACTION
from .locate import PolicyFile, Position, TextIndex, json_members
from .rules import ParsedPolicy, authoring_problems, parse_file

_QUOTED = re.compile(r"`([^`]+)`")
_SCHEMA_TOKEN = re.compile(r"`([^`]+)`|: (\w+)$")  # as load_store finds the schema's line
_ENTITY = re.compile(r"entity #(\d+): (.*)", re.DOTALL)
_PREFIX = re.compile(r"^for policy `policy(\d+)`, ")
_SCHEMA_SUFFIXES = (".cedarschema", ".cedarschema.json")


def validate_store(path: Path) -> list[StoreProblem]:
    """Every problem of the store at `path`, sorted by file and position."""
    files = store_files(path)
    sources: dict[str, PolicyFile] = {}
    for file in (f for f in files if f.suffix == ".cedar"):
        rel = str(path / file.relative_to(path))  # spelt as `load_store` spells it
        sources[rel] = PolicyFile.read(rel, file.read_text(encoding="utf-8"))
    parsed = {rel: parse_file(source) for rel, source in sources.items()}
    try:
        store = load_store(path.name, path)
        found: list[StoreProblem] = []
        groups = store.entities.action_ancestors(APPROVE_ACTION)
    except StoreLoadError as exc:
        placer = _Placer(path, files, sources, parsed)
        found = [placer.place(p) for p in exc.problems]
        groups = placer.groups_of_approve()
    if path.is_dir() and not any(f.name.endswith(_SCHEMA_SUFFIXES) for f in files):
        found.append(StoreProblem(str(path), None, "no schema: policies cannot be validated"))
    policies = [p for file_policies in parsed.values() if file_policies for p in file_policies]
    found += authoring_problems(policies, groups)
    found += templates_problems([path])  # approvals.toml, the steps of each template
    return sorted(found, key=lambda p: (p.file, p.line or 0, p.column or 0))


class _Placer:
    """Moves the engine's problems to the precise place, reading files only as needed."""

    def __init__(
        self,
        path: Path,
        files: Sequence[Path],
        sources: dict[str, PolicyFile],
        parsed: dict[str, list[ParsedPolicy] | None],
    ) -> None:
        self.path = path
        self.sources = sources
        self.parsed = parsed
        self.schema_files = [f for f in files if f.name.endswith(_SCHEMA_SUFFIXES)]
        self._schema: cedarpy.Schema | bool | None = False  # False: not read yet

    def schema(self) -> cedarpy.Schema | None:
        if self._schema is False:
            self._schema = None
            if len(self.schema_files) == 1:
                file = self.schema_files[0]
                text = file.read_text(encoding="utf-8")
                try:
                    if file.name.endswith(".json"):
                        self._schema = cedarpy.Schema.from_json_str(text)
                    else:
                        self._schema = cedarpy.Schema.from_str(text)
                except ValueError:
                    pass
        assert not isinstance(self._schema, bool)
        return self._schema

    def groups_of_approve(self) -> frozenset[str]:
        schema = self.schema()
        if schema is None:
            return frozenset()
        return EntityGraph(cedarpy.Entities.from_json_str("[]", schema)).action_ancestors(
            APPROVE_ACTION
        )

    def place(self, problem: StoreProblem) -> StoreProblem:
        file = Path(problem.file)
        if problem.column is not None or not file.is_file():
            return problem
        if problem.file in self.sources:
            line, column = self._in_policies(self.sources[problem.file], problem)
        elif file.name == ENTITIES_FILE:
            return self._in_entities(file, problem)
        else:
            line, column = self._in_schema(file, problem)
        return StoreProblem(problem.file, line, problem.message, column)

    def _in_policies(self, source: PolicyFile, problem: StoreProblem) -> Position:
        statement = source.statement_at(problem.line)
        if statement is None and problem.line is None:
            statement = self._revalidated_statement(source, problem.message)
        if statement is None:
            return self._template_slot(source) or (problem.line or 1, 1)
        if problem.message.startswith("duplicate policy id"):
            return source.annotation(statement, "id")
        for token in _QUOTED.findall(problem.message):
            found = source.token(statement, token)
            if found is not None:
                return found
        return statement.line, statement.column

    def _revalidated_statement(self, source: PolicyFile, message: str) -> Statement | None:
        """The statement of a validation error Cedar did not prefix with its policy."""
        schema, policies = self.schema(), self.parsed.get(source.rel)
        if schema is None or not policies:
            return None
        for error in cedarpy.validate_policies(source.text, schema).errors:
            number = re.fullmatch(r"policy(\d+)", error.policy_id or "")
            if _PREFIX.sub("", error.error) == message and number:
                n = int(number.group(1))
                return policies[n].statement if n < len(policies) else None
        return None

    def _template_slot(self, source: PolicyFile) -> Position | None:
        found = re.search(r"\?(principal|resource)\b", source.text)
        return None if found is None else TextIndex(source.text).position(found.start())

    def _in_schema(self, file: Path, problem: StoreProblem) -> Position:
        index = TextIndex(file.read_text(encoding="utf-8"))
        token = _SCHEMA_TOKEN.search(problem.message)
        if problem.line is not None:
            return index.word(problem.line, (token.group(1) or token.group(2)) if token else "")
        if problem.message.endswith("end of input"):
            return index.end()
        # e.g. "failed to resolve types: usr, grp": the first of the names that is written
        names = _QUOTED.findall(problem.message) or problem.message.rpartition(": ")[2].split(", ")
        found = (index.find_word(name.strip()) for name in names)
        return next((p for p in found if p is not None), (1, 1))

    def _in_entities(self, file: Path, problem: StoreProblem) -> StoreProblem:
        text = file.read_text(encoding="utf-8")
        match = _ENTITY.fullmatch(problem.message)
        if match is None:
            return StoreProblem(problem.file, problem.line or 1, problem.message, 1)
        n, reason = int(match.group(1)), match.group(2)
        members = json_members(text)
        culprit = _entity_culprit(json.loads(text)[n], self.schema())
        where = (n, *culprit) if culprit else (n,)
        line, column = members.get(where) or members.get((n,)) or (problem.line or 1, 1)
        label = f"entity #{n}" + (_culprit_label(culprit) if culprit else "")
        return StoreProblem(problem.file, line, f"{label}: {reason}", column)


def _entity_culprit(entity: object, schema: cedarpy.Schema | None) -> tuple[str | int, ...]:
    """The one attribute or parent whose removal makes the entity fit the schema, if any."""
    if schema is None or not isinstance(entity, dict):
        return ()

    def fits(candidate: dict[str, object]) -> bool:
        try:
            cedarpy.Entities.from_json_str(json.dumps([candidate]), schema)
        except ValueError:
            return False
        return True

    attrs, parents = entity.get("attrs"), entity.get("parents")
    if isinstance(attrs, dict):
        for key in attrs:
            if fits({**entity, "attrs": {k: v for k, v in attrs.items() if k != key}}):
                return ("attrs", key)
    if isinstance(parents, list):
        for i in range(len(parents)):
            if fits({**entity, "parents": parents[:i] + parents[i + 1 :]}):
                return ("parents", i)
    return ()


def _culprit_label(culprit: tuple[str | int, ...]) -> str:
    kind, which = culprit
    return f', attribute "{which}"' if kind == "attrs" else f", parent #{which}"
