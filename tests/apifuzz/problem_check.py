"""Tandem's own schemathesis check, loaded by ``SCHEMATHESIS_HOOKS`` in the fuzz runs: every
refusal is an RFC 9457 problem (contract section 3); PagerDuty's own ingest keeps PagerDuty's
error shape for the monitors that speak it."""

from __future__ import annotations

import schemathesis


@schemathesis.check
def errors_are_problems(ctx: object, response: schemathesis.Response,
                        case: schemathesis.Case) -> bool | None:
    if response.status_code >= 400 and not case.path.startswith("/v2/"):
        content_type = response.headers.get("content-type", [""])[0]
        assert content_type.startswith("application/problem+json"), (
            f"{response.status_code} answered as {content_type!r}")
        problem = response.json()
        assert problem["status"] == response.status_code and problem["title"]
    return None
