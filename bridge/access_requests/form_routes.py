"""HTTP for the request forms and catalogs of the embedded service (`forms`), served to the
same requesters as `/access/v1/requests` (the default store's PEPs):

    GET /access/v1/forms/{store_name}/{template}          the JSON Schema
                                                          (`request_schema_url`)
    GET /access/v1/forms/{store_name}/{template}/catalogs the Catalogs Document
                                                          (`request_catalogs_url`)
    GET /access/v1/catalogs/{store_name}/{catalog}        a Catalog Endpoint: `q`, the
                                                          scope parameters, `cursor`, `limit`

`store_name` is `default` or a named store's name (the forms of every store are served
here, as every store's denials point at the one access request endpoint).

A catalog is an authorization boundary of its own (the Catalog profile): only
authenticated requesters read it, and only the catalogs a template of the store names are
served. Nothing is cacheable: a PEP reads a catalog again for each request it prepares.
Every refusal is a problem document, as on the other access request endpoints.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .auth import RequesterAuthenticator
from .forms import RequestForms
from .routes import API_PATH, NO_STORE, _Endpoint

FORMS_PATH = API_PATH + "/forms"
CATALOGS_PATH = API_PATH + "/catalogs"
FORM_PATHS = (FORMS_PATH, CATALOGS_PATH)
SCHEMA_MEDIA_TYPE = "application/schema+json"


def form_routes(forms: RequestForms, requesters: RequesterAuthenticator) -> list[Route]:
    async def schema(request: Request) -> Response:
        await requesters.identify(request)
        store, template = request.path_params["store_name"], request.path_params["template"]
        document = forms.schema_document(store, template)
        return JSONResponse(document, headers=NO_STORE, media_type=SCHEMA_MEDIA_TYPE)

    async def catalogs(request: Request) -> Response:
        await requesters.identify(request)
        store, template = request.path_params["store_name"], request.path_params["template"]
        return JSONResponse(forms.catalogs_document(store, template), headers=NO_STORE)

    async def catalog(request: Request) -> Response:
        await requesters.identify(request)
        store, name = request.path_params["store_name"], request.path_params["catalog"]
        params = dict(request.query_params)
        return JSONResponse(forms.search(store, name, params), headers=NO_STORE)

    return [
        Route(f"{FORMS_PATH}/{{store_name}}/{{template}}", _Endpoint(schema), methods=["GET"]),
        Route(
            f"{FORMS_PATH}/{{store_name}}/{{template}}/catalogs",
            _Endpoint(catalogs),
            methods=["GET"],
        ),
        Route(f"{CATALOGS_PATH}/{{store_name}}/{{catalog}}", _Endpoint(catalog), methods=["GET"]),
    ]
