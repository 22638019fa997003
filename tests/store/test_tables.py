"""The partitions a group of rows needs: one UTC day per row, whatever its time zone."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

from drain.records import EventRow
from drain.store.tables import RAW_EVENTS


def _row(when: datetime) -> tuple[object, ...]:
    return tuple(EventRow(when, "t", "{}", 1, 6, "host", "app", "web.1", "a"))


def test_days_of_utc_rows() -> None:
    rows = [_row(datetime(2026, 12, d, 23, 59, 59, 999999, tzinfo=UTC)) for d in (1, 2, 2, 3)]
    assert RAW_EVENTS.days(rows) == {date(2026, 12, 1), date(2026, 12, 2), date(2026, 12, 3)}
    assert RAW_EVENTS.days([]) == set()


def test_days_of_rows_in_other_offsets_are_their_utc_days() -> None:
    east = timezone(timedelta(hours=9))
    rows = [
        _row(datetime(2026, 12, 2, 3, 0, tzinfo=east)),  # 2026-12-01 18:00 UTC
        _row(datetime(2026, 12, 2, 12, 0, tzinfo=UTC)),
    ]
    assert RAW_EVENTS.days(rows) == {date(2026, 12, 1), date(2026, 12, 2)}
    assert RAW_EVENTS.days(rows) == {RAW_EVENTS.day(row) for row in rows}


def test_days_of_rows_of_one_utc_day_in_several_offsets() -> None:
    west = timezone(timedelta(hours=-5))
    rows = [
        _row(datetime(2026, 12, 1, 20, 0, tzinfo=west)),  # 2026-12-02 01:00 UTC
        _row(datetime(2026, 12, 2, 9, 0, tzinfo=UTC)),
        _row(datetime(2026, 12, 2, 5, 0, tzinfo=west)),  # 2026-12-02 10:00 UTC
    ]
    assert RAW_EVENTS.days(rows) == {date(2026, 12, 2)}
