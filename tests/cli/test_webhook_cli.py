"""``tandem webhook add|list|deliveries|redeliver`` against real notifier and incidents
processes, with a receiver on loopback that verifies every signature."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from standardwebhooks.webhooks import Webhook
from typer.testing import CliRunner, Result

from e2e.stack import Stack
from tandem_cli import build_app
from tandem_cli.broker import EmbeddedBroker

APP = build_app()


class Hook:
    """A loopback receiver in a thread: keeps each request's headers and body."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                hook.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait(self, count: int, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while len(self.received) < count:
            assert time.monotonic() < deadline, f"{len(self.received)} of {count} received"
            time.sleep(0.05)


@pytest.fixture(scope="module")
def stack(broker: EmbeddedBroker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    running = Stack(broker.bootstrap, tmp_path_factory.mktemp("webhook-cli"),
                    services=["incidents", "notifier"],
                    env={"TANDEM_NOTIFIER_ALLOW_LOOPBACK": "true",
                         "TANDEM_NOTIFIER_RETRY_BASE_S": "0.2"})
    running.start()
    yield running
    running.stop()


@pytest.fixture
def hook() -> Iterator[Hook]:
    receiver = Hook()
    yield receiver
    receiver.server.shutdown()


def run(stack: Stack, role: str, *args: str) -> Result:
    return CliRunner().invoke(APP, list(args), env=stack.cli_env(role))


def test_add_list_deliveries_and_redeliver(stack: Stack, hook: Hook) -> None:
    service = f"svc-{uuid.uuid4().hex[:8]}"
    added = run(stack, "manager", "webhook", "add", hook.url, "--service", service,
                "--type", "tandem.incident.created", "--min-priority", "2")
    assert added.exit_code == 0, added.output
    assert "not shown again" in added.stdout
    secret = next(line.split()[1] for line in added.stdout.splitlines()
                  if line.startswith("secret"))
    number = next(line.split()[1] for line in added.stdout.splitlines()
                  if line.startswith("number"))

    created = run(stack, "practitioner", "incident", "create", "--title", "Checkout fails",
                  "--service", service, "--impact", "1", "--urgency", "1", "--json")
    assert created.exit_code == 0, created.output
    incident = json.loads(created.stdout)
    hook.wait(1)
    headers, body = hook.received[0]
    event = Webhook(secret).verify(body, headers)
    assert event["data"]["incident"]["number"] == incident["number"]

    listed = run(stack, "viewer", "webhook", "list")
    assert listed.exit_code == 0 and number in listed.stdout and hook.url in listed.stdout

    deadline = time.monotonic() + 10
    while True:
        log = run(stack, "viewer", "webhook", "deliveries", number, "--json")
        assert log.exit_code == 0, log.output
        (delivery,) = json.loads(log.stdout)
        if delivery["status"] == "delivered" or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert delivery["status"] == "delivered" and delivery["last_status_code"] == 204
    human = run(stack, "viewer", "webhook", "deliveries", number)
    assert "delivered" in human.stdout and "tandem.incident.created" in human.stdout

    again = run(stack, "manager", "webhook", "redeliver", delivery["id"])
    assert again.exit_code == 0, again.output
    hook.wait(2)
    assert hook.received[1][0]["webhook-id"] == headers["webhook-id"]


def test_a_refused_receiver_is_one_line_naming_the_field(stack: Stack) -> None:
    result = run(stack, "manager", "webhook", "add", "https://169.254.169.254/latest")
    assert result.exit_code != 0
    assert "url" in result.output and "link-local" in result.output
