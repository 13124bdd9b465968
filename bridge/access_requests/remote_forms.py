"""Request forms at a remote PDP's access request service (ARAP's `request_schema_url`, the
ARAP Catalog profile), as the token endpoint meets them when it files for a denied token
request.

The token endpoint files with what the token request gave: the evaluations' context, and
nothing a person fills in. A denial that points at a request form is therefore filed only
when that is a valid instance of the form (ARAP §6: a PEP that cannot supply what the
schema requires does not submit, and never makes values up):

- `request_catalogs_url` without `request_schema_url` is refused (the Catalog profile
  requires both);
- the schema, the Catalogs Document and every catalog `endpoint` in it must be on a trusted
  origin (the remote PDP's, or its metadata's `access_request_endpoint`'s: ARAP §2), since
  the remote PDP's credentials go with every read; anything else is refused unread;
- the instance (the submission's `context` and `requested_access`, as in the embedded
  service) is validated against the schema; a catalog-backed field it holds is looked up at
  its Catalog Endpoint (the value as the search term, the scope parameters from the
  instance) and must be among the items that come back (the Catalog profile: no value the
  catalog did not give is submitted).

An instance that is not the form's is `FormInputRequired`: nothing is filed, and the
deferred response answers as for a plain denial. A form that cannot be read or used
refuses to file as any other failed submission does (`AccessRequestRefused`,
`AccessRequestUnavailable`, `UnusableAnswer`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import urlencode

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from ..authzen.models import JSONObject
from .filing import FormInputRequired
from .forms import MAX_PROBLEMS, described, resolve
from .remote_client import AccessRequestRefused, ARSClient, TrustedOrigins, UnusableAnswer

MAX_CATALOG_PAGES = 5
_CATALOG_LIMIT = "100"


class RemoteForms:
    def __init__(self, client: ARSClient) -> None:
        self._client = client

    async def check(
        self, requests: Iterable[JSONObject], body: JSONObject, origins: TrustedOrigins
    ) -> None:
        """Whether `body` (the submission) may be filed for denials whose `access_request`
        objects are `requests`; raises when it may not (see the module)."""
        instance: dict[str, Any] = {**(body.get("context") or {})}
        if isinstance(body.get("requested_access"), dict):
            instance.update(body["requested_access"])
        seen: set[tuple[object, object]] = set()
        for access in requests:
            schema_url, catalogs_url = (
                access.get("request_schema_url"),
                access.get("request_catalogs_url"),
            )
            if catalogs_url is not None and schema_url is None:
                raise AccessRequestRefused(
                    "a denial names request_catalogs_url without request_schema_url", 400
                )
            if schema_url is None or (schema_url, catalogs_url) in seen:
                continue
            seen.add((schema_url, catalogs_url))
            await self._validate(await self._read(schema_url, origins, "request form"), instance)
            if catalogs_url is not None:
                catalogs = await self._read(catalogs_url, origins, "catalogs document")
                await self._catalog_values(catalogs, instance, origins)

    async def _validate(self, schema: object, instance: dict[str, Any]) -> None:
        if not isinstance(schema, dict):
            raise UnusableAnswer("the request form is not a JSON Schema object")
        try:
            Draft202012Validator.check_schema(schema)
        except SchemaError as exc:
            raise UnusableAnswer(f"the request form is not a JSON Schema: {exc.message}") from None
        validator = Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
        errors = sorted(
            validator.iter_errors(instance), key=lambda e: [str(p) for p in e.absolute_path]
        )
        if errors:
            problems = "; ".join(described(e) for e in errors[:MAX_PROBLEMS])
            raise FormInputRequired(
                f"the denial needs a request form this token request cannot fill: {problems}", 400
            )

    async def _catalog_values(
        self, document: object, instance: dict[str, Any], origins: TrustedOrigins
    ) -> None:
        fields = document.get("fields") if isinstance(document, dict) else None
        if not isinstance(fields, dict):
            raise UnusableAnswer("the catalogs document has no fields object")
        for pointer, reference in fields.items():
            present, value = (
                resolve(instance, pointer) if isinstance(pointer, str) else (False, None)
            )
            if not present:
                continue  # whether it must be there is the schema's to say
            if not isinstance(reference, dict) or not origins.allows(reference.get("endpoint")):
                raise AccessRequestRefused(
                    f"the catalog of {pointer} is not on a trusted origin", 400
                )
            if not await self._in_catalog(reference, value, instance):
                raise FormInputRequired(
                    f"{pointer}: the catalog did not give this value; it cannot be filed", 400
                )

    async def _in_catalog(
        self, reference: dict[str, Any], value: object, instance: dict[str, Any]
    ) -> bool:
        search = reference.get("search_param", "q")
        value_path = reference.get("value_path", "/value")
        scopes = reference.get("scope_params") or {}
        if not isinstance(value, str) or not isinstance(scopes, dict):
            return False
        params = {str(search): value, "limit": _CATALOG_LIMIT}
        for name, pointer in scopes.items():
            known, scope = resolve(instance, pointer) if isinstance(pointer, str) else (False, None)
            if not known or not isinstance(scope, str):
                return False  # the profile: never ask before every scope field has a value
            params[str(name)] = scope
        cursor: str | None = None
        for _ in range(MAX_CATALOG_PAGES):
            query = {**params, **({"cursor": cursor} if cursor else {})}
            base = str(reference["endpoint"])
            url = base + ("&" if "?" in base else "?") + urlencode(query)
            page = await self._read(url, None, "catalog")
            items = page.get("items") if isinstance(page, dict) else None
            if not isinstance(items, list):
                raise UnusableAnswer("a catalog answered without items")
            if any(
                isinstance(item, dict) and resolve(item, str(value_path)) == (True, value)
                for item in items
            ):
                return True
            cursor = page.get("next_cursor") if isinstance(page, dict) else None
            if not isinstance(cursor, str) or not cursor:
                return False
        return False

    async def _read(self, url: object, origins: TrustedOrigins | None, what: str) -> Any:
        """A JSON document read with the remote PDP's credentials; `origins` None: the URL
        was checked already."""
        if not isinstance(url, str) or (origins is not None and not origins.allows(url)):
            raise AccessRequestRefused(f"the denial's {what} is not on a trusted origin", 400)
        response = await self._client.send("GET", url, what)
        if response.status_code != 200:
            raise self._client.refusal(response, f"reading the {what}", url)
        return self._client.json(response, what)
