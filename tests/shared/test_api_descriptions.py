"""Every service's API reference explains itself: each field of each schema and each parameter
says what it means, and each field a client sends and each query parameter shows a realistic
example, so a reader of ``/docs`` never meets a bare name."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from tests.security.apps_under_test import ALL, build_app, platform_for


def _openapi(name: str, var_dir: Path) -> dict[str, Any]:
    # The document is built from the routes alone: no lifespan, so no broker is reached.
    broker = SimpleNamespace(bootstrap="127.0.0.1:9")
    platform = platform_for(broker, var_dir, log_level="WARNING")  # type: ignore[arg-type]
    url = None if name == "dashboard" else f"sqlite+aiosqlite:///{var_dir / f'{name}.db'}"
    return build_app(name, platform, url).openapi()  # type: ignore[no-any-return]


def _ref_name(ref: str) -> str:
    return ref.rsplit("/", 1)[-1]


def _refs(node: Any) -> set[str]:
    """The component schemas ``node`` names, directly or nested."""
    found: set[str] = set()
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            found.add(_ref_name(node["$ref"]))
        for value in node.values():
            found |= _refs(value)
    elif isinstance(node, list):
        for value in node:
            found |= _refs(value)
    return found


def _sent_schemas(doc: dict[str, Any]) -> set[str]:
    """The component schemas a client sends: request bodies and everything they contain."""
    schemas = doc.get("components", {}).get("schemas", {})
    todo: set[str] = set()
    for operations in doc["paths"].values():
        for operation in operations.values():
            todo |= _refs(operation.get("requestBody", {}))
    seen: set[str] = set()
    while todo:
        name = todo.pop()
        if name in seen or name not in schemas:
            continue
        seen.add(name)
        todo |= _refs(schemas[name])
    return seen


def _has_example(node: dict[str, Any]) -> bool:
    schema = node.get("schema", {})
    return any(n.get("examples") or "example" in n for n in (node, schema))


def _missing(doc: dict[str, Any]) -> list[str]:
    missing: list[str] = []
    for path, operations in doc["paths"].items():
        for method, operation in operations.items():
            for parameter in operation.get("parameters", []):
                where = f"{method.upper()} {path} {parameter['in']} parameter {parameter['name']}"
                schema = parameter.get("schema", {})
                if not (parameter.get("description") or schema.get("description")):
                    missing.append(f"{where}: no description")
                if parameter["in"] == "query" and not _has_example(parameter):
                    missing.append(f"{where}: no example")
    sent = _sent_schemas(doc)
    for name, schema in doc.get("components", {}).get("schemas", {}).items():
        for field, prop in schema.get("properties", {}).items():
            if not str(prop.get("description", "")).strip():
                missing.append(f"schema {name}.{field}: no description")
            if name in sent and not _has_example(prop):
                missing.append(f"schema {name}.{field} (sent by clients): no example")
    return missing


@pytest.mark.parametrize("name", ALL)
def test_every_field_and_parameter_is_described_with_examples_for_what_clients_send(
    name: str, tmp_path: Path
) -> None:
    doc = _openapi(name, tmp_path)
    assert doc["paths"], "the service documents no operation"
    missing = _missing(doc)
    assert not missing, f"{name}: {len(missing)} undocumented:\n" + "\n".join(missing)
