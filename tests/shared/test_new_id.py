"""``tandem.db.new_id``: ids ordered by the time they were made (UUIDv7, RFC 9562)."""

from __future__ import annotations

import time
import uuid

from tandem.db import new_id
from tandem.events import new_event


def test_an_id_is_a_version_7_uuid_carrying_the_millisecond_it_was_made() -> None:
    before = time.time_ns() // 1_000_000
    made = new_id()
    after = time.time_ns() // 1_000_000
    assert made.version == 7
    assert made.variant == uuid.RFC_4122
    assert before <= made.int >> 80 <= after


def test_ids_made_in_later_milliseconds_sort_after_earlier_ones_and_never_repeat() -> None:
    earlier = [new_id() for _ in range(200)]
    time.sleep(0.002)
    later = [new_id() for _ in range(200)]
    assert max(earlier) < min(later)
    assert max(str(i) for i in earlier) < min(str(i) for i in later)  # as stored, hex text
    assert len(set(earlier + later)) == 400


def test_an_event_gets_a_time_ordered_id() -> None:
    event = new_event(service="changes", type="tandem.change.created", subject="c1",
                      sequence=1, actor="test", data={"change": {}})
    assert event.id.version == 7
