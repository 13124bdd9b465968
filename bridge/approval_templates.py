"""Approval templates, the file format: what an `@approval("<template>")` denial needs before
it is approved.

A policy store may hold `approvals.toml` beside its policies. Each `[templates.<name>]`
says, in data the policy author owns:

- `description`: why an approval is needed, in words approvers read;
- `steps`: the ordered steps, each with a `name` (which policies read as
  `resource.step`), how many different people must approve it (`approvals`, k of the
  people policy allows: a quorum), and optionally `timeout_seconds`, after which the step
  is escalated;
- `emergency_approval_seconds`: emergency requests (`requested_access.emergency`) may be
  approved at once, for at most this long, when policy permits `approve_emergency`; they
  then wait for a review;
- `request_schema`: ARAP's request form, the name of a JSON Schema (draft 2020-12) file in
  the store's `forms/` folder describing what a requester adds to the submission (ARAP's
  `request_schema_url`); its `catalog_fields` name, by JSON Pointer into the form, the
  fields whose values come from a catalog of the store's `catalogs/` folder (the Catalog
  profile's `request_catalogs_url`), with the `scope_params` that narrow it.

A template the file does not name (or a store without the file) has one step, `approve`,
needing one approval: the behaviour of a store written before templates existed.

    [templates.sensitive-export]
    description = "Exports of sensitive records: a manager, then data protection."

    [[templates.sensitive-export.steps]]
    name = "manager"
    timeout_seconds = 3600

    [[templates.sensitive-export.steps]]
    name = "data-protection"

    [templates.project-access]
    request_schema = "project-access.json"          # forms/project-access.json
    [templates.project-access.catalog_fields."/cost_center"]
    catalog = "cost-centers"                        # catalogs/cost-centers.json
    [templates.project-access.catalog_fields."/project"]
    catalog = "projects"
    scope_params = { cost_center = "/cost_center" }

A catalog file is `{"items": [{"value", "label"?, "description"?, "risk_level"?, "owner"?,
"scope"?, "retired"?}]}`: `scope` maps each scope parameter to the value an item belongs to
(a project to its cost centre); a `retired` item is no longer offered nor accepted.
"""

from __future__ import annotations

import json
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .problems import Problem, ProblemsError

# The Cedar store watches and versions this file with its policies
# (`authzen.cedar.store.APPROVAL_TEMPLATES_FILE`, the same name).
TEMPLATES_FILE = "approvals.toml"
# Where a store keeps its request forms and catalogs (versioned with the store's files).
FORMS_FOLDER = "forms"
CATALOGS_FOLDER = "catalogs"
DEFAULT_STEP = "approve"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$")
_FILE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}\.json$")
# A JSON Pointer (RFC 6901) to a member of the form: `/name`, `/a/b`.
_POINTER = re.compile(r"^(/([^~/]|~[01])*)+$")
MAX_STEPS = 10
MAX_QUORUM = 20
MAX_CATALOG_ITEMS = 10_000
# A catalog endpoint's own parameters (the Catalog profile); no scope parameter is named so.
_RESERVED_PARAMS = frozenset({"q", "cursor", "limit"})


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StepModel(_Strict):
    name: str = Field(description="The step's name; policies read it as `resource.step`.")
    approvals: int = Field(
        1, ge=1, le=MAX_QUORUM, description="Different people who must approve this step."
    )
    timeout_seconds: int | None = Field(
        None, ge=60, description="Escalate the step when it waits longer than this."
    )

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _NAME.fullmatch(value):
            raise ValueError("a step name is 1 to 100 letters, digits and _ . : -")
        return value


class CatalogFieldModel(_Strict):
    catalog: str = Field(description="The catalog (`catalogs/<catalog>.json`) of its values.")
    scope_params: dict[str, str] = Field(
        default_factory=dict,
        description="Scope parameter → JSON Pointer of the form field giving its value.",
    )

    @field_validator("catalog")
    @classmethod
    def _catalog(cls, value: str) -> str:
        if not _NAME.fullmatch(value):
            raise ValueError("a catalog name is 1 to 100 letters, digits and _ . : -")
        return value

    @field_validator("scope_params")
    @classmethod
    def _scope(cls, params: dict[str, str]) -> dict[str, str]:
        for name, pointer in params.items():
            if not _NAME.fullmatch(name) or name in _RESERVED_PARAMS:
                raise ValueError(f"scope parameter {name!r}: a name other than q, cursor, limit")
            if not _POINTER.fullmatch(pointer):
                raise ValueError(f"scope parameter {name!r}: {pointer!r} is not a JSON Pointer")
        return params


class TemplateModel(_Strict):
    description: str | None = Field(None, max_length=500)
    steps: list[StepModel] = Field(
        default_factory=lambda: [StepModel(name=DEFAULT_STEP)], min_length=1
    )
    emergency_approval_seconds: int | None = Field(None, ge=60, le=86_400)
    request_schema: str | None = Field(
        None, description="A JSON Schema file in the store's `forms/` folder: the request form."
    )
    catalog_fields: dict[str, CatalogFieldModel] = Field(
        default_factory=dict,
        description="JSON Pointer of a form field → the catalog its values come from.",
    )

    @field_validator("request_schema")
    @classmethod
    def _schema_file(cls, value: str | None) -> str | None:
        if value is not None and not _FILE.fullmatch(value):
            raise ValueError("request_schema names a .json file of the forms/ folder, no path")
        return value

    @model_validator(mode="after")
    def _catalogs_need_a_form(self) -> TemplateModel:
        if self.catalog_fields and self.request_schema is None:
            raise ValueError("catalog_fields need a request_schema (the form they belong to)")
        for pointer, field in self.catalog_fields.items():
            if not _POINTER.fullmatch(pointer):
                raise ValueError(f"catalog_fields: {pointer!r} is not a JSON Pointer")
            if pointer in field.scope_params.values():
                raise ValueError(f"catalog_fields: {pointer!r} cannot narrow its own catalog")
        return self

    @field_validator("steps")
    @classmethod
    def _distinct(cls, steps: list[StepModel]) -> list[StepModel]:
        if len(steps) > MAX_STEPS:
            raise ValueError(f"a template has at most {MAX_STEPS} steps")
        names = [s.name for s in steps]
        if len(set(names)) != len(names):
            raise ValueError("step names must differ within a template")
        return steps


class TemplatesFile(_Strict):
    templates: dict[str, TemplateModel] = Field(default_factory=dict)

    @field_validator("templates")
    @classmethod
    def _names(cls, templates: dict[str, TemplateModel]) -> dict[str, TemplateModel]:
        for name in templates:
            if not _NAME.fullmatch(name):
                raise ValueError(f"template name {name!r}: 1 to 100 letters, digits and _ . : -")
        return templates


@dataclass(frozen=True, slots=True)
class Step:
    name: str
    approvals: int
    timeout_seconds: int | None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "approvals": self.approvals,
            "timeout_seconds": self.timeout_seconds,
        }


@dataclass(frozen=True, slots=True)
class CatalogField:
    """A form field whose values come from a catalog; `scope_params` pairs each scope
    parameter with the JSON Pointer of the field that gives its value."""

    pointer: str
    catalog: str
    scope_params: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class Template:
    name: str
    description: str | None
    steps: tuple[Step, ...]
    emergency_approval_seconds: int | None
    request_schema: str | None = None  # a file of the store's forms/ folder
    catalog_fields: tuple[CatalogField, ...] = ()


def default_template(name: str) -> Template:
    return Template(name, None, (Step(DEFAULT_STEP, 1, None),), None)


class TemplatesError(ProblemsError):
    """An `approvals.toml` that cannot be used."""


def parse_templates(text: str, where: str) -> dict[str, Template]:
    """The templates of one file's text; raises `TemplatesError` naming `where`."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise TemplatesError([Problem(where, None, str(exc))]) from exc
    try:
        parsed = TemplatesFile.model_validate(raw)
    except ValidationError as exc:
        problems = [
            Problem(where, None, f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}")
            for e in exc.errors(include_url=False)
        ]
        raise TemplatesError(problems) from exc
    return {
        name: Template(
            name,
            model.description,
            tuple(Step(s.name, s.approvals, s.timeout_seconds) for s in model.steps),
            model.emergency_approval_seconds,
            model.request_schema,
            tuple(
                CatalogField(pointer, f.catalog, tuple(f.scope_params.items()))
                for pointer, f in model.catalog_fields.items()
            ),
        )
        for name, model in parsed.templates.items()
    }


def load_templates(folder: Path) -> dict[str, Template]:
    """A store folder's templates; {} when it has no `approvals.toml`."""
    path = folder / TEMPLATES_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise TemplatesError([Problem(str(path), None, f"cannot read: {exc.strerror}")]) from exc
    return parse_templates(text, str(path))


def read_request_schema(folder: Path, name: str) -> dict[str, Any]:
    """The JSON Schema `forms/<name>` of a store: an object, a valid draft 2020-12 schema of
    an object (the form instance); raises `TemplatesError`."""
    path = folder / FORMS_FOLDER / name
    schema = _read_json(path)
    if not isinstance(schema, dict):
        raise TemplatesError([Problem(str(path), None, "a request form is a JSON Schema object")])
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        problem = Problem(str(path), None, f"not a JSON Schema: {exc.message}")
        raise TemplatesError([problem]) from None
    if schema.get("type", "object") != "object":
        raise TemplatesError([Problem(str(path), None, 'a request form has "type": "object"')])
    return schema


def read_catalog(folder: Path, name: str) -> list[dict[str, Any]]:
    """The items of the catalog `catalogs/<name>.json` of a store; raises `TemplatesError`."""
    path = folder / CATALOGS_FOLDER / f"{name}.json"
    data = _read_json(path)
    items = data.get("items") if isinstance(data, dict) else None
    if not isinstance(items, list) or len(items) > MAX_CATALOG_ITEMS:
        shape = f'a catalog is {{"items": [...]}} with at most {MAX_CATALOG_ITEMS} items'
        raise TemplatesError([Problem(str(path), None, shape)])
    for n, item in enumerate(items):
        if not _catalog_item(item):
            shape = (
                f"items[{n}]: a string value; label, description, risk_level strings; "
                "scope an object of strings; retired a boolean"
            )
            raise TemplatesError([Problem(str(path), None, shape)])
    return items


def _catalog_item(item: object) -> bool:
    if not isinstance(item, dict) or not isinstance(item.get("value"), str):
        return False
    texts = ("label", "description", "risk_level")
    scope = item.get("scope", {})
    return (
        all(isinstance(item[k], str) for k in texts if k in item)
        and isinstance(scope, dict)
        and all(isinstance(v, str) for v in scope.values())
        and isinstance(item.get("retired", False), bool)
    )


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise TemplatesError([Problem(str(path), None, "no such file")]) from None
    except OSError as exc:
        raise TemplatesError([Problem(str(path), None, f"cannot read: {exc.strerror}")]) from exc
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise TemplatesError([Problem(str(path), None, f"not valid JSON: {exc}")]) from exc


def form_problems(folder: Path, templates: dict[str, Template]) -> list[Problem]:
    """Every problem of the request forms and catalogs the templates name."""
    problems: list[Problem] = []
    catalogs: set[str] = set()
    for template in templates.values():
        if template.request_schema is not None:
            try:
                read_request_schema(folder, template.request_schema)
            except TemplatesError as exc:
                problems.extend(exc.problems)
        catalogs.update(field.catalog for field in template.catalog_fields)
    for catalog in sorted(catalogs):
        try:
            read_catalog(folder, catalog)
        except TemplatesError as exc:
            problems.extend(exc.problems)
    return problems


def templates_problems(folders: list[Path]) -> list[Problem]:
    """Every problem of the stores' `approvals.toml` files and of the request forms and
    catalogs they name (for `bridge check` and start)."""
    problems: list[Problem] = []
    for folder in folders:
        try:
            problems.extend(form_problems(folder, load_templates(folder)))
        except TemplatesError as exc:
            problems.extend(exc.problems)
    return problems
