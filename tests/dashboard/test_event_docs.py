"""docs/events/ is generated from the code; it must not drift from it."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import yaml
from jsonschema import Draft202012Validator

ROOT = Path(__file__).resolve().parents[2]


def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_event_docs",
                                                  ROOT / "tools" / "gen_event_docs.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("gen_event_docs", module)
    spec.loader.exec_module(module)
    return module


def test_committed_event_docs_match_what_the_code_generates() -> None:
    gen = generator()
    files, _ = gen.render()
    problems = gen.differences(files)
    assert problems == [], (
        "docs/events is out of date with the code; run `python tools/gen_event_docs.py` "
        f"and commit the result: {problems}")
    document = yaml.safe_load(files[Path("asyncapi.yaml")])
    assert document["asyncapi"] == "3.0.0"
    addresses = {c["address"] for c in document["channels"].values()}
    assert {"tandem.incidents", "tandem.changes", "tandem.deployments",
            "tandem.incidents.dlq"} <= addresses
    # Every message points at a schema file that exists and describes that very type.
    for name, message in document["components"]["messages"].items():
        if name == "deadLetter":
            continue
        schema = json.loads(files[Path(message["payload"]["$ref"].removeprefix("./"))])
        Draft202012Validator.check_schema(schema)
        assert schema["properties"]["type"]["const"] == name
        assert schema["properties"]["specversion"]["const"] == "1.0"
        assert {"id", "source", "type", "subject", "sequence", "data"} <= set(schema["required"])


def test_a_service_without_an_events_module_is_skipped_with_a_message() -> None:
    described = generator().describe_service("no_such_tandem_service")
    assert "no_such_tandem_service.events" in described["skipped"]
