"""Each service's API documentation works with no internet, and its "Authorize" takes a token:
Swagger UI and ReDoc come from the service itself, every protected operation declares the bearer
scheme and its 401/403 problems, and a 405 names every method of its path."""

from __future__ import annotations

import re

import pytest
from apps_under_test import Running
from test_auth_matrix import PUBLIC, api_routes, required_roles

pytestmark = pytest.mark.asyncio(loop_scope="module")

#: An address a browser would fetch from the internet (a CDN, web fonts).
EXTERNAL = re.compile(r"""(?:src|href)=["']?(?:https?:)?//""")


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
async def test_the_docs_pages_load_everything_from_the_service(service: Running, page: str):
    html = await service.client.get(page)
    assert html.status_code == 200
    assert not EXTERNAL.search(html.text), EXTERNAL.search(html.text)
    assets = re.findall(r"""(?:src|href)=["']?(/docs/assets/[^"' >]+)""", html.text)
    assert assets, html.text[:500]
    for asset in assets:
        fetched = await service.client.get(asset)
        assert fetched.status_code == 200, asset
        assert len(fetched.content) > 1000, asset
    spec = await service.client.get("/openapi.json")
    assert spec.status_code == 200 and spec.json()["openapi"].startswith("3.")


async def test_every_protected_operation_declares_the_bearer_scheme(service: Running):
    schema = (await service.client.get("/openapi.json")).json()
    scheme = schema["components"]["securitySchemes"]["bearer"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    assert "tandem token mint" in scheme["description"]
    protected = 0
    for method, path, dependant in api_routes(service):
        operation = schema["paths"].get(path, {}).get(method.lower())
        if operation is None:  # docs pages and their files are not in the document
            assert path in PUBLIC or path.startswith("/docs"), (method, path)
            continue
        if dependant is not None and required_roles(dependant) is not None:
            protected += 1
            assert operation.get("security") == [{"bearer": []}], (method, path)
            assert {"401", "403"} <= set(operation["responses"]), (method, path)
        else:
            assert "security" not in operation, (method, path)
    assert protected >= 2


async def test_a_query_that_can_be_refused_documents_its_400(service: Running):
    schema = (await service.client.get("/openapi.json")).json()
    listed = [(p, o) for p, ops in schema["paths"].items() for m, o in ops.items()
              if m == "get" and any(q["name"] == "cursor" for q in o.get("parameters", []))]
    for path, operation in listed:
        assert "400" in operation["responses"], path
        bad = await service.client.get(path, params={"cursor": "not-one-we-issued"},
                                       headers=service.headers("owner"))
        if "{" not in path:
            assert bad.status_code == 400, (path, bad.text)


async def test_a_wrong_method_names_every_method_of_its_path(service: Running):
    schema = (await service.client.get("/openapi.json")).json()
    checked = 0
    for path, operations in schema["paths"].items():
        methods = {m.upper() for m in operations}
        if "{" in path or "DELETE" in methods or "TRACE" in methods:
            continue
        answer = await service.client.request("TRACE", path, headers=service.headers("owner"))
        assert answer.status_code == 405, (path, answer.status_code)
        assert set(answer.headers["allow"].split(", ")) == methods, (path, answer.headers)
        assert answer.headers["content-type"].startswith("application/problem+json")
        checked += 1
    assert checked >= 1
