"""RFC 9457 problem details: how every error reaches a client, and the one place that maps
domain errors (:mod:`tandem.errors`) to them.

``Problem`` is raised by the HTTP layer itself (authentication, a malformed cursor or body);
rules and operations raise domain errors, rendered here by kind.
"""

from __future__ import annotations

import logging
import math
import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from tandem.errors import DomainError

log = logging.getLogger("tandem.problems")

PROBLEM_MEDIA_TYPE = "application/problem+json"

_TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    412: "Precondition Failed",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Content",
    428: "Precondition Required",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


class Problem(Exception):
    """An error a client can act on, rendered as ``application/problem+json``.

    ``extra`` members (such as ``allowed`` for an illegal transition) are added to the body.
    """

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        title: str | None = None,
        type_: str | None = None,
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.title = title or _TITLES.get(status, "Error")
        self.type = type_ or "about:blank"
        self.errors = errors
        self.headers = headers
        self.extra = extra

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": self.type,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if self.errors is not None:
            body["errors"] = self.errors
        body.update(self.extra)
        return body


def domain_problem(error: DomainError) -> Problem:
    """The problem a domain error is answered with: its kind's status, its code, its members."""
    return Problem(error.status, error.detail, type_=f"urn:tandem:problem:{error.code}",
                   errors=error.errors, **error.members)


def problem_response(problem: Problem) -> JSONResponse:
    return JSONResponse(
        problem.body(),
        status_code=problem.status,
        media_type=PROBLEM_MEDIA_TYPE,
        headers=problem.headers,
    )


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # an echoed NaN must not break the answer that refuses it
    if isinstance(value, str):
        return value.encode("utf-8", "replace").decode("utf-8")
    if isinstance(value, int | float | bool) or value is None:
        return value
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return str(value)


def validation_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    out = []
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ())]
        out.append(
            {
                "field": ".".join(p for p in loc if p not in ("body", "query", "path", "header"))
                or ".".join(loc),
                "location": loc[0] if loc else None,
                "message": err.get("msg", "invalid"),
                "type": err.get("type"),
            }
        )
        # The whole body is not echoed back; a single field's value is.
        if len(loc) > 1 or (loc and loc[0] != "body"):
            out[-1]["input"] = _jsonable(err.get("input"))
    return out


#: The body of every error under ``/api/`` (RFC 9457, with Tandem's members), for OpenAPI.
PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "type": "object",
    "description": "RFC 9457 problem details. Members beyond these name what a client can do "
                   "next, such as `allowed` (legal transitions) or `current`.",
    "required": ["type", "title", "status"],
    "properties": {
        "type": {"type": "string", "description": "`urn:tandem:problem:<kind>` or about:blank"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "errors": {"type": "array", "items": {
            "type": "object",
            "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
            "additionalProperties": True}},
    },
    "additionalProperties": True,
}

_WHEN = {
    400: "The body is not JSON, or not the shape this operation takes.",
    401: "No valid bearer token.",
    403: "The token's role may not do this.",
    404: "No such resource.",
    409: "The resource's state does not allow it (see `allowed`), or it already exists.",
    412: "`If-Match` names another version than the stored one.",
    413: "The body is larger than the service accepts.",
    422: "A field is invalid (see `errors`).",
    503: "The database is unavailable; retry later.",
}


def _problem_codes(path: str, method: str, operation: dict[str, Any]) -> list[int]:
    codes = [422, 503]
    if operation.get("security"):
        codes += [401, 403]
    if "{" in path:
        codes.append(404)
    if method in ("post", "put", "patch"):
        codes += [400, 409, 413]
    elif any(p.get("in") == "query" for p in operation.get("parameters", [])):
        codes.append(400)  # a cursor or window this service did not issue, a naive time
    if method == "patch" or path.endswith("/transitions"):
        codes.append(412)
    return sorted(codes)


def document_problems(app: FastAPI) -> None:
    """Declare the problem responses of every ``/api/`` operation in the OpenAPI document, as
    ``application/problem+json`` (FastAPI's default declares its own 422 shape as JSON)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = build()
        schemas = schema.setdefault("components", {}).setdefault("schemas", {})
        schemas["Problem"] = PROBLEM_SCHEMA
        reference = {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}
        for path, operations in schema.get("paths", {}).items():
            if not path.startswith("/api/"):
                continue
            for method, operation in operations.items():
                responses = operation.setdefault("responses", {})
                for code in _problem_codes(path, method, operation):
                    responses[str(code)] = {"description": _WHEN[code], "content": reference}
                for code, response in responses.items():
                    # An operation's own refusal (a filter naming no resource, say) keeps its
                    # description and is a problem too.
                    if code.startswith(("4", "5")):
                        response["content"] = reference
        if "schemas/HTTPValidationError'" not in str(schema.get("paths")):
            schemas.pop("HTTPValidationError", None)
            schemas.pop("ValidationError", None)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _allowed_methods(request: Request) -> list[str]:
    """The methods the OpenAPI document gives the request's path (its templates matched)."""
    methods: set[str] = set()
    for template, operations in request.app.openapi().get("paths", {}).items():
        pattern = re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template))
        if re.fullmatch(pattern, request.url.path):
            methods |= {m.upper() for m in operations if m in _HTTP_METHODS}
    return sorted(methods)


_HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


def install_problem_handlers(app: FastAPI) -> None:
    """Render every error as a problem; an unexpected error becomes a bare 500, no trace.
    The OpenAPI document declares them so."""
    document_problems(app)

    @app.exception_handler(Problem)
    async def _problem(_: Request, exc: Problem) -> JSONResponse:
        return problem_response(exc)

    @app.exception_handler(DomainError)
    async def _domain(_: Request, exc: DomainError) -> JSONResponse:
        return problem_response(domain_problem(exc))

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = validation_errors(exc)
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5])
        return problem_response(
            Problem(
                422,
                f"The request is not valid: {detail}",
                type_="urn:tandem:problem:validation",
                errors=errors,
            )
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else _TITLES.get(exc.status_code, "")
        headers = dict(getattr(exc, "headers", None) or {})
        if exc.status_code == 405 and (allowed := _allowed_methods(request)):
            # Starlette names the methods of the first route of the path; a path served by
            # several routes (GET and POST apart) allows all of theirs.
            headers["Allow"] = ", ".join(allowed)
        return problem_response(Problem(exc.status_code, detail, headers=headers or None))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem_response(Problem(500, "An unexpected error occurred; it has been logged."))
