"""The reference decoder and the ledger's invariants, for differential and property tests.

:func:`reference_decode` reaches the batch through :func:`drain.inputs.logplex.iter_outcomes`
(one :class:`FrameOutcome` per frame, the header fully parsed) and counts the ledger itself,
independently of :func:`drain.inputs.logplex.decode_body`: the two must agree on every body.
"""

from __future__ import annotations

from datetime import datetime

import orjson

from drain.decode.limits import DecodeLimits
from drain.decode.rules import LineRules
from drain.inputs.logplex import KIND_UNTAGGED, iter_outcomes
from drain.records import (
    RAW_EVENTS,
    ROW_TABLES,
    DecodedBatch,
    EventRow,
    Ledger,
    PlatformEventRow,
    QuarantineRow,
    Row,
)


def reference_decode(
    body: bytes,
    *,
    now: datetime,
    limits: DecodeLimits,
    rules: LineRules,
    msg_count: int | None = None,
) -> DecodedBatch:
    """The batch of ``body`` as the outcome-by-outcome walk sees it."""
    events: list[EventRow] = []
    rows: dict[str, list[Row]] = {RAW_EVENTS: events}  # type: ignore[dict-item]
    quarantined: list[QuarantineRow] = []
    ledger = Ledger(body_bytes=len(body), msg_count_header=msg_count)
    not_events = 0
    for item in iter_outcomes(body, now=now, limits=limits, rules=rules):
        ledger.frames += item.framed
        if item.event is not None:
            events.append(item.event)
        elif item.typed is not None:
            ledger.typed += 1
            kind = item.typed.kind
            ledger.typed_by_kind[kind] = ledger.typed_by_kind.get(kind, 0) + 1
            for row in item.typed.rows:
                rows.setdefault(ROW_TABLES[type(row)], []).append(row)
                if isinstance(row, PlatformEventRow):
                    code = row.code or ""
                    ledger.platform_codes[code] = ledger.platform_codes.get(code, 0) + 1
            if item.typed.loss is not None:
                ledger.loss_reports.append(item.typed.loss)
        elif item.quarantine is not None:
            row = item.quarantine
            quarantined.append(row)
            reason = row.reason.value
            ledger.quarantined_by_reason[reason] = ledger.quarantined_by_reason.get(reason, 0) + 1
            if not item.framed:
                ledger.framing_error = row.detail
                ledger.framing_error_offset = row.frame_offset
        else:
            not_events += 1
            kind = item.kind or KIND_UNTAGGED
            ledger.not_events_by_kind[kind] = ledger.not_events_by_kind.get(kind, 0) + 1
            if item.loss is not None:
                ledger.loss_reports.append(item.loss)
    ledger.events = len(events)
    ledger.quarantined = len(quarantined)
    ledger.not_events = not_events
    return DecodedBatch(rows, quarantined, ledger)


def check_ledger(batch: DecodedBatch) -> None:
    """Assert the ledger's invariants (drain.records.Ledger), that every event's payload
    is a JSON object without U+0000, and that every typed row is in its table's list."""
    ledger = batch.ledger
    assert ledger.frames + ledger.rests == (
        ledger.events + ledger.typed + ledger.quarantined + ledger.not_events
    )
    assert len(batch.quarantined) == ledger.quarantined
    assert sum(ledger.quarantined_by_reason.values()) == ledger.quarantined
    assert sum(ledger.not_events_by_kind.values()) == ledger.not_events
    assert sum(ledger.typed_by_kind.values()) == ledger.typed
    assert len(batch.events) == ledger.events
    typed_rows = sum(len(rows) for table, rows in batch.rows.items() if table != RAW_EVENTS)
    assert typed_rows >= ledger.typed  # every typed frame has at least one row
    assert sum(ledger.platform_codes.values()) == len(batch.rows.get("platform_events", []))
    for table, table_rows in batch.rows.items():
        for row in table_rows:
            assert ROW_TABLES[type(row)] == table
            for value in row:
                assert not (isinstance(value, str) and "\x00" in value), (table, row)
    for event in batch.events:
        assert isinstance(orjson.loads(event.payload), dict)
        assert "\x00" not in event.payload
