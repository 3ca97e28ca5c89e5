"""The CLI's pure parts: retry keys, times, tables, event lines."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import typer

from tandem_cli.api import parse_when, service_url, table
from tandem_cli.deploy import idempotency_key
from tandem_cli.events import event_line


def test_a_retried_pipeline_job_sends_the_same_key_and_another_deploy_another():
    key = idempotency_key("run-41", "api", "production", "1.2.3")
    assert key == idempotency_key("run-41", "api", "production", "1.2.3")
    others = {idempotency_key("run-42", "api", "production", "1.2.3"),
              idempotency_key("run-41", "web", "production", "1.2.3"),
              idempotency_key("run-41", "api", "staging", "1.2.3"),
              idempotency_key("run-41", "api", "production", "1.2.4")}
    assert key not in others
    assert len(others) == 4
    assert len(key) <= 255


def test_times_are_now_relative_or_rfc3339_in_utc():
    before = datetime.now(UTC)
    assert parse_when("now") >= before
    assert parse_when("+2h") - before >= timedelta(hours=2)
    assert parse_when("-30m") < before
    assert parse_when("2026-03-01T10:00:00Z") == datetime(2026, 3, 1, 10, tzinfo=UTC)
    assert parse_when("2026-03-01T10:00:00") == datetime(2026, 3, 1, 10, tzinfo=UTC)
    with pytest.raises(typer.BadParameter):
        parse_when("tomorrow-ish")


def test_service_urls_come_from_the_environment_else_the_embedded_ports(monkeypatch):
    monkeypatch.delenv("TANDEM_URL_CHANGES", raising=False)
    assert service_url("changes") == "http://127.0.0.1:8002"
    monkeypatch.setenv("TANDEM_URL_CHANGES", "https://changes.example.org/")
    assert service_url("changes") == "https://changes.example.org"


def test_table_aligns_columns_and_shows_missing_values_as_dashes():
    rows = [{"number": "INC0000001", "status": "new", "title": "a"},
            {"number": "INC0000002", "status": "in_progress", "title": None}]
    out = table(rows, [("NUMBER", "number"), ("STATUS", "status"), ("TITLE", "title")])
    header, first, second = out.splitlines()
    at = header.index("TITLE")
    assert first[at:] == "a"
    assert second[at:] == "-"
    assert table([], [("NUMBER", "number")], empty="no incidents") == "no incidents"


def test_event_line_names_the_aggregate_by_number_and_the_move():
    line = event_line({"type": "tandem.incident.transitioned", "time": "2026-03-01T10:00:00Z",
                       "subject": "5b1c", "sequence": 2, "actor": "pat",
                       "data": {"incident": {"number": "INC0000007", "status": "resolved"},
                                "from": "new", "to": "resolved"}})
    assert "tandem.incident.transitioned" in line
    assert "INC0000007" in line
    assert "#2" in line
    assert line.endswith("new -> resolved")


def test_a_table_fits_the_terminal_by_cutting_its_last_column():
    rows = [{"number": "INC0000001", "title": "x" * 120}, {"number": "INC0000002", "title": "ok"}]
    lines = table(rows, [("NUMBER", "number"), ("TITLE", "title")], width=80).splitlines()
    assert [len(line) for line in lines] == [17, 80, 14]
    assert lines[1].endswith("x…")
    whole = table(rows, [("NUMBER", "number"), ("TITLE", "title")], width=None)
    assert "x" * 120 in whole  # a pipe (no terminal) gets whole lines
