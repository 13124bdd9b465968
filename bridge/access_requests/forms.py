"""Request forms (ARAP's `request_schema_url`) and catalogs (the ARAP Catalog profile), as
the embedded service keeps them.

A template of a store's `approvals.toml` may name a request form, a JSON Schema of the
store's `forms/` folder (`request_schema`), and the fields of that form whose values come
from catalogs of the store's `catalogs/` folder (`catalog_fields`). Its requestable denials
then carry `request_schema_url` (and `request_catalogs_url`, `urls`), and:

- the form instance of an item (`form_instance`) is what the submission adds to what was
  denied: its context members other than the authorization-relevant ones and ARAP's own,
  then `requested_access`, the top level's and then the item's (a later member replaces an
  earlier one): the Catalog profile's form data instance, spread over both objects;
- an item is requestable only with a form instance that validates against the schema and
  whose catalog-backed values are items of their catalog, not retired, in the scope the
  instance's other fields give (`problems`; the service refuses with `FormInvalid`);
- approvers are shown each field in the schema's words and the catalog's labels, and
  whether the form still holds now (`shown`): a catalog item retired since the submission
  is a problem, and such an item is not approved.

The schema, the Catalogs Document and the catalogs are served to the store's requesters
(`form_routes`). A form or catalog that cannot be read refuses its submissions (500) until
it is fixed; `bridge check` names what is wrong with it.
"""

from __future__ import annotations

import base64
import json
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from ..approval_templates import (
    CATALOGS_FOLDER,
    FORMS_FOLDER,
    TemplatesError,
    read_catalog,
    read_request_schema,
)
from ..rar import pointers
from .binding import ARAP_MACHINERY
from .problems import BadRequest, NotRequestable, UnknownTask, status_problem
from .templates import CatalogField, TemplateCatalog

log = logging.getLogger("bridge.access_requests")

MAX_PROBLEMS = 5
DEFAULT_PAGE = 20
MAX_PAGE = 100
CATALOG_ITEM_MEMBERS = ("value", "label", "description", "risk_level", "owner")
_SHOWN_CHARS = 60


class FormInvalid(NotRequestable):
    """A submission without what its denial's request form requires: not requestable."""


@dataclass(frozen=True)
class RequestForm:
    template: str
    schema: dict[str, Any]
    validator: Draft202012Validator
    fields: tuple[CatalogField, ...]
    catalogs: dict[str, list[dict[str, Any]]]  # catalog name → its items


def form_instance(
    context: Mapping[str, Any] | None, members: list[str], *accesses: object
) -> dict[str, Any]:
    """What a submission adds to the denied request: context members that are neither
    authorization-relevant (`members`) nor ARAP's own, then each `requested_access`."""
    instance = {
        name: value
        for name, value in (context or {}).items()
        if name not in members and name not in ARAP_MACHINERY
    }
    for access in accesses:
        if isinstance(access, dict):
            instance.update(access)
    return instance


def resolve(instance: object, pointer: str) -> tuple[bool, Any]:
    """The value a JSON Pointer (RFC 6901) names in `instance`: (found, value). A pointer
    that is not one (a form or catalog file's mistake) names nothing."""
    try:
        return pointers.resolve(instance, pointers.parse_pointer(pointer))
    except pointers.PointerSyntaxError:
        return False, None


class RequestForms:
    """Each store's request forms and catalogs, read again when their files change."""

    def __init__(self, templates: TemplateCatalog, *, public_url: str, api_url: str) -> None:
        """`public_url`: the base of the stores' PDP identifiers; `api_url`: where the
        access request endpoints are (`<public_url>/access/v1`)."""
        self._templates = templates
        self._base = public_url.rstrip("/")
        self._api = api_url.rstrip("/")
        self._files: dict[Path, tuple[tuple[int, int], Any]] = {}

    # -- where a store's forms are --------------------------------------------------------

    def store_of(self, pdp: str) -> str | None:
        """The store's name in the forms' URLs (`default`, or a named store's)."""
        if pdp == self._base:
            return "default"
        prefix = self._base + "/stores/"
        return pdp[len(prefix) :] if pdp.startswith(prefix) else None

    def pdp_of(self, store: str) -> str:
        return self._base if store == "default" else f"{self._base}/stores/{store}"

    def urls(self, pdp: str, template: str) -> dict[str, str]:
        """The members a requestable denial of `template` adds to `access_request`."""
        found = self._templates.template(pdp, template)
        store = self.store_of(pdp)
        if found.request_schema is None or store is None:
            return {}
        url = f"{self._api}/forms/{quote(store, safe='')}/{quote(template, safe='')}"
        out = {"request_schema_url": url}
        if found.catalog_fields:
            out["request_catalogs_url"] = url + "/catalogs"
        return out

    # -- reading ------------------------------------------------------------------------

    def form(self, pdp: str, template: str) -> RequestForm | None:
        """The template's request form; None when it has none. A form or catalog that
        cannot be read is a 500 problem: nothing is filed against what cannot be checked."""
        found = self._templates.template(pdp, template)
        folder = self._templates.folder(pdp)
        if found.request_schema is None or folder is None:
            return None
        name = found.request_schema

        def read() -> tuple[dict[str, Any], Draft202012Validator]:
            schema = read_request_schema(folder, name)
            checker = Draft202012Validator.FORMAT_CHECKER
            return schema, Draft202012Validator(schema, format_checker=checker)

        try:
            schema, validator = self._cached(folder / FORMS_FOLDER / name, read)
            catalogs = {f.catalog: self._catalog(folder, f.catalog) for f in found.catalog_fields}
        except TemplatesError as exc:
            log.error("the request form of %s in %s cannot be read: %s", template, pdp, exc)
            raise status_problem(500, "this template's request form cannot be read") from None
        return RequestForm(found.name, schema, validator, found.catalog_fields, catalogs)

    def _catalog(self, folder: Path, name: str) -> list[dict[str, Any]]:
        path = folder / CATALOGS_FOLDER / f"{name}.json"
        items: list[dict[str, Any]] = self._cached(path, lambda: read_catalog(folder, name))
        return items

    def _cached(self, path: Path, read: Callable[[], Any]) -> Any:
        try:
            stat = os.stat(path)
            stamp = (stat.st_mtime_ns, stat.st_size)
        except OSError:
            stamp = (-1, -1)
        seen = self._files.get(path)
        if seen is not None and seen[0] == stamp:
            return seen[1]
        value = read()
        self._files[path] = (stamp, value)
        return value

    # -- checking -----------------------------------------------------------------------

    def problems(self, form: RequestForm, instance: dict[str, Any]) -> list[str]:
        """What keeps `instance` from being the form's (at most `MAX_PROBLEMS`, in words)."""
        found = [
            described(error)
            for error in sorted(
                form.validator.iter_errors(instance),
                key=lambda e: [str(p) for p in e.absolute_path],
            )
        ]
        for field in form.fields:
            found += _catalog_problems(form, field, instance)
        return found[:MAX_PROBLEMS]

    def check(self, form: RequestForm, instance: dict[str, Any], where: str) -> None:
        problems = self.problems(form, instance)
        if problems:
            raise FormInvalid(
                f"{where} needs the request form of template {form.template} "
                f"(request_schema_url): " + "; ".join(problems)
            )

    def shown(self, form: RequestForm, instance: dict[str, Any]) -> dict[str, Any]:
        """The form as approvers read it: each field of the schema the instance fills (or
        the schema requires), with its title and, for a catalog value, the item's label;
        and what keeps the form from holding now."""
        properties = form.schema.get("properties")
        required = form.schema.get("required") or []
        fields = []
        for name, spec in (properties if isinstance(properties, dict) else {}).items():
            pointer = "/" + name.replace("~", "~0").replace("/", "~1")
            present, value = resolve(instance, pointer)
            if not present and name not in required:
                continue
            title = spec.get("title") if isinstance(spec, dict) else None
            entry: dict[str, Any] = {"name": name, "title": title or name}
            if present:
                entry["value"] = value
                label = _label(form, pointer, value)
                if label is not None:
                    entry["label"] = label
            fields.append(entry)
        return {
            "template": form.template,
            "fields": fields,
            "problems": self.problems(form, instance),
        }

    # -- serving ------------------------------------------------------------------------

    def schema_document(self, store: str, template: str) -> dict[str, Any]:
        form = self.form(self.pdp_of(store), template)
        if form is None:
            raise UnknownTask("no such request form")
        return form.schema

    def catalogs_document(self, store: str, template: str) -> dict[str, Any]:
        """The Catalog profile's Catalogs Document of a template's form."""
        form = self.form(self.pdp_of(store), template)
        if form is None or not form.fields:
            raise UnknownTask("no such catalogs document")
        fields: dict[str, Any] = {}
        for field in form.fields:
            reference: dict[str, Any] = {
                "endpoint": f"{self._api}/catalogs/{quote(store, safe='')}/"
                f"{quote(field.catalog, safe='')}",
                "search_param": "q",
            }
            if field.scope_params:
                reference["scope_params"] = dict(field.scope_params)
            fields[field.pointer] = reference
        return {"fields": fields}

    def search(self, store: str, catalog: str, params: Mapping[str, str]) -> dict[str, Any]:
        """A Catalog Endpoint's answer: the catalog's items (none retired) whose value,
        label or description holds `q`, in the scope the scope parameters give, one page
        (`cursor`, `limit`) at a time. Only catalogs a template of the store names are
        served."""
        pdp = self.pdp_of(store)
        folder = self._templates.folder(pdp)
        fields = [
            field
            for template in self._templates.templates_of(pdp).values()
            for field in template.catalog_fields
            if field.catalog == catalog
        ]
        if folder is None or not fields:
            raise UnknownTask("no such catalog")
        scope_names = {param for field in fields for param, _ in field.scope_params}
        try:
            items = self._catalog(folder, catalog)
        except TemplatesError as exc:
            log.error("the catalog %s of %s cannot be read: %s", catalog, store, exc)
            raise status_problem(500, "this catalog cannot be read") from None
        query = params.get("q", "").strip().casefold()
        offset, limit = _cursor(params.get("cursor")), _limit(params.get("limit"))
        chosen = [
            item
            for item in items
            if not item.get("retired")
            and all(
                (item.get("scope") or {}).get(name) == params[name]
                for name in scope_names
                if name in params
            )
            and (not query or any(query in str(item.get(k, "")).casefold() for k in _SEARCHED))
        ]
        page = chosen[offset : offset + limit]
        out: dict[str, Any] = {
            "items": [{k: item[k] for k in CATALOG_ITEM_MEMBERS if k in item} for item in page],
            "total": len(chosen),
        }
        if offset + limit < len(chosen):
            out["next_cursor"] = _encode_cursor(offset + limit)
        return out


_SEARCHED = ("value", "label", "description")


def _catalog_problems(form: RequestForm, field: CatalogField, instance: object) -> list[str]:
    present, value = resolve(instance, field.pointer)
    if not present:
        return []  # whether it must be there is the schema's to say
    candidates = form.catalogs.get(field.catalog, [])
    for param, pointer in field.scope_params:
        known, scope = resolve(instance, pointer)
        if not known:
            return [f"{field.pointer}: needs {pointer} first (it narrows the catalog)"]
        candidates = [i for i in candidates if (i.get("scope") or {}).get(param) == scope]
    item = next((i for i in candidates if i["value"] == value), None)
    if item is None:
        return [f"{field.pointer}: {_show(value)} is not in the catalog {field.catalog}"]
    if item.get("retired"):
        return [f"{field.pointer}: {_show(value)} is retired from the catalog {field.catalog}"]
    return []


def _label(form: RequestForm, pointer: str, value: object) -> str | None:
    for field in form.fields:
        if field.pointer == pointer:
            for item in form.catalogs.get(field.catalog, []):
                if item["value"] == value and isinstance(item.get("label"), str):
                    return str(item["label"])
    return None


def described(error: ValidationError) -> str:
    """A schema failure in words: where (a JSON Pointer into the form) and what."""
    path = "".join(f"/{part}" for part in error.absolute_path)
    where = path or "the form"
    if error.validator == "required" and isinstance(error.instance, dict):
        wanted = error.validator_value if isinstance(error.validator_value, list) else []
        missing = [n for n in wanted if n not in error.instance]
        return "; ".join(f"{path}/{name} is required" for name in missing)
    if error.validator == "type":
        return f"{where} must be of type {_show(error.validator_value)}"
    if error.validator in ("enum", "const"):
        allowed = error.validator_value if error.validator == "enum" else [error.validator_value]
        return f"{where} must be one of {_show(allowed)}"
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        known = (error.schema.get("properties") or {}) if isinstance(error.schema, dict) else {}
        extra = [name for name in error.instance if name not in known]
        return f"{where} does not take {_show(extra)}"
    return f"{where} does not hold the form's {error.validator} rule"


def _show(value: object) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= _SHOWN_CHARS else text[: _SHOWN_CHARS - 3] + "..."


def _cursor(raw: str | None) -> int:
    if raw is None:
        return 0
    try:
        offset = int(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode("ascii"))
    except (ValueError, UnicodeDecodeError):
        raise BadRequest("cursor is not one this catalog gave") from None
    if offset < 0:
        raise BadRequest("cursor is not one this catalog gave")
    return offset


def _encode_cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(str(offset).encode("ascii")).rstrip(b"=").decode("ascii")


def _limit(raw: str | None) -> int:
    if raw is None:
        return DEFAULT_PAGE
    if not raw.isdigit() or int(raw) < 1:
        raise BadRequest("limit must be a positive integer")
    return min(int(raw), MAX_PAGE)  # clamped, as the profile allows
