"""What ingest does to database spans before they are stored: no literal values survive.

For every span with a statement: the statement is replaced by its obfuscated form
(:func:`~heron.server.analyze.fingerprint.obfuscate_sql`) and its fingerprint computed;
a span name that is the statement itself, or quotes something, is obfuscated too; and
query parameters (``db.query.parameter.*``, which OpenTelemetry SDKs record only when
asked) are dropped. On any span, an EXPLAIN plan (``heron.db.plan``; Heron's agent puts
it on a child span of the query's) loses its literal values.

This runs on every batch, so it is cheap when nothing needs doing: results are cached
by statement text, and a span's attributes are parsed only when their JSON text names a
plan or a parameter.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import orjson

from heron.server.analyze.fingerprint import obfuscate_sql, scrub_plan, sql_info
from heron.server.model import Span
from heron.server.model.span import COL, SpanBatch

__all__ = ["PLAN_ATTR", "PLAN_FORMAT_ATTR", "db_fingerprints", "scrub_db_spans"]

PLAN_ATTR = "heron.db.plan"
PLAN_FORMAT_ATTR = "heron.db.plan.format"
PARAMETER_PREFIX = "db.query.parameter."
_PLAN_HINT = f'"{PLAN_ATTR}"'
_PARAMETER_HINT = f'"{PARAMETER_PREFIX}'

_NAME = COL["name"]
_SYSTEM = COL["db_system"]
_STATEMENT = COL["db_statement"]
_ATTRIBUTES = COL["attributes"]


def _scrub_name(name: str, raw: str, statement: str, system: str | None) -> str:
    if name == raw:
        return statement
    if "'" in name or '"' in name:
        return obfuscate_sql(name, system)
    return name


def _scrub_attributes(attrs: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in attrs.items() if not k.startswith(PARAMETER_PREFIX)}
    plan = out.get(PLAN_ATTR)
    if isinstance(plan, str):
        out[PLAN_ATTR] = _scrub_plan_value(plan, out.get(PLAN_FORMAT_ATTR))
    return out


def _scrub_plan_value(plan: str, fmt: Any) -> str:
    if fmt == "json" or plan.lstrip().startswith(("{", "[")):
        try:
            return orjson.dumps(scrub_plan(orjson.loads(plan))).decode()
        except orjson.JSONDecodeError:
            pass
    return str(scrub_plan(plan))


def _scrub_attributes_json(text: str | None) -> str | None:
    if text is None or (_PLAN_HINT not in text and _PARAMETER_HINT not in text):
        return text
    scrubbed = _scrub_attributes(orjson.loads(text))
    return orjson.dumps(scrubbed).decode() if scrubbed else None


def _with_plan_scrubbed(row: tuple[Any, ...]) -> tuple[Any, ...] | None:
    """The row with its plan scrubbed, or None when it has no plan."""
    attrs = row[_ATTRIBUTES]
    if attrs is None or _PLAN_HINT not in attrs:
        return None
    new = list(row)
    new[_ATTRIBUTES] = _scrub_attributes_json(attrs)
    return tuple(new)


def _scrub_rows(batch: SpanBatch) -> tuple[SpanBatch, list[int | None]]:
    rows = batch.rows
    fingerprints: list[int | None] = [None] * len(rows)
    changed: list[tuple[Any, ...]] | None = None
    for i, row in enumerate(rows):
        raw = row[_STATEMENT]
        if raw is None:
            planned = _with_plan_scrubbed(row)
            if planned is not None:
                if changed is None:
                    changed = list(rows)
                changed[i] = planned
            continue
        system = row[_SYSTEM]
        info = sql_info(raw, system)
        fingerprints[i] = info.fingerprint
        name = _scrub_name(row[_NAME], raw, info.statement, system)
        attrs = _scrub_attributes_json(row[_ATTRIBUTES])
        if info.statement is raw and name is row[_NAME] and attrs is row[_ATTRIBUTES]:
            continue
        new = list(row)
        new[_NAME], new[_STATEMENT], new[_ATTRIBUTES] = name, info.statement, attrs
        if changed is None:
            changed = list(rows)
        changed[i] = tuple(new)
    return (SpanBatch(changed) if changed is not None else batch), fingerprints


def _scrub_span(s: Span) -> tuple[Span, int | None]:
    if s.db_statement is None:
        if PLAN_ATTR in s.attributes:
            return dataclasses.replace(s, attributes=_scrub_attributes(s.attributes)), None
        return s, None
    info = sql_info(s.db_statement, s.db_system)
    attrs = s.attributes
    if PLAN_ATTR in attrs or any(k.startswith(PARAMETER_PREFIX) for k in attrs):
        attrs = _scrub_attributes(attrs)
    scrubbed = dataclasses.replace(
        s,
        name=_scrub_name(s.name, s.db_statement, info.statement, s.db_system),
        db_statement=info.statement,
        attributes=attrs,
    )
    return scrubbed, info.fingerprint


def scrub_db_spans(spans: Sequence[Span]) -> tuple[Sequence[Span], list[int | None]]:
    """The spans with database literals removed, and each span's fingerprint (or None).

    A :class:`SpanBatch` comes back as a SpanBatch (the same one if nothing changed).
    """
    if isinstance(spans, SpanBatch):
        return _scrub_rows(spans)
    out = [_scrub_span(s) for s in spans]
    return [s for s, _ in out], [fp for _, fp in out]


def db_fingerprints(
    systems: Sequence[str | None], statements: Sequence[str | None]
) -> list[int | None]:
    """Each statement's fingerprint (None where there is no statement)."""
    return [
        None if stmt is None else sql_info(stmt, system).fingerprint
        for system, stmt in zip(systems, statements, strict=True)
    ]
