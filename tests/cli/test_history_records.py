"""How ``tandem import`` reads a history file: JSON lines or CSV, a PagerDuty incidents
export's columns as they are, and each record's line number for the summary."""

from __future__ import annotations

import io
from pathlib import Path

from tandem_cli.history import deployment_record, incident_record, read_lines


def test_a_pagerduty_export_row_is_an_incident_record() -> None:
    row = {"id": "Q1ABC", "incident_number": "1042", "Description": "Checkout errors",
           "Service Name": "Payments API", "urgency": "high", "priority": "",
           "status": "resolved", "created_on": "2026-05-01T10:00:00Z",
           "resolved_on": "", "seconds_to_first_ack": "120", "seconds_to_resolve": "3600",
           "team_name": "Payments Ops"}
    assert incident_record(row) == {
        "external_id": "Q1ABC", "title": "Checkout errors", "service": "payments-api",
        "environment": "production", "priority": 2,
        "reported_at": "2026-05-01T10:00:00+00:00",
        "acknowledged_at": "2026-05-01T10:02:00+00:00",
        "resolved_at": "2026-05-01T11:00:00+00:00", "assignment_group": "payments-ops"}


def test_a_pagerduty_priority_name_wins_over_urgency() -> None:
    record = incident_record({"id": "x", "priority": "P1 - Critical", "urgency": "low"})
    assert record["priority"] == 1
    assert incident_record({"id": "y", "urgency": "low"})["priority"] == 4


def test_a_deployment_csv_row_with_one_commit() -> None:
    row = {"id": "run-7", "service": "shop", "version": "1.2.3", "status": "succeeded",
           "finished_at": "2026-05-01 10:00:00 UTC", "commit_sha": "abc1234",
           "committed_at": "2026-05-01T08:00:00+02:00"}
    assert deployment_record(row) == {
        "external_id": "run-7", "service": "shop", "environment": "production",
        "version": "1.2.3", "status": "succeeded",
        "finished_at": "2026-05-01T10:00:00+00:00",
        "commits": [{"sha": "abc1234", "committed_at": "2026-05-01T06:00:00+00:00"}]}


def test_line_numbers_count_the_file_lines_blank_and_bad_ones_included() -> None:
    text = '{"a": 1}\n\n{bad\n[1]\n{"b": 2}\n'
    read = list(read_lines(io.StringIO(text), Path("h.jsonl")))
    assert [(n, raw, problem is not None) for n, raw, problem in read] == [
        (1, {"a": 1}, False), (3, None, True), (4, None, True), (5, {"b": 2}, False)]


def test_csv_is_known_by_its_name_or_its_first_character() -> None:
    text = "id,service\n1,a\n\n2,b\n"
    read = list(read_lines(io.StringIO(text), Path("history.txt")))
    assert [(n, raw) for n, raw, _ in read] == [(2, {"id": "1", "service": "a"}),
                                                (4, {"id": "2", "service": "b"})]
