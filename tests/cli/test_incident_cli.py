"""``tandem incident`` and ``tandem events tail`` against a real incidents process."""

from __future__ import annotations

import asyncio
import json
import os
import select
import subprocess
import time
import uuid

import pytest
from aiokafka import AIOKafkaProducer
from typer.testing import CliRunner, Result

from e2e.stack import TANDEM, Stack
from tandem.events import CloudEvent, new_event
from tandem.kafka import ensure_topics
from tandem.settings import PlatformSettings
from tandem_cli import build_app
from tandem_cli.broker import EmbeddedBroker, free_port

APP = build_app()


def run(stack: Stack, role: str | None, *args: str) -> Result:
    return CliRunner().invoke(APP, list(args), env=stack.cli_env(role))


def service_name() -> str:
    return f"svc-{uuid.uuid4().hex[:8]}"


def create(stack: Stack, service: str, *extra: str) -> dict:
    result = run(stack, "practitioner", "incident", "create", "--title", "Checkout fails",
                 "--service", service, "--impact", "1", "--urgency", "2", "--json", *extra)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_create_prints_the_incident_for_people_and_json_for_machines(incidents_stack):
    service = service_name()
    human = run(incidents_stack, "practitioner", "incident", "create", "--title", "API down",
                "--service", service, "--impact", "1", "--urgency", "1")
    assert human.exit_code == 0, human.output
    lines = dict(line.split(None, 1) for line in human.stdout.splitlines()
                 if len(line.split(None, 1)) == 2)
    assert lines["number"].startswith("INC")
    assert lines["priority"] == "1"
    assert lines["status"] == "new"

    machine = create(incidents_stack, service)
    assert machine["priority"] == 2
    assert machine["service"] == service
    assert machine["status"] == "new"


def test_list_shows_aligned_rows_and_filters_by_service(incidents_stack):
    service = service_name()
    first = create(incidents_stack, service)
    second = create(incidents_stack, service)
    create(incidents_stack, service_name())

    result = run(incidents_stack, "viewer", "incident", "list", "--service", service)
    assert result.exit_code == 0, result.output
    header, *rows = result.stdout.splitlines()
    assert header.split()[:4] == ["NUMBER", "P", "STATUS", "SERVICE"]
    assert {row.split()[0] for row in rows} == {first["number"], second["number"]}
    # Columns line up: every row's status starts where the heading does.
    column = header.index("STATUS")
    assert all(row[column:].startswith("new") for row in rows)

    as_json = run(incidents_stack, "viewer", "incident", "list", "--service", service, "--json")
    assert as_json.exit_code == 0
    assert {i["id"] for i in json.loads(as_json.stdout)} == {first["id"], second["id"]}


def test_empty_list_says_so(incidents_stack):
    result = run(incidents_stack, "viewer", "incident", "list", "--service", service_name())
    assert result.exit_code == 0
    assert result.stdout.strip() == "no incidents"


def test_ack_note_and_resolve_work_an_incident_by_number(incidents_stack):
    incident = create(incidents_stack, service_name())
    number = incident["number"]

    ack = run(incidents_stack, "practitioner", "incident", "ack", number, "--json")
    assert ack.exit_code == 0, ack.output
    assert json.loads(ack.stdout)["status"] == "acknowledged"

    note = run(incidents_stack, "practitioner", "incident", "note", number, "Rolled back v2")
    assert note.exit_code == 0, note.output

    resolved = run(incidents_stack, "practitioner", "incident", "resolve", number,
                   "--code", "rolled_back", "--notes", "Back on v1", "--json")
    assert resolved.exit_code == 0, resolved.output
    body = json.loads(resolved.stdout)
    assert body["status"] == "resolved"
    assert body["resolution_code"] == "rolled_back"


def test_illegal_move_is_one_line_on_stderr_with_the_allowed_states(incidents_stack):
    incident = create(incidents_stack, service_name())
    run(incidents_stack, "practitioner", "incident", "resolve", incident["number"],
        "--notes", "quick fix")

    again = run(incidents_stack, "practitioner", "incident", "ack", incident["number"])
    assert again.exit_code == 1
    assert again.stdout == ""
    assert again.stderr.startswith("error: 409")
    assert "allowed: " in again.stderr
    assert "Traceback" not in again.stderr


def test_json_mode_puts_the_problem_body_on_stderr(incidents_stack):
    result = run(incidents_stack, "viewer", "incident", "show", "INC9999999", "--json")
    assert result.exit_code == 1
    problem_line, message = result.stderr.strip().splitlines()
    problem = json.loads(problem_line)
    assert problem["status"] == 404
    assert message.startswith("error: 404")


def test_missing_token_points_to_token_mint(incidents_stack):
    result = run(incidents_stack, None, "incident", "list")
    assert result.exit_code == 1
    assert "401" in result.stderr
    assert "TANDEM_TOKEN" in result.stderr


def test_wrong_role_is_refused(incidents_stack):
    result = run(incidents_stack, "viewer", "incident", "create", "--title", "x",
                 "--service", service_name(), "--impact", "3", "--urgency", "3")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: 403")


def test_invalid_input_names_the_field(incidents_stack):
    result = run(incidents_stack, "practitioner", "incident", "create", "--title", "x",
                 "--service", "Not A Service Name", "--impact", "3", "--urgency", "3")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: 422")
    assert "service" in result.stderr


def test_out_of_range_option_is_a_usage_error_before_any_call(incidents_stack):
    result = run(incidents_stack, "practitioner", "incident", "create", "--title", "x",
                 "--service", "api", "--impact", "7", "--urgency", "3")
    assert result.exit_code == 2


@pytest.mark.parametrize("args", [("incident", "list"), ("change", "list"),
                                  ("freeze", "list"), ("deploy", "gate", "DEP0000001")])
def test_unreachable_service_is_one_clear_line(incidents_stack, args):
    env = {**incidents_stack.cli_env("viewer"),
           "TANDEM_URL_INCIDENTS": "http://127.0.0.1:9", "TANDEM_URL_CHANGES": "http://127.0.0.1:9",
           "TANDEM_URL_DEPLOYMENTS": "http://127.0.0.1:9"}
    result = CliRunner().invoke(APP, list(args), env=env)
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("error: cannot reach the ")
    assert "http://127.0.0.1:9" in lines[0]
    assert "TANDEM_URL_" in lines[0]


def test_events_tail_prints_one_line_per_event_of_the_chosen_types(incidents_stack):
    incident = create(incidents_stack, service_name())
    run(incidents_stack, "practitioner", "incident", "ack", incident["number"])

    result = run(incidents_stack, None, "events", "tail", "--from-beginning", "--topic",
                 "incidents", "--type", "tandem.incident.transitioned", "--idle", "3")
    assert result.exit_code == 0, result.output
    mine = [line for line in result.stdout.splitlines() if incident["number"] in line]
    assert len(mine) == 1
    assert "tandem.incident.transitioned" in mine[0]
    assert "new -> acknowledged" in mine[0]

    as_json = run(incidents_stack, None, "events", "tail", "--from-beginning", "--topic",
                  "incidents", "--type", "tandem.incident.*", "--json", "--idle", "3")
    events = [json.loads(line) for line in as_json.stdout.splitlines()]
    mine_json = [e for e in events if e["subject"] == incident["id"]]
    assert [e["sequence"] for e in mine_json] == [1, 2]
    assert {e["specversion"] for e in mine_json} == {"1.0"}


def test_events_tail_without_a_broker_is_one_clear_line(incidents_stack):
    env = {**incidents_stack.cli_env(None), "TANDEM_KAFKA_BOOTSTRAP": "127.0.0.1:9"}
    result = CliRunner().invoke(APP, ["events", "tail"], env=env)
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert result.stderr.startswith("error: cannot reach the broker at 127.0.0.1:9")


def test_events_tail_starts_at_the_end_and_follows_what_comes(incidents_stack, tmp_path):
    before = create(incidents_stack, service_name())
    tail = subprocess.Popen([TANDEM, "events", "tail", "--topic", "incidents", "--idle", "8"],
                            env=incidents_stack.cli_env(None), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        _await_following(tail)  # it has assigned its partitions and sought their ends
        after = create(incidents_stack, service_name())
        out, err = tail.communicate(timeout=30)
    finally:
        tail.kill()
    assert tail.returncode == 0, err
    assert before["number"] not in out, "an event from before the start was printed"
    assert after["number"] in out


def test_events_tail_says_when_it_loses_and_regains_the_broker(tmp_path):
    port = free_port()
    platform = PlatformSettings(kafka_bootstrap=f"127.0.0.1:{port}", topic_prefix="tail.")
    topics = [platform.topic("incidents")]
    broker = EmbeddedBroker(port, log_path=tmp_path / "first.log")
    broker.start()
    env = {**os.environ, "TANDEM_KAFKA_BOOTSTRAP": platform.kafka_bootstrap,
           "TANDEM_TOPIC_PREFIX": "tail."}
    tail = None
    try:
        asyncio.run(ensure_topics(platform, topics))
        tail = subprocess.Popen([TANDEM, "events", "tail", "--topic", "incidents", "--count",
                                 "1", "--idle", "90", "--json"], env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        _await_following(tail)
        broker.stop()
        said = _await_line(tail, "tail: lost the broker at", timeout=30)
        broker = EmbeddedBroker(port, log_path=tmp_path / "second.log")
        broker.start()
        asyncio.run(ensure_topics(platform, topics))
        said += _await_line(tail, f"tail: the broker at 127.0.0.1:{port} is back", timeout=60)
        # It follows the new broker again: an event published now is printed.
        event = new_event(service="incidents", type="tandem.incident.annotated",
                          subject="after-restart", sequence=1, actor="tail-test", data={})
        asyncio.run(_publish(platform.kafka_bootstrap, topics[0], [event]))
        out, err = tail.communicate(timeout=60)
    finally:
        if tail is not None:
            tail.kill()
        broker.stop()
    assert tail.returncode == 0, said + err
    assert [json.loads(line)["id"] for line in out.splitlines()] == [str(event.id)], out


async def _publish(bootstrap: str, topic: str, events: list[CloudEvent],
                   linger_ms: int = 0) -> None:
    """Publish ``events`` with one key (within ``linger_ms`` they leave as one batch)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=linger_ms)
    await producer.start()
    try:
        futures = [await producer.send(topic, value=e.to_bytes(), key=b"batch-key")
                   for e in events]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


def _await_line(tail: subprocess.Popen[str], prefix: str, timeout: float) -> str:
    """Read a tail's stderr until a line starts with prefix; returns what was read."""
    stream = tail.stderr
    assert stream is not None
    read = ""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if select.select([stream], [], [], 1)[0]:
            line = stream.readline()
            assert line, f"tail ended before it said {prefix!r}: {read}"
            read += line
            if line.startswith(prefix):
                return read
    raise AssertionError(f"tail never said {prefix!r} in {timeout} s: {read}")


def _await_following(tail: subprocess.Popen[str]) -> None:
    """Wait for a tail's stderr to say it follows its topics (it is positioned at the end)."""
    _await_line(tail, "tail: following ", timeout=60)


def test_events_tail_prints_nothing_of_a_batch_published_before_it_started(incidents_stack):
    """The embedded broker ends a partition at its last batch's first offset + 1, inside the
    batch: a tail that seeks to the end must still not print that batch's older events."""
    topic = incidents_stack.platform.topic("incidents")
    old = [new_event(service="incidents", type="tandem.incident.annotated",
                     subject="batch-key", sequence=n, actor="batch", data={"n": n})
           for n in range(1, 6)]

    bootstrap = incidents_stack.platform.kafka_bootstrap
    asyncio.run(_publish(bootstrap, topic, old, linger_ms=100))  # one batch of five
    tail = subprocess.Popen([TANDEM, "events", "tail", "--topic", "incidents", "--idle", "6",
                             "--json"], env=incidents_stack.cli_env(None),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _await_following(tail)
        new = new_event(service="incidents", type="tandem.incident.annotated",
                        subject="batch-key", sequence=6, actor="batch", data={"n": 6})
        asyncio.run(_publish(bootstrap, topic, [new]))
        out, err = tail.communicate(timeout=30)
    finally:
        tail.kill()
    printed = [json.loads(line)["id"] for line in out.splitlines()]
    assert printed == [str(new.id)], (printed, err)


def test_show_has_sla_clocks_notes_timeline_and_suspects(incidents_stack):
    incident = create(incidents_stack, service_name())
    number = incident["number"]
    run(incidents_stack, "practitioner", "incident", "ack", number)
    run(incidents_stack, "practitioner", "incident", "note", number, "Looking at the pool")

    human = run(incidents_stack, "viewer", "incident", "show", number)
    assert human.exit_code == 0, human.output
    text = human.stdout
    sections = [line for line in text.splitlines() if line and not line.startswith(" ")
                and line.split()[0] in ("SLA", "Suspects", "Notes", "Timeline")]
    assert [s.split()[0] for s in sections] == ["SLA", "Suspects", "Notes", "Timeline"]
    assert "Notes (1)" in text and "Looking at the pool" in text
    assert "response    due " in text and ", met " in text  # acknowledged: response met
    assert "acknowledged" in text.split("Timeline")[1]
    assert "new -> acknowledged" in text
    assert max(len(line) for line in text.splitlines()) <= 100

    machine = json.loads(run(incidents_stack, "viewer", "incident", "show", number,
                             "--json").stdout)
    assert machine["number"] == number
    assert [n["text"] for n in machine["notes"]] == ["Looking at the pool"]
    assert [e["type"] for e in machine["timeline"]][:2] == ["tandem.incident.created",
                                                             "tandem.incident.transitioned"]
    assert machine["suspects"] == []


def test_acknowledge_and_resolve_twice_are_no_ops_as_pagerduty_has_them(incidents_stack):
    number = create(incidents_stack, service_name())["number"]
    first = run(incidents_stack, "practitioner", "incident", "ack", number, "--json")
    again = run(incidents_stack, "practitioner", "incident", "ack", number, "--json")
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout)["version"] == json.loads(first.stdout)["version"]
    assert "already acknowledged" in again.stderr

    run(incidents_stack, "practitioner", "incident", "resolve", number, "--notes", "fixed")
    twice = run(incidents_stack, "practitioner", "incident", "resolve", number, "--json")
    assert twice.exit_code == 0, twice.output
    assert json.loads(twice.stdout)["status"] == "resolved"
    assert "already resolved" in twice.stderr


def test_assign_names_a_person_and_a_team(incidents_stack):
    number = create(incidents_stack, service_name())["number"]
    assigned = run(incidents_stack, "practitioner", "incident", "assign", number, "--to", "alice",
                   "--group", "payments-ops", "--json")
    assert assigned.exit_code == 0, assigned.output
    body = json.loads(assigned.stdout)
    assert (body["assignee"], body["assignment_group"]) == ("alice", "payments-ops")
    nothing = run(incidents_stack, "practitioner", "incident", "assign", number)
    assert nothing.exit_code == 2
    listed = run(incidents_stack, "viewer", "incident", "list", "--assignee", "alice", "--json")
    assert number in [i["number"] for i in json.loads(listed.stdout)]


def test_repeated_filters_match_any_of_their_values(incidents_stack):
    one, two, other = service_name(), service_name(), service_name()
    a, b, c = create(incidents_stack, one), create(incidents_stack, two), create(incidents_stack,
                                                                                 other)
    run(incidents_stack, "practitioner", "incident", "ack", b["number"])
    both = run(incidents_stack, "viewer", "incident", "list", "--service", one, "--service", two,
               "--json")
    assert [i["number"] for i in json.loads(both.stdout)] == [b["number"], a["number"]]
    acked = run(incidents_stack, "viewer", "incident", "list", "--service", one, "--service",
                two, "--service", other, "--status", "acknowledged", "--status", "new", "--json")
    assert {i["number"] for i in json.loads(acked.stdout)} == {a["number"], b["number"],
                                                               c["number"]}
    only_new = run(incidents_stack, "viewer", "incident", "list", "--service", one, "--service",
                   two, "--status", "new", "--json")
    assert [i["number"] for i in json.loads(only_new.stdout)] == [a["number"]]
