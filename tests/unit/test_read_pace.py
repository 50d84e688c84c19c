"""The bus reader's batch size (bytes, not entries, bound a reply) and its lag."""

from __future__ import annotations

import time

from revurb.scaling.read_pace import MAX_COUNT, MIN_COUNT, REPLY_BYTES, ReadPace, entry_ms


def entry_id(seconds_ago: float) -> str:
    return f"{int((time.time() - seconds_ago) * 1000)}-3"


def test_a_fresh_reader_asks_for_a_few_entries_and_reports_no_lag() -> None:
    pace = ReadPace()
    assert (pace.count, pace.lag_seconds) == (MIN_COUNT, 0.0)


def test_the_next_batch_fits_the_reply_budget_from_the_entries_just_read() -> None:
    pace = ReadPace()
    pace.read(16, 16 * 8000, entry_id(0))
    assert pace.count == REPLY_BYTES // 8000
    pace.read(32, 32 * 100, entry_id(0))
    assert pace.count == MAX_COUNT  # tiny entries: capped in entries
    pace.read(1, 2 * REPLY_BYTES, entry_id(0))
    assert pace.count == 1  # an entry over the budget is still read, one at a time


def test_a_read_cut_short_halves_the_batch() -> None:
    pace = ReadPace()
    pace.cut()
    assert pace.count == MIN_COUNT // 2
    for _ in range(10):
        pace.cut()
    assert pace.count == 1


def test_lag_is_the_age_of_the_newest_entry_read_and_0_once_a_read_finds_nothing() -> None:
    pace = ReadPace()
    pace.read(5, 500, entry_id(2.5))
    assert 2.5 <= pace.lag_seconds < 3.5
    pace.read(0, 0, entry_id(2.5))
    assert pace.lag_seconds == 0.0
    pace.read(1, 10, entry_id(-1))  # an entry from a Redis clock ahead of ours
    assert pace.lag_seconds == 0.0


def test_an_entry_id_carries_the_redis_time_in_milliseconds() -> None:
    assert entry_ms("1700000000123-7") == 1700000000123
