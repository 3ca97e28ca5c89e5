"""The settings and checks the integrations rest on: routing keys shared with the incidents
service by default, the environment map, repository names, and the senders' signatures."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from pydantic import ValidationError

from deployments.config import DeploymentsSettings
from deployments.webhooks import github_signature_valid, gitlab_token_valid
from tandem.vocabulary import repository_name


def test_change_event_routing_keys_default_to_the_monitors_keys(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TANDEM_INCIDENTS_ROUTING_KEYS", "k1=api,k2=web@staging")
    monkeypatch.delenv("TANDEM_DEPLOYMENTS_ROUTING_KEYS", raising=False)
    assert DeploymentsSettings().routes() == {"k1": ("api", "production"),
                                              "k2": ("web", "staging")}
    monkeypatch.setenv("TANDEM_DEPLOYMENTS_ROUTING_KEYS", "k3=shop")
    assert DeploymentsSettings().routes() == {"k3": ("shop", "production")}


def test_the_environment_map_is_configurable_and_checked() -> None:
    default = DeploymentsSettings()
    assert [default.environment_of(n) for n in ("production", "Prod", "live", "QA", "dev")] == [
        "production", "production", "production", "testing", "development"]
    assert default.environment_of("github-pages") is None
    custom = DeploymentsSettings(environment_map="eu-prod=production")
    assert custom.environment_of("EU-Prod") == "production"
    assert custom.environment_of("prod") is None
    with pytest.raises(ValidationError):
        DeploymentsSettings(environment_map="prod=prodution")


@pytest.mark.parametrize("written", [
    "github.com/acme/payments", "https://github.com/Acme/Payments.git",
    "git@github.com:acme/payments.git", "https://github.com/acme/payments/"])
def test_a_repository_is_one_name_however_it_is_written(written: str) -> None:
    assert repository_name(written) == "github.com/acme/payments"


def test_github_signature_is_the_bodys_hmac_and_nothing_else() -> None:
    body = b'{"zen": "Design for failure."}'
    good = "sha256=" + hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    assert github_signature_valid("s3cret", body, good)
    assert not github_signature_valid("s3cret", body + b"\n", good)
    assert not github_signature_valid("other", body, good)
    assert not github_signature_valid("s3cret", body, good.replace("sha256=", "sha1="))
    assert not github_signature_valid("s3cret", body, None)
    # No secret configured: nothing is accepted, not even an HMAC of the empty key.
    empty = "sha256=" + hmac.new(b"", body, hashlib.sha256).hexdigest()
    assert not github_signature_valid("", body, empty)


def test_gitlab_token_must_match_and_be_configured() -> None:
    assert gitlab_token_valid("t0ken", "t0ken")
    assert not gitlab_token_valid("t0ken", "t0ken ")
    assert not gitlab_token_valid("", "")
    assert not gitlab_token_valid("t0ken", None)
