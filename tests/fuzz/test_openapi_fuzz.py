"""Schemathesis over each service's OpenAPI document, with a valid token: no input gives a
5xx, and every documented response matches its schema."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
)
from served import served

from tandem.auth import mint_token
from tandem_cli.broker import EmbeddedBroker

#: The role each service's writes need, so fuzzed writes get past authorization.
ROLE = {"incidents": "owner", "changes": "owner", "deployments": "pipeline",
        "dashboard": "viewer", "catalog": "owner", "notifier": "manager"}


@schemathesis.check
def errors_are_problems(ctx: object, response: schemathesis.Response,
                        case: schemathesis.Case) -> bool | None:
    """Every refusal is an RFC 9457 problem (contract section 3); PagerDuty's own ingest
    keeps PagerDuty's error shape for the monitors that speak it."""
    if response.status_code >= 400 and not case.path.startswith("/v2/"):
        content_type = response.headers.get("content-type", [""])[0]
        assert content_type.startswith("application/problem+json"), (
            f"{response.status_code} answered as {content_type!r}")
        problem = response.json()
        assert problem["status"] == response.status_code and problem["title"]
    return None


#: The documents declare every error as application/problem+json, so the answers must match
#: the documented media type as well as the schema.
CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance,
          errors_are_problems]
pytestmark = pytest.mark.filterwarnings(
    # schemathesis draws from `random` inside its strategies; harmless for these runs.
    "ignore:Do not use the `random` module:hypothesis.errors.HypothesisDeprecationWarning")
FUZZ = settings(max_examples=25, deadline=None, derandomize=True, database=None,
                suppress_health_check=list(HealthCheck))


def _schema(name: str, broker: EmbeddedBroker,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[schemathesis.BaseSchema]:
    with served(name, broker, tmp_path_factory.mktemp(f"fuzz-{name}")) as (base, platform):
        token = mint_token(platform.jwt_secret, sub="fuzzer", role=ROLE[name],
                           ttl=timedelta(hours=1))
        schema = schemathesis.openapi.from_url(f"{base}/openapi.json")
        schema.config.update(headers={"Authorization": f"Bearer {token}"}, base_url=base)
        yield schema


@pytest.fixture(scope="module")
def incidents_api(broker: EmbeddedBroker,
                  tmp_path_factory: pytest.TempPathFactory) -> Iterator[schemathesis.BaseSchema]:
    yield from _schema("incidents", broker, tmp_path_factory)


@pytest.fixture(scope="module")
def changes_api(broker: EmbeddedBroker,
                tmp_path_factory: pytest.TempPathFactory) -> Iterator[schemathesis.BaseSchema]:
    yield from _schema("changes", broker, tmp_path_factory)


@pytest.fixture(scope="module")
def deployments_api(broker: EmbeddedBroker,
                    tmp_path_factory: pytest.TempPathFactory
                    ) -> Iterator[schemathesis.BaseSchema]:
    yield from _schema("deployments", broker, tmp_path_factory)


@pytest.fixture(scope="module")
def catalog_api(broker: EmbeddedBroker,
                tmp_path_factory: pytest.TempPathFactory) -> Iterator[schemathesis.BaseSchema]:
    yield from _schema("catalog", broker, tmp_path_factory)


@pytest.fixture(scope="module")
def notifier_api(broker: EmbeddedBroker,
                 tmp_path_factory: pytest.TempPathFactory) -> Iterator[schemathesis.BaseSchema]:
    yield from _schema("notifier", broker, tmp_path_factory)


@pytest.fixture(scope="module")
def dashboard_api(broker: EmbeddedBroker,
                  tmp_path_factory: pytest.TempPathFactory) -> Iterator[schemathesis.BaseSchema]:
    yield from _schema("dashboard", broker, tmp_path_factory)


def fuzz_every_operation(schema: schemathesis.BaseSchema, *, skip: str | None = None) -> int:
    """Run each operation's generated cases through the checks; the number of operations."""
    operations = [result.ok() for result in schema.get_all_operations()]
    assert operations, "the OpenAPI document lists no operations"
    fuzzed = 0
    for operation in operations:
        if skip is not None and operation.path.endswith(skip):
            continue

        @FUZZ
        @given(case=operation.as_strategy())
        def run(case: schemathesis.Case) -> None:
            # The gate's long poll may wait up to a minute by design; fuzz it without waiting.
            if case.query and "wait" in case.query:
                case.query["wait"] = 0
            case.call_and_validate(checks=CHECKS, timeout=30)

        run()
        fuzzed += 1
    return fuzzed


def test_incidents_api(incidents_api: schemathesis.BaseSchema) -> None:
    assert fuzz_every_operation(incidents_api) >= 10


def test_changes_api(changes_api: schemathesis.BaseSchema) -> None:
    assert fuzz_every_operation(changes_api) >= 10


def test_deployments_api(deployments_api: schemathesis.BaseSchema) -> None:
    assert fuzz_every_operation(deployments_api) >= 5


def test_catalog_api(catalog_api: schemathesis.BaseSchema) -> None:
    assert fuzz_every_operation(catalog_api) >= 7


def test_notifier_api(notifier_api: schemathesis.BaseSchema) -> None:
    assert fuzz_every_operation(notifier_api) >= 8


def test_dashboard_api(dashboard_api: schemathesis.BaseSchema) -> None:
    # The SSE stream never ends by design; the dashboard's own tests cover it.
    assert fuzz_every_operation(dashboard_api, skip="/stream") >= 1
