"""A Flask + SQLAlchemy (SQLite) app traced by the unmodified sentry-sdk, 2.x or 3.x
(whichever is importable), with ``traces_sample_rate=1.0`` and Heron as its DSN.

    python sentry_tracing_app.py DSN

Serves four requests through Flask's test client: ``GET /orders/7`` (two queries and a
``compute`` child span), ``GET /orders/8``, ``GET /missing`` (404) and ``GET /boom``
(500, captured as an error event too). Prints the sentry-sdk version, then each
request's trace id.
"""

from __future__ import annotations

import sys

import sentry_sdk
from flask import Flask
from sqlalchemy import create_engine, text

V3 = sentry_sdk.VERSION.startswith("3.")
options: dict[str, object] = {}
if not V3:  # 3.x names Flask transactions by route already (and has no such option)
    from sentry_sdk.integrations.flask import FlaskIntegration

    options["integrations"] = [FlaskIntegration(transaction_style="url")]
sentry_sdk.init(
    dsn=sys.argv[1],
    traces_sample_rate=1.0,
    release="shop@2.0.1",
    environment="staging",
    server_name="web-7",
    **options,  # type: ignore[arg-type]
)
app = Flask(__name__)
engine = create_engine("sqlite://")
trace_ids: list[str] = []


def child_span(name: str):  # type: ignore[no-untyped-def]
    if V3:
        return sentry_sdk.start_span(name=name, attributes={"sentry.op": "function"})
    return sentry_sdk.start_span(op="function", name=name)


def current_trace_id() -> str:
    span = sentry_sdk.get_current_span()
    assert span is not None
    return str(span.trace_id)


@app.route("/orders/<int:order_id>")
def order(order_id: int) -> str:
    trace_ids.append(current_trace_id())
    with engine.connect() as con:
        con.execute(text("SELECT total FROM orders WHERE id = :id"), {"id": order_id}).all()
        con.execute(text("SELECT count(*) FROM items WHERE order_id = :id"), {"id": order_id})
    with child_span("compute"):
        total = order_id * 3
    return str(total)


@app.route("/boom")
def boom() -> str:
    trace_ids.append(current_trace_id())
    raise RuntimeError("the till is on fire")


def main() -> None:
    with engine.begin() as con:
        con.execute(text("CREATE TABLE orders (id INTEGER, total REAL)"))
        con.execute(text("CREATE TABLE items (order_id INTEGER, sku TEXT)"))
    client = app.test_client()
    for path in ("/orders/7", "/orders/8", "/missing", "/boom"):
        client.get(path)
    sentry_sdk.flush(timeout=10)
    print(sentry_sdk.VERSION)
    print("\n".join(trace_ids))


if __name__ == "__main__":
    main()
