"""PagerDuty's Events API v2 answers, for the endpoints that speak it (monitor ingest in the
incidents service, change events in the deployments service): the same shapes PagerDuty's
clients already parse."""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError


def invalid(errors: list[str], status: str = "invalid event") -> JSONResponse:
    """PagerDuty's 400 answer."""
    return JSONResponse({"status": status, "message": "Event object is invalid",
                         "errors": errors}, status_code=400)


def describe(exc: ValidationError) -> list[str]:
    """A validation error as PagerDuty's ``errors`` lines (``'payload.summary': ...``)."""
    out = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "event"
        out.append(f"'{where}': {err['msg']}")
    return out


def inline_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The model's JSON Schema with its ``$defs`` inlined (for the OpenAPI request body)."""
    schema = model.model_json_schema(by_alias=True)
    defs = schema.pop("$defs", {})

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref", "")
            if ref.startswith("#/$defs/"):
                return inline(defs[ref.removeprefix("#/$defs/")])
            return {k: inline(v) for k, v in node.items()}
        if isinstance(node, list):
            return [inline(v) for v in node]
        return node

    return inline(schema)  # type: ignore[no-any-return]
