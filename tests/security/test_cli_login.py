"""``tandem login``: the device authorization flow against a real OIDC provider (Node's
``oidc-provider`` on loopback), and the token it prints works on a service as the person."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

from apps_under_test import running

from e2e.stack import TANDEM
from fuzz.served import served
from tandem_cli.broker import EmbeddedBroker
from tandem_testing.oidc_provider import OidcProvider, sign_in

INCIDENT = {"title": "Checkout fails", "service": "checkout", "environment": "production",
            "impact": 2, "urgency": 2}


async def test_tandem_login_prints_a_token_the_services_accept(broker: EmbeddedBroker,
                                                               tmp_path: Path) -> None:
    with OidcProvider(accounts={"pat": ["sre"]}) as provider:
        issuers = json.dumps([provider.config(roles={"sre": "practitioner"})])
        async with running("incidents", broker, tmp_path, auth_oidc_issuers=issuers) as svc:
            command = subprocess.Popen(
                [TANDEM, "login", "--issuer", provider.issuer], stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, text=True)
            try:
                assert command.stderr is not None
                shown = command.stderr.readline()
                match = re.search(r"open (\S+) and confirm the code (\S+)\.", shown)
                assert match, shown
                sign_in(match.group(1), "pat")  # the person, in a browser
                out, err = command.communicate(timeout=60)
            finally:
                if command.poll() is None:
                    command.kill()
                    command.communicate()
            assert command.returncode == 0, err
            token = out.strip()
            headers = {"Authorization": f"Bearer {token}"}
            r = await svc.client.post("/api/v1/incidents", json=INCIDENT, headers=headers)
            assert r.status_code == 201, r.text
            timeline = await svc.client.get(f"/api/v1/incidents/{r.json()['id']}/timeline",
                                            headers=headers)
            assert timeline.json()["items"][0]["actor"] == "pat"

        # `tandem whoami` shows the role and issuer a service maps the person's token to
        # (the token itself carries groups, not a role).
        with served("incidents", broker, tmp_path / "served", auth_oidc_issuers=issuers) as (
                url, _):
            shown = subprocess.run(
                [TANDEM, "whoami", "--json"], capture_output=True, text=True, timeout=60,
                env={**os.environ, "TANDEM_TOKEN": token, "TANDEM_URL_INCIDENTS": url,
                     "TANDEM_PROFILE": "", "HOME": str(tmp_path)})
        me = json.loads(shown.stdout)
        assert (me["sub"], me["role"], me["issuer"]) == ("pat", "practitioner", provider.issuer)
        assert me["services"]["incidents"]["token"] == "accepted"
