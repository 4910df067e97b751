"""Shared helpers for Heron's benchmarks: machine facts, realistic spans, tables, JSON.

The span generator builds what a real fleet sends: traces of ~10 spans (one HTTP server
span, several DB client spans, a cache span, an outgoing HTTP client span) from several
services, with the current OTel semantic-convention attribute names and realistic
resource attributes. It can emit OTLP protobuf requests (for ingest over HTTP) or
already-decoded ``Span`` records (for filling stores directly).
"""

from __future__ import annotations

import json
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
OUT_DIR = ROOT / "bench" / "out"
if str(ROOT / "src") not in sys.path:
    sys.path.insert(0, str(ROOT / "src"))

NS = 1_000_000_000

# ------------------------------------------------------------------ machine facts


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    import duckdb

    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram_gib = None
    try:
        import psutil

        ram_gib = round(psutil.virtual_memory().total / 2**30, 1)
    except ImportError:
        pass
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "ram_gib": ram_gib,
        "python": platform.python_version(),
        "duckdb": duckdb.__version__,
        "platform": platform.platform(),
    }


def machine_line(m: dict[str, Any]) -> str:
    return (
        f"{m['nproc']} cores ({m['cpu']}), {m['ram_gib']} GiB RAM, Python {m['python']}, "
        f"DuckDB {m['duckdb']}, {m['platform']}"
    )


# ------------------------------------------------------------------ output helpers


def print_table(title: str, headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Print (and return) a Markdown table, so it can be pasted into RESULTS.md."""
    cells = [[_fmt(c) for c in r] for r in rows]
    widths = [
        max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)
    ]
    lines = [
        f"\n### {title}\n",
        "| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)) + " |",
        "|" + "|".join("-" * (w + 2) for w in widths) + "|",
    ]
    for r in cells:
        lines.append("| " + " | ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) + " |")
    text = "\n".join(lines)
    print(text, flush=True)
    return text


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        if v >= 1000:
            return f"{v:,.0f}"
        if v >= 10:
            return f"{v:.1f}"
        return f"{v:.2f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def write_json(name: str, doc: dict[str, Any]) -> Path:
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    path = OUT_DIR / f"{name}.json"
    path.write_text(json.dumps(doc, indent=2, default=str))
    print(f"\nwrote {path.relative_to(ROOT)}", flush=True)
    return path


def percentile(xs: Sequence[float], q: float) -> float:
    s = sorted(xs)
    if not s:
        return float("nan")
    k = (len(s) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def summary_ms(samples_s: Sequence[float]) -> dict[str, float]:
    ms = [x * 1000 for x in samples_s]
    return {
        "median_ms": statistics.median(ms),
        "p95_ms": percentile(ms, 0.95),
        "min_ms": min(ms),
        "max_ms": max(ms),
        "runs": len(ms),
    }


# ------------------------------------------------------------------ realistic traces

SERVICES: dict[str, dict[str, Any]] = {
    "checkout": {
        "version": "2.14.1",
        "db": "postgresql",
        "dbname": "shop",
        "routes": [
            ("POST", "/api/checkout"),
            ("GET", "/api/cart/{cart_id}"),
            ("POST", "/api/cart/{cart_id}/items"),
            ("GET", "/api/orders/{order_id}"),
            ("GET", "/api/orders"),
            ("DELETE", "/api/cart/{cart_id}/items/{item_id}"),
        ],
    },
    "catalog": {
        "version": "1.9.0",
        "db": "postgresql",
        "dbname": "catalog",
        "routes": [
            ("GET", "/products"),
            ("GET", "/products/{sku}"),
            ("GET", "/categories/{slug}"),
            ("GET", "/search"),
            ("PUT", "/products/{sku}/stock"),
        ],
    },
    "accounts": {
        "version": "3.2.7",
        "db": "mysql",
        "dbname": "accounts",
        "routes": [
            ("POST", "/login"),
            ("POST", "/logout"),
            ("GET", "/me"),
            ("PATCH", "/me/preferences"),
            ("POST", "/signup"),
        ],
    },
    "payments": {
        "version": "0.31.4",
        "db": "postgresql",
        "dbname": "payments",
        "routes": [
            ("POST", "/v1/charges"),
            ("GET", "/v1/charges/{charge_id}"),
            ("POST", "/v1/refunds"),
            ("POST", "/webhooks/stripe"),
        ],
    },
    "notifications": {
        "version": "1.0.12",
        "db": "mongodb",
        "dbname": "notify",
        "routes": [("POST", "/send"), ("GET", "/templates/{name}"), ("GET", "/health")],
    },
    "search": {
        "version": "5.4.0",
        "db": "postgresql",
        "dbname": "search",
        "routes": [("GET", "/q"), ("GET", "/suggest"), ("POST", "/reindex/{index}")],
    },
}
TABLES = [
    "orders",
    "order_items",
    "users",
    "products",
    "inventory",
    "carts",
    "charges",
    "sessions",
    "addresses",
    "coupons",
]
QUERIES = [
    "SELECT id, status, total_cents, created_at FROM {t} WHERE id = $1",
    "SELECT * FROM {t} WHERE user_id = $1 ORDER BY created_at DESC LIMIT $2",
    "UPDATE {t} SET status = $1, updated_at = now() WHERE id = $2",
    "INSERT INTO {t} (user_id, sku, quantity, price_cents) VALUES ($1, $2, $3, $4) RETURNING id",
    "SELECT count(*) FROM {t} WHERE created_at > $1 AND status = ANY($2)",
    "SELECT p.sku, p.name, i.available FROM {t} p JOIN inventory i ON i.sku = p.sku WHERE p.sku = ANY($1)",
]
USER_AGENTS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4_1) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.4.1 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
    "Gecko) Mobile/15E148",
    "python-requests/2.31.0",
    "okhttp/4.12.0",
]
HOSTS_PER_SERVICE = 3


@dataclass
class SpanSpec:
    """A span before encoding: the generator's neutral form."""

    trace_id: bytes
    span_id: bytes
    parent_id: bytes
    name: str
    kind: int
    start_ns: int
    end_ns: int
    status: int
    status_message: str
    attrs: dict[str, Any]
    events: list[tuple[int, str, dict[str, Any]]]


def resource_attrs(service: str, host_idx: int) -> dict[str, Any]:
    info = SERVICES[service]
    return {
        "service.name": service,
        "service.version": info["version"],
        "service.namespace": "shop",
        "service.instance.id": f"{service}-{host_idx}-7f9c4d6b8-x2kq{host_idx}",
        "deployment.environment.name": "production",
        "host.name": f"ip-10-0-{host_idx + 1}-{40 + len(service)}.eu-west-1.compute.internal",
        "host.arch": "amd64",
        "os.type": "linux",
        "process.pid": 1000 + 17 * host_idx + len(service),
        "process.runtime.name": "cpython",
        "process.runtime.version": "3.12.3",
        "telemetry.sdk.name": "opentelemetry",
        "telemetry.sdk.language": "python",
        "telemetry.sdk.version": "1.27.0",
        "cloud.provider": "aws",
        "cloud.region": "eu-west-1",
    }


class TraceGenerator:
    """Deterministic (seeded) realistic traces; ``trace()`` returns one trace's spans."""

    def __init__(self, seed: int = 1, trace_prefix: bytes = b"") -> None:
        self.rng = random.Random(seed)
        # Ingest clients give every trace id of a request body the same leading bytes,
        # then swap them per request (bytes.replace) so ids differ between requests.
        self.trace_prefix = trace_prefix

    def _id(self, n: int) -> bytes:
        return (self.rng.getrandbits(8 * n) | 1).to_bytes(n, "big")

    def trace(self, service: str, start_ns: int) -> list[SpanSpec]:
        rng = self.rng
        info = SERVICES[service]
        method, route = rng.choice(info["routes"])
        trace_id = self._id(16)
        if self.trace_prefix:
            trace_id = self.trace_prefix + trace_id[len(self.trace_prefix) :]
        root_id = self._id(8)
        error = rng.random() < 0.02
        status_code = 500 if error else rng.choice((200, 200, 200, 200, 201, 204, 404))
        n_db = rng.randint(5, 8)
        dur_root = int(rng.lognormvariate(17.2, 0.8))  # median ~30 ms
        path = route.replace("{", "").replace("}", "")
        path = "/".join(
            p
            if not p.endswith("id") and p not in ("sku", "slug", "name", "index")
            else str(rng.randint(1, 999_999))
            for p in path.split("/")
        )
        root = SpanSpec(
            trace_id,
            root_id,
            b"",
            f"{method} {route}",
            2,
            start_ns,
            start_ns + dur_root,
            2 if error else 0,
            "Internal Server Error" if error else "",
            {
                "http.request.method": method,
                "http.route": route,
                "http.response.status_code": status_code,
                "url.path": path,
                "url.scheme": "https",
                "url.query": "page=2&per_page=50" if rng.random() < 0.3 else "",
                "server.address": f"{service}.shop.internal",
                "server.port": 8080,
                "client.address": f"10.0.{rng.randint(0, 255)}.{rng.randint(1, 254)}",
                "network.protocol.version": "1.1",
                "user_agent.original": rng.choice(USER_AGENTS),
                "http.request.body.size": rng.randint(0, 4096),
                "http.response.body.size": rng.randint(100, 60_000),
            },
            [],
        )
        if error:
            root.events.append(
                (
                    start_ns + dur_root - 1000,
                    "exception",
                    {
                        "exception.type": "psycopg.errors.QueryCanceled",
                        "exception.message": "canceling statement due to statement timeout",
                        "exception.stacktrace": 'Traceback (most recent call last):\n  File "/app/'
                        f'{service}/views.py", line 88, in handler\n    rows = cur.execute(sql)\n'
                        "psycopg.errors.QueryCanceled: canceling statement due to statement timeout",
                    },
                )
            )
        spans = [root]
        t = start_ns + dur_root // 20
        slot = max(dur_root // (n_db + 3), 1000)
        for _ in range(n_db):
            table = rng.choice(TABLES)
            q = rng.choice(QUERIES).format(t=table)
            op = q.split(" ", 1)[0]
            d = max(int(slot * rng.uniform(0.1, 0.9)), 1000)
            spans.append(
                SpanSpec(
                    trace_id,
                    self._id(8),
                    root_id,
                    f"{op} {info['dbname']}.{table}",
                    3,
                    t,
                    t + d,
                    0,
                    "",
                    {
                        "db.system.name": info["db"],
                        "db.namespace": info["dbname"],
                        "db.collection.name": table,
                        "db.operation.name": op,
                        "db.query.text": q,
                        "server.address": f"{info['db']}-primary.shop.internal",
                        "server.port": 5432 if info["db"] == "postgresql" else 3306,
                    },
                    [],
                )
            )
            t += slot
        d = max(int(slot * rng.uniform(0.1, 0.5)), 1000)
        spans.append(
            SpanSpec(
                trace_id,
                self._id(8),
                root_id,
                "GET",
                3,
                t,
                t + d,
                0,
                "",
                {
                    "db.system.name": "redis",
                    "db.operation.name": "GET",
                    "db.query.text": "GET session:?",
                    "server.address": "redis.shop.internal",
                    "server.port": 6379,
                },
                [],
            )
        )
        t += slot
        peer = rng.choice([s for s in SERVICES if s != service])
        d = max(int(slot * rng.uniform(0.3, 0.9)), 1000)
        spans.append(
            SpanSpec(
                trace_id,
                self._id(8),
                root_id,
                "POST",
                3,
                t,
                t + d,
                0,
                "",
                {
                    "http.request.method": "POST",
                    "http.response.status_code": 200,
                    "url.full": f"http://{peer}.shop.internal:8080/internal/v1/{peer}",
                    "server.address": f"{peer}.shop.internal",
                    "server.port": 8080,
                    "network.protocol.version": "1.1",
                },
                [],
            )
        )
        return spans

    def traces(
        self, n_spans: int, start_ns: int, end_ns: int
    ) -> Iterator[tuple[str, int, list[SpanSpec]]]:
        """Traces totalling at least ``n_spans`` spans, start times uniform in [start, end)."""
        services = list(SERVICES)
        made = 0
        while made < n_spans:
            service = self.rng.choice(services)
            host = self.rng.randrange(HOSTS_PER_SERVICE)
            spans = self.trace(service, self.rng.randrange(start_ns, end_ns))
            made += len(spans)
            yield service, host, spans


# ------------------------------------------------------------------ OTLP protobuf


def _set_value(av: Any, v: Any) -> None:
    if isinstance(v, bool):
        av.bool_value = v
    elif isinstance(v, int):
        av.int_value = v
    elif isinstance(v, float):
        av.double_value = v
    else:
        av.string_value = str(v)


def _add_attrs(target: Any, attrs: dict[str, Any]) -> None:
    for k, v in attrs.items():
        if v == "":
            continue
        kv = target.add()
        kv.key = k
        _set_value(kv.value, v)


def build_request(gen: TraceGenerator, n_spans: int, start_ns: int, end_ns: int) -> Any:
    """One ``ExportTraceServiceRequest`` of ~``n_spans`` spans, grouped by resource."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    by_resource: dict[tuple[str, int], list[SpanSpec]] = {}
    total = 0
    for service, host, spans in gen.traces(n_spans, start_ns, end_ns):
        if total + len(spans) > n_spans and total:
            spans = spans[: n_spans - total]
        by_resource.setdefault((service, host), []).extend(spans)
        total += len(spans)
        if total >= n_spans:
            break
    req = ExportTraceServiceRequest()
    for (service, host), specs in by_resource.items():
        rs = req.resource_spans.add()
        _add_attrs(rs.resource.attributes, resource_attrs(service, host))
        ss = rs.scope_spans.add()
        ss.scope.name = "opentelemetry.instrumentation.flask"
        ss.scope.version = "0.48b0"
        for sp in specs:
            s = ss.spans.add()
            s.trace_id, s.span_id = sp.trace_id, sp.span_id
            if sp.parent_id:
                s.parent_span_id = sp.parent_id
            s.name, s.kind = sp.name, sp.kind
            s.start_time_unix_nano, s.end_time_unix_nano = sp.start_ns, sp.end_ns
            s.status.code = sp.status
            if sp.status_message:
                s.status.message = sp.status_message
            _add_attrs(s.attributes, sp.attrs)
            for t, name, attrs in sp.events:
                e = s.events.add()
                e.time_unix_nano, e.name = t, name
                _add_attrs(e.attributes, attrs)
    return req


def now_ns() -> int:
    return time.time_ns()
