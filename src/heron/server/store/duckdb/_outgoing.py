"""DuckDB statement for ``TraceReader.outgoing_calls``: outgoing HTTP calls per endpoint
and callee (the rules are in ``store/traces.py``, above ``CalleeTime``).

The entry spans of the window (``e``) and the client spans of the same window plus
``CALL_SLACK_NS`` (``c``) are joined as the rollups name endpoints: an ASOF join on the
trace's 64-bit hash and the service, the latest entry that started no later than the
call. Only constants of this module and of ``model.span`` are spliced in; values are
bound.
"""

from __future__ import annotations

from typing import Any

from heron.server.model.span import ENDPOINT_SQL, ENTRY_SQL, SPAN_KIND_CLIENT
from heron.server.store.traces import CALLEE_KEYS, URL_HOST_RE

# Read with one JSON parse per span (a list of paths): four times cheaper than one
# ``json_extract_string`` per key.
_KEYS = CALLEE_KEYS
_ATTRS_SQL = "json_extract_string(attributes, [" + ", ".join(f"'$.\"{k}\"'" for k in _KEYS) + "])"


def _a(key: str) -> str:
    return f"a[{_KEYS.index(key) + 1}]"


def _with_port(host: str, port: str) -> str:
    return f"nullif({_a(host)}, '') || coalesce(':' || nullif({_a(port)}, ''), '')"


# A CASE, not coalesce(): the URL's regular expression then runs only for spans
# without ``server.address`` (coalesce evaluates every argument of a vector).
_HOST_SQL = (
    f"CASE WHEN nullif({_a('server.address')}, '') IS NOT NULL "
    f"THEN {_with_port('server.address', 'server.port')} "
    f"ELSE coalesce(nullif(regexp_extract(coalesce({_a('url.full')}, {_a('http.url')}, ''), "
    f"'{URL_HOST_RE}', 1), ''), {_with_port('net.peer.name', 'net.peer.port')}) END"
)
_CALLEE_SQL = (
    "CASE WHEN host IS NULL THEN name ELSE trim(coalesce(http_method, '') || ' ' || host "
    f"|| coalesce({_a('url.template')}, '')) END"
)
_IS_HTTP_SQL = (
    "(http_method IS NOT NULL OR contains(attributes, '\"url.full\"') "
    "OR contains(attributes, '\"http.url\"'))"
)


def outgoing_calls_sql(service: bool, environment: bool) -> str:
    """The statement; parameters: :func:`outgoing_calls_params`."""
    entry_where = "".join(
        (" AND service = ?" if service else "", " AND environment = ?" if environment else "")
    )
    call_where = " AND service = ?" if service else ""
    return f"""
        WITH e AS MATERIALIZED (
            SELECT hash(trace_id) AS trace_key, trace_id, service, start_ns AS e_start,
                   start_ns + duration_ns AS e_end, duration_ns, {ENDPOINT_SQL} AS endpoint
            FROM spans
            WHERE project_id = ? AND start_ns >= ? AND start_ns < ? AND {ENTRY_SQL}{entry_where}
        ), c AS (
            SELECT trace_key, service, start_ns, duration_ns, {_CALLEE_SQL} AS callee
            FROM (
                SELECT *, {_HOST_SQL} AS host
                FROM (
                    SELECT hash(trace_id) AS trace_key, service, start_ns, duration_ns, name,
                           http_method, {_ATTRS_SQL} AS a
                    FROM spans
                    WHERE project_id = ? AND start_ns >= ? AND start_ns < ?
                      AND kind = {SPAN_KIND_CLIENT} AND parent_id <> 0
                      AND db_statement IS NULL AND {_IS_HTTP_SQL}{call_where}
                )
            )
        ), j AS (
            SELECT e.service, e.endpoint, c.callee, c.duration_ns, e.trace_id
            FROM c ASOF JOIN e ON c.trace_key = e.trace_key AND c.service = e.service
             AND c.start_ns >= e.e_start
            WHERE c.start_ns < e.e_end
        ), t AS (
            SELECT service, endpoint, count(*) AS requests, sum(duration_ns) AS total_ns
            FROM e GROUP BY ALL
        ), k AS (
            SELECT service, endpoint, callee, count(*) AS calls, sum(duration_ns) AS calls_ns,
                   arg_max(trace_id, duration_ns) AS example
            FROM j GROUP BY ALL
        )
        SELECT k.service, k.endpoint, t.requests, t.total_ns, k.callee, k.calls, k.calls_ns,
               k.example
        FROM k JOIN t ON k.service = t.service AND k.endpoint = t.endpoint
        ORDER BY k.service, k.endpoint, k.calls_ns DESC, k.callee
    """  # noqa: S608 - constants only


def outgoing_calls_params(
    project_id: int,
    lo_ns: int,
    hi_ns: int,
    calls_hi_ns: int,
    service: str | None,
    environment: str | None,
) -> list[Any]:
    """The values for :func:`outgoing_calls_sql` (with the same filters)."""
    svc = [service] if service is not None else []
    env = [environment] if environment is not None else []
    return [project_id, lo_ns, hi_ns, *svc, *env, project_id, lo_ns, calls_hi_ns, *svc]
