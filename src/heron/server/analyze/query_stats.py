"""Per-minute statistics of database queries, per service, endpoint and fingerprint.

``db_rollup_1m`` is to database spans what ``rollup_1m`` is to requests: one row per
minute, service, environment, endpoint, database system, fingerprint and latency bucket
(see ``heron.server.histogram``) with calls, errors, total and longest time, and rows
returned (where the span reports ``db.response.returned_rows``). A database span does
not know its endpoint when it is stored, so these rows are computed afterwards by the
analysis job (``heron.server.jobs``): each run recomputes the minutes of a recent window
from raw spans and replaces them, which is idempotent. ``sql_fingerprints`` maps each
fingerprint seen to its readable form, made here.
"""

from __future__ import annotations

from collections.abc import Iterable

from heron.server.analyze.fingerprint import display_sql

__all__ = ["name_fingerprints"]


def name_fingerprints(
    rows: Iterable[tuple[int, str, str | None, int]],
) -> list[tuple[int, str, str, int]]:
    """``(fingerprint, db_system, display, first_seen_ns)`` of ``(fingerprint, db_system,
    a statement, first_seen_ns)``: each fingerprint's readable form."""
    return [
        (fp, system, display_sql(statement or "", system or None), first)
        for fp, system, statement, first in rows
    ]
