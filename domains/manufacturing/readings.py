"""Storing and reading turbofan cycles: idempotent on (asset, cycle), one history per asset.

The same reading sent again (an HTTP retry, an MQTT redelivery, a re-uploaded file) changes
nothing; another value for a stored cycle is a conflict, never a silent overwrite.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

import numpy as np
from sqlalchemy import Table, bindparam, func, insert, select
from sqlalchemy.orm import Session
from verticals.core.db.base import utcnow
from verticals.core.errors import Conflict, InvalidInput
from verticals.domains.manufacturing.model.cmapss import READING_COLUMNS
from verticals.domains.manufacturing.tables import ReadingRow

READINGS: Table = ReadingRow.__table__  # type: ignore[assignment]
INSERT_READINGS = insert(READINGS)
CHUNK = 500  # cycles per IN (...) query: far below every database's bound-parameter limit
SELECT_STORED = select(READINGS.c.cycle, READINGS.c["values"]).where(
    READINGS.c.asset_pk == bindparam("asset_pk"),
    READINGS.c.cycle.in_(bindparam("cycles", expanding=True)),
)


def check_batch(cycles: Sequence[int]) -> None:
    """One reading per cycle in a batch (InvalidInput naming the first repeated one)."""
    seen: set[int] = set()
    for index, cycle in enumerate(cycles):
        if cycle in seen:
            raise InvalidInput(
                f"readings[{index}]: cycle {cycle} appears more than once in this request",
                {"field": f"readings[{index}].cycle", "cycle": cycle},
            )
        seen.add(cycle)


def store(
    session: Session,
    asset_pk: int,
    asset_id: str,
    cycles: Sequence[int],
    values: Sequence[Sequence[float]],
    source: str,
) -> tuple[int, int]:
    """Insert the new cycles of one asset; (accepted, unchanged). Conflict when a stored cycle
    has other values (nothing of the batch is stored then)."""
    check_batch(cycles)
    incoming = {cycle: [float(v) for v in row] for cycle, row in zip(cycles, values, strict=True)}
    stored: dict[int, list[float]] = {}
    ordered = list(incoming)
    for start in range(0, len(ordered), CHUNK):
        chunk = ordered[start : start + CHUNK]
        for cycle, row in session.execute(SELECT_STORED, {"asset_pk": asset_pk, "cycles": chunk}):
            stored[cycle] = row
    for cycle, row in stored.items():
        if row != incoming[cycle]:
            changed = [
                READING_COLUMNS[i]
                for i, (a, b) in enumerate(zip(row, incoming[cycle], strict=True))
                if a != b
            ]
            raise Conflict(
                f"asset {asset_id!r} already has cycle {cycle} with other values "
                f"({', '.join(changed[:5])}); readings are never overwritten",
                {"asset_id": asset_id, "cycle": cycle, "changed": changed},
            )
    now = utcnow()
    new_rows = [
        {"asset_pk": asset_pk, "cycle": c, "values": v, "source": source, "received_at": now}
        for c, v in incoming.items()
        if c not in stored
    ]
    if new_rows:
        session.execute(INSERT_READINGS, new_rows)
    return len(new_rows), len(stored)


def last_cycles(session: Session, asset_pks: Collection[int]) -> dict[int, int]:
    """The latest stored cycle of each asset that has readings."""
    if not asset_pks:
        return {}
    query = (
        select(ReadingRow.asset_pk, func.max(ReadingRow.cycle))
        .where(ReadingRow.asset_pk.in_(list(asset_pks)))
        .group_by(ReadingRow.asset_pk)
    )
    return {pk: int(last) for pk, last in session.execute(query)}


def history(session: Session, asset_pk: int, max_cycles: int) -> tuple[np.ndarray, np.ndarray]:
    """(cycles, values (n, 24)) of the latest ``max_cycles`` cycles, oldest first."""
    return histories(session, [asset_pk], max_cycles).get(
        asset_pk, (np.zeros(0, dtype=np.int64), np.zeros((0, len(READING_COLUMNS))))
    )


def histories(
    session: Session, asset_pks: Collection[int], max_cycles: int
) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """:func:`history` of several assets in one query per asset chunk."""
    found: dict[int, tuple[list[int], list[list[float]]]] = {}
    pks = list(asset_pks)
    for start in range(0, len(pks), CHUNK):
        ranked = (
            select(
                ReadingRow.asset_pk,
                ReadingRow.cycle,
                ReadingRow.values,
                func.row_number()
                .over(partition_by=ReadingRow.asset_pk, order_by=ReadingRow.cycle.desc())
                .label("recent"),
            )
            .where(ReadingRow.asset_pk.in_(pks[start : start + CHUNK]))
            .subquery()
        )
        query = (
            select(ranked.c.asset_pk, ranked.c.cycle, ranked.c["values"])
            .where(ranked.c.recent <= max_cycles)
            .order_by(ranked.c.asset_pk, ranked.c.cycle)
        )
        for pk, cycle, row in session.execute(query):
            cycles, rows = found.setdefault(pk, ([], []))
            cycles.append(cycle)
            rows.append(row)
    return {
        pk: (np.asarray(cycles, dtype=np.int64), np.asarray(rows, dtype=np.float64))
        for pk, (cycles, rows) in found.items()
    }
