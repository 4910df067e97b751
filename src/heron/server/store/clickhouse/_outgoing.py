"""ClickHouse statement for ``TraceReader.outgoing_calls``: the same rows as
``store/duckdb/_outgoing.py`` (the rules are in ``store/traces.py``, above ``CalleeTime``).

The join is the rollups' endpoint rule as ``store/clickhouse/db.py`` writes it: an ASOF
join on trace id and service, the latest entry span that started no later than the
call. JSON attributes read as DuckDB's ``json_extract_string`` does (a number's text).
Values are bound server-side; only constants of this module and of ``model.span`` are
spliced in.
"""

from __future__ import annotations

from typing import Any

from heron.server.model.span import ENDPOINT_SQL, ENTRY_SQL, SPAN_KIND_CLIENT
from heron.server.store.traces import CALLEE_KEYS, URL_HOST_RE

_KEYS = CALLEE_KEYS


def _attr(key: str) -> str:
    """The attribute's text, NULL when missing, null or empty (a bound key)."""
    k = f"{{k{_KEYS.index(key)}:String}}"
    a = "coalesce(attributes, '')"
    return (
        f"if(JSONType({a}, {k}) = 'Null', NULL, nullIf(if(JSONType({a}, {k}) = 'String', "
        f"JSONExtractString({a}, {k}), JSONExtractRaw({a}, {k})), ''))"
    )


def _with_port(host: str, port: str) -> str:
    return f"({_attr(host)} || coalesce(':' || {_attr(port)}, ''))"


_URL = f"coalesce({_attr('url.full')}, {_attr('http.url')}, '')"
# if(), not coalesce(): the URL's regular expression only runs (short-circuit
# evaluation) for spans without ``server.address``, as on DuckDB.
_HOST_SQL = (
    f"if({_attr('server.address')} IS NOT NULL, {_with_port('server.address', 'server.port')}, "
    f"coalesce(nullIf(extract({_URL}, {{host_re:String}}), ''), "
    f"{_with_port('net.peer.name', 'net.peer.port')}))"
)
_CALLEE_SQL = (
    "if(host IS NULL, toString(name), trim(coalesce(toString(http_method), '') || ' ' "
    f"|| host || coalesce({_attr('url.template')}, '')))"
)
_IS_HTTP_SQL = (
    "(http_method IS NOT NULL OR position(coalesce(attributes, ''), '\"url.full\"') > 0 "
    "OR position(coalesce(attributes, ''), '\"http.url\"') > 0)"
)


def outgoing_calls_sql(service: bool, environment: bool) -> str:
    """The statement; parameters: :func:`outgoing_calls_params`."""
    entry_where = "".join(
        (
            " AND service = {service:String}" if service else "",
            " AND environment = {env:String}" if environment else "",
        )
    )
    call_where = " AND service = {service:String}" if service else ""
    return f"""
        WITH e AS (
            SELECT trace_id AS e_trace, service AS e_service, start_ns AS e_start,
                   start_ns + duration_ns AS e_end, duration_ns AS e_duration,
                   toString({ENDPOINT_SQL}) AS endpoint
            FROM {{db}}.spans
            WHERE project_id = {{p:UInt32}} AND start_ns >= {{lo:Int64}}
              AND start_ns < {{hi:Int64}} AND {ENTRY_SQL}{entry_where}
        ), c AS (
            SELECT trace_id, service, start_ns, duration_ns, {_CALLEE_SQL} AS callee
            FROM (
                SELECT trace_id, service, start_ns, duration_ns, name, http_method,
                       attributes, {_HOST_SQL} AS host
                FROM {{db}}.spans
                WHERE project_id = {{p:UInt32}} AND start_ns >= {{lo:Int64}}
                  AND start_ns < {{calls_hi:Int64}} AND kind = {SPAN_KIND_CLIENT}
                  AND parent_id != 0 AND db_statement IS NULL AND {_IS_HTTP_SQL}{call_where}
            )
        ), k AS (
            SELECT e_service AS service, endpoint, callee, count() AS calls,
                   sum(toInt128(c.duration_ns)) AS calls_ns,
                   argMax(e_trace, c.duration_ns) AS example
            FROM c ASOF JOIN e ON c.trace_id = e.e_trace AND c.service = e.e_service
             AND c.start_ns >= e.e_start
            WHERE c.start_ns < e.e_end
            GROUP BY service, endpoint, callee
        ), t AS (
            SELECT e_service AS t_service, endpoint AS t_endpoint, count() AS requests,
                   sum(toInt128(e_duration)) AS total_ns
            FROM e GROUP BY t_service, t_endpoint
        )
        SELECT service, endpoint, requests, total_ns, callee, calls, calls_ns, example
        FROM k JOIN t ON k.service = t.t_service AND k.endpoint = t.t_endpoint
        ORDER BY service, endpoint, calls_ns DESC, callee
    """  # noqa: S608 - constants only


def outgoing_calls_params(
    project_id: int,
    lo_ns: int,
    hi_ns: int,
    calls_hi_ns: int,
    service: str | None,
    environment: str | None,
) -> dict[str, Any]:
    """The values for :func:`outgoing_calls_sql` (with the same filters)."""
    params: dict[str, Any] = {
        "p": project_id,
        "lo": lo_ns,
        "hi": hi_ns,
        "calls_hi": calls_hi_ns,
        "host_re": URL_HOST_RE,
        **{f"k{i}": key for i, key in enumerate(_KEYS)},
    }
    if service is not None:
        params["service"] = service
    if environment is not None:
        params["env"] = environment
    return params
