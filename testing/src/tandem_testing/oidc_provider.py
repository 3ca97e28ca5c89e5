"""A real OpenID Connect provider for the tests: ``testing/oidc-provider`` (panva's
``oidc-provider`` from the npm registry, pinned in its package-lock) run by Node on loopback.

``make oidc-provider`` installs it (``make test`` depends on it). People sign in on its
development login page (any password); :func:`sign_in` does what a person's browser does
there, for the device flow's verification page.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
from html import unescape
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import httpx

PROVIDER_DIR = Path(__file__).resolve().parents[2] / "oidc-provider"


class OidcProvider:
    """The provider as a process; ``accounts`` maps each login to its ``groups``."""

    def __init__(self, *, accounts: dict[str, list[str]],
                 redirect_uris: list[str] | None = None) -> None:
        self.accounts = accounts
        self.redirect_uris = redirect_uris or []
        self.issuer = ""
        self._process: subprocess.Popen[str] | None = None

    def __enter__(self) -> OidcProvider:
        node = shutil.which("node")
        if node is None or not (PROVIDER_DIR / "node_modules" / "oidc-provider").exists():
            raise RuntimeError("the test OIDC provider is not installed: make oidc-provider")
        env = {**os.environ, "PORT": "0", "REDIRECT_URIS": ",".join(self.redirect_uris),
               "OIDC_ACCOUNTS": json.dumps({k: {"groups": v} for k, v in self.accounts.items()})}
        self._process = subprocess.Popen([node, "provider.mjs"], cwd=PROVIDER_DIR, env=env,
                                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                         text=True, start_new_session=True)
        assert self._process.stdout is not None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            line = self._process.stdout.readline()
            if not line:
                break
            if line.startswith("{"):
                self.issuer = json.loads(line)["issuer"]
                return self
        self.__exit__()
        raise RuntimeError("the test OIDC provider did not start")

    def __exit__(self, *exc: object) -> None:
        if self._process is None:
            return
        if self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)
            try:
                self._process.wait(10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        if self._process.stdout is not None:
            self._process.stdout.close()

    def config(self, **fields: Any) -> dict[str, Any]:
        """Its entry for ``TANDEM_AUTH_OIDC_ISSUERS``: groups to roles as ``fields`` say."""
        return {"issuer": self.issuer, "audience": "tandem", "roles_claim": "groups",
                "subject_claim": "preferred_username", **fields}


_FORM = re.compile(r"<form[^>]*action=\"([^\"]*)\"[^>]*>(.*?)</form>", re.S | re.I)
_INPUT = re.compile(r"<input[^>]*>", re.I)
_ATTR = re.compile(r"(\w+)=\"([^\"]*)\"")


def _forms(page: httpx.Response) -> list[tuple[str, dict[str, str]]]:
    forms = []
    for action, body in _FORM.findall(page.text):
        fields: dict[str, str] = {}
        for tag in _INPUT.findall(body):
            attrs = dict(_ATTR.findall(tag))
            if "name" in attrs:
                fields[attrs["name"]] = unescape(attrs.get("value", ""))
        forms.append((urljoin(str(page.url), unescape(action)), fields))
    return forms


def sign_in(verification_uri_complete: str, login: str) -> None:
    """Confirm a device code and sign in as ``login``, as a person does in a browser: the
    confirmation form, then the login form, posted with the provider's cookies."""
    with httpx.Client(follow_redirects=True, timeout=10) as browser:
        page = browser.get(verification_uri_complete)
        for _ in range(6):
            forms = _forms(page)
            if not forms:
                break
            action, fields = forms[0]
            if "login" in fields:
                fields.update(login=login, password="any")
            if "confirm" in fields:
                fields["confirm"] = "yes"
            page = browser.post(action, data=fields)
            if "success" in page.text.lower() or "signed in" in page.text.lower():
                return
        raise AssertionError(f"the device sign-in did not finish: {page.text[:300]}")
