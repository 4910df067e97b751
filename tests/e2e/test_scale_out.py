"""Scale-out with real processes: roles, shared state, one issue per bug.

Several ``heron serve`` subprocesses share one ClickHouse (``chdb_http_url``, a fresh
database per module) and one PostgreSQL (``fresh_database()``), as in
docs/scale-out.md: two ``ingest`` processes, two ``query`` processes (behind a "load
balancer": the test sends to either) and, once its test starts it, exactly one ``jobs``
process. They all start at once, so their migrations and bootstraps race. The tests
share these processes and build on each other, in the order of this file.

- spans sent through the OpenTelemetry exporter, half to each ingest process, are
  answered by both query processes; each role answers 404 for the routes it does not
  serve and names itself in ``/healthz``; the first process bootstraps the shared state;
- only the jobs process analyses: an N+1 pattern is no finding until it runs;
- the same new bugs, sent at the same moment to both ingest processes by real
  ``sentry-sdk`` clients, as OTLP span exception events and as OTLP log records, become
  one issue each, with the events of both counted; an issue's status set on one query
  process holds on the other, and a later release's event reopens it for all;
- a user added by ``heron users add`` signs in on one query process and the session is
  valid on the other; signing out on one ends it on both;
- every process restarted keeps everything (telemetry in ClickHouse, state in PG).
"""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.trace import SpanKind, StatusCode, set_span_in_context

from tests.conftest import HeronProcess, make_heron
from tests.server.postgres import fresh_database

from .test_auth_e2e import CSRF_FIELD, GENERATED, HTML, sign_in

pytestmark = pytest.mark.e2e

SERVICE = "scale-shop"
N_PLUS_ONE_SERVICE = "scale-orders"
# ``heron serve --role R``: the flag itself (HeronProcess passes only port and data dir).
_WITH_ROLE = (
    "import sys; from heron.cli import main; sys.exit(main([*sys.argv[1:], '--role', {!r}]))"
)
# A Sentry app: raises each named bug ``repeats`` times once stdin says go.
SENTRY_APP = """
import sys
import sentry_sdk

dsn, bugs, repeats, release = sys.argv[1], sys.argv[2].split(","), int(sys.argv[3]), sys.argv[4]
sentry_sdk.init(dsn=dsn, release=release, environment="prod", default_integrations=False)


def charge(bug):
    raise type(bug, (Exception,), {})(f"{bug} while charging")


print("ready", flush=True)
sys.stdin.readline()
ids = []
for _ in range(repeats):
    for bug in bugs:
        try:
            charge(bug)
        except Exception:
            ids.append(sentry_sdk.capture_exception())
sentry_sdk.flush(timeout=30)
print(*ids, flush=True)
"""


@dataclass
class Cluster:
    """The processes of one scale-out deployment and their common environment."""

    root: Path
    env: dict[str, str]
    ingest: list[HeronProcess] = field(default_factory=list)
    query: list[HeronProcess] = field(default_factory=list)
    jobs: HeronProcess | None = None

    def process(self, name: str, role: str, *, flag: bool = False) -> HeronProcess:
        """A (not yet started) process of ``role``: by ``--role`` when ``flag``, else by
        ``HERON_ROLE``."""
        (self.root / name).mkdir()
        extra = {} if flag else {"HERON_ROLE": role}
        h = make_heron(self.root / name, **self.env, **extra)
        if flag:
            h.heron = (sys.executable, "-c", _WITH_ROLE.format(role))
        return h

    @property
    def running(self) -> list[HeronProcess]:
        return [*self.ingest, *self.query, *([self.jobs] if self.jobs else [])]


def start_all(processes: list[HeronProcess]) -> None:
    """Start the processes at once (their migrations and bootstraps race)."""
    with ThreadPoolExecutor(len(processes)) as pool:
        list(pool.map(lambda h: h.start(timeout=90), processes))


@pytest.fixture(scope="module")
def cluster(chdb_http_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with fresh_database() as state_url:
        env = {
            "HERON_STORAGE_BACKEND": "clickhouse",
            "HERON_CLICKHOUSE_URL": chdb_http_url,
            "HERON_CLICKHOUSE_DATABASE": f"heron_scale_{uuid.uuid4().hex[:12]}",
            "HERON_STATE_URL": state_url,
        }
        c = Cluster(tmp_path_factory.mktemp("scale-out"), env)
        c.ingest = [c.process("ingest1", "ingest"), c.process("ingest2", "ingest", flag=True)]
        c.query = [c.process("query1", "query", flag=True), c.process("query2", "query")]
        try:
            start_all(c.running)
            yield c
        finally:
            for h in c.running:
                h.stop()


# ------------------------------------------------------------------------ senders


def send_traces(ingest: list[HeronProcess], n: int) -> list[str]:
    """``n`` requests (a server span and a database span each) through the OTLP/HTTP
    exporter, alternately to each ingest process; their trace ids in order."""
    providers = [_provider(h, SERVICE) for h in ingest]
    ids = []
    attrs = {"http.request.method": "GET", "http.route": "/cart", "url.path": "/cart"}
    for i in range(n):
        tracer = providers[i % len(providers)].get_tracer("tests.scale_out")
        with tracer.start_as_current_span("GET /cart", kind=SpanKind.SERVER, attributes=attrs) as s:
            ids.append(format(s.get_span_context().trace_id, "032x"))
            db = {"db.system.name": "postgresql", "db.query.text": "SELECT * FROM carts"}
            with tracer.start_as_current_span("SELECT carts", kind=SpanKind.CLIENT, attributes=db):
                pass
    for p in providers:
        p.shutdown()
    return ids


def send_n_plus_one(h: HeronProcess) -> str:
    """One ``GET /orders`` loading 8 order items one query at a time, 20 ms each (the
    default thresholds are 5 repeats and 50 ms in all); returns its trace id."""
    provider = _provider(h, N_PLUS_ONE_SERVICE)
    tracer = provider.get_tracer("tests.scale_out")
    start = time.time_ns() - 500_000_000
    attrs = {"http.request.method": "GET", "http.route": "/orders", "url.path": "/orders"}
    root = tracer.start_span(
        "GET /orders", kind=SpanKind.SERVER, attributes=attrs, start_time=start
    )
    ctx = set_span_in_context(root)
    for i in range(8):
        t0 = start + (1 + i * 25) * 1_000_000
        db = {
            "db.system.name": "postgresql",
            "db.query.text": "SELECT * FROM order_items WHERE order_id = ?",
        }
        child = tracer.start_span(
            "SELECT order_items", ctx, kind=SpanKind.CLIENT, attributes=db, start_time=t0
        )
        child.end(end_time=t0 + 20_000_000)
    root.end(end_time=start + 210_000_000)
    provider.shutdown()
    return format(root.get_span_context().trace_id, "032x")


def _provider(h: HeronProcess, service: str) -> TracerProvider:
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    exporter = OTLPSpanExporter(endpoint=f"{h.url}/v1/traces", headers={"x-heron-key": h.key})
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider


def sentry_bugs_at_once(
    ingest: list[HeronProcess], bugs: list[str], repeats: int, release: str = "shop@1.0.0"
) -> list[str]:
    """One Sentry app of ``release`` per ingest process (its own DSN), each raising every
    bug (in the same order) ``repeats`` times; a barrier releases the apps at the same
    moment. Returns the event ids."""
    apps = [
        subprocess.Popen(
            [sys.executable, "-c", SENTRY_APP, _dsn(h), ",".join(bugs), str(repeats), release],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for h in ingest
    ]
    try:
        for app in apps:
            assert app.stdout is not None and app.stdout.readline().strip() == "ready"
        barrier = threading.Barrier(len(apps))

        def go(app: subprocess.Popen[str]) -> str:
            assert app.stdin is not None
            barrier.wait()
            app.stdin.write("go\n")
            app.stdin.flush()
            out, _ = app.communicate(timeout=60)
            assert app.returncode == 0, out
            return out

        with ThreadPoolExecutor(len(apps)) as pool:
            outputs = list(pool.map(go, apps))
    finally:
        for app in apps:
            if app.poll() is None:
                app.kill()
                app.wait()
    return [i for out in outputs for i in out.split()]


def otlp_bugs_at_once(ingest: list[HeronProcess], bugs: list[str], repeats: int) -> None:
    """Per ingest process, ``repeats`` failed requests per bug (a server span with the
    exception recorded as its ``exception`` event), exported together in one OTLP
    request; a barrier releases the exports at the same moment, so both processes group
    every new bug in the same instant."""
    providers = []
    for h in ingest:
        provider = TracerProvider(resource=Resource.create({"service.name": SERVICE}))
        exporter = OTLPSpanExporter(endpoint=f"{h.url}/v1/traces", headers={"x-heron-key": h.key})
        # nothing is exported before force_flush (long delay, large batches)
        provider.add_span_processor(
            BatchSpanProcessor(exporter, schedule_delay_millis=600_000, max_export_batch_size=512)
        )
        tracer = provider.get_tracer("tests.scale_out")
        for _ in range(repeats):
            for bug in bugs:
                with tracer.start_as_current_span("POST /pay", kind=SpanKind.SERVER):
                    try:
                        _charge(bug)
                    except Exception as err:
                        trace.get_current_span().record_exception(err)
                        trace.get_current_span().set_status(StatusCode.ERROR)
        providers.append(provider)
    barrier = threading.Barrier(len(providers))

    def flush(provider: TracerProvider) -> bool:
        barrier.wait()
        return provider.force_flush(30_000)

    with ThreadPoolExecutor(len(providers)) as pool:
        assert all(pool.map(flush, providers))
    for provider in providers:
        provider.shutdown()


def log_bugs_at_once(ingest: list[HeronProcess], bugs: list[str], repeats: int) -> None:
    """Per ingest process, ``repeats`` ``logger.exception`` records per bug through the
    OpenTelemetry logging handler, exported together in one OTLP logs request; a barrier
    releases the exports at the same moment."""
    providers = []
    for n, h in enumerate(ingest):
        provider = LoggerProvider(resource=Resource.create({"service.name": SERVICE}))
        exporter = OTLPLogExporter(endpoint=f"{h.url}/v1/logs", headers={"x-heron-key": h.key})
        provider.add_log_record_processor(
            BatchLogRecordProcessor(
                exporter, schedule_delay_millis=600_000, max_export_batch_size=512
            )
        )
        logger = logging.getLogger(f"tests.scale_out.{n}")
        logger.propagate = False
        handler = LoggingHandler(logger_provider=provider)
        logger.addHandler(handler)
        try:
            for order in range(repeats):
                for bug in bugs:
                    try:
                        _charge(bug, order)
                    except Exception:
                        logger.exception("charging failed")
        finally:
            logger.removeHandler(handler)
        providers.append(provider)
    barrier = threading.Barrier(len(providers))

    def flush(provider: LoggerProvider) -> bool:
        barrier.wait()
        return provider.force_flush(30_000)

    with ThreadPoolExecutor(len(providers)) as pool:
        assert all(pool.map(flush, providers))
    for provider in providers:
        provider.shutdown()


def _charge(bug: str, order: int = 0) -> None:
    raise type(bug, (Exception,), {})(f"{bug} while charging order {order}")


def _dsn(h: HeronProcess) -> str:
    """The project's Sentry DSN on this process (as ``heron serve`` prints it)."""
    return f"http://{h.key}@127.0.0.1:{h.port}/1"


# -------------------------------------------------------------------------- tests


def test_roles_serve_their_routes_and_name_themselves(cluster: Cluster) -> None:
    for h, role in [
        *((h, "ingest") for h in cluster.ingest),
        *((h, "query") for h in cluster.query),
    ]:
        health = httpx.get(f"{h.url}/healthz", timeout=30).json()
        assert (health["status"], health["role"]) == ("ok", role)
    for h in cluster.ingest:  # no API, UI, sign-in or docs
        assert h.api("/api/v1/services").status_code == 404
        assert httpx.get(f"{h.url}/", headers=HTML, timeout=30).status_code == 404
        assert httpx.get(f"{h.url}/login", timeout=30).status_code == 404
        assert httpx.get(f"{h.url}/openapi.json", timeout=30).status_code == 404
    for h in cluster.query:  # no ingest
        body = {"resourceSpans": []}
        headers = {"x-heron-key": h.key}
        r = httpx.post(f"{h.url}/v1/traces", json=body, headers=headers, timeout=30)
        assert r.status_code == 404
        assert httpx.post(f"{h.url}/v1/logs", json=body, headers=headers).status_code == 404
        assert httpx.post(f"{h.url}/api/1/envelope/", content=b"{}").status_code == 404
    # the first process to start bootstrapped the shared state, the others found it: the
    # token is announced once, one query process created the admin (ingest creates no
    # user), and the admin's password works on every query process
    logs = [h.log() for h in cluster.running]
    assert sum("API token:" in log for log in logs) == 1
    admins = [m.group(1) for log in logs for m in GENERATED.finditer(log)]
    assert len(admins) == 1 and not any("admin user" in h.log() for h in cluster.ingest)
    for h in cluster.query:
        assert h.api("/api/v1/services").status_code == 200
        with httpx.Client(base_url=h.url, timeout=30) as b:
            sign_in(b, "admin", admins[0])


def test_spans_sent_to_both_ingest_processes_are_answered_by_every_query_process(
    cluster: Cluster,
) -> None:
    ids = send_traces(cluster.ingest, 10)
    for q in cluster.query:
        services = q.wait_for(
            "/api/v1/services",
            lambda j: any(s["service"] == SERVICE and s["requests"] == 10 for s in j["services"]),
        )
        (row,) = [s for s in services["services"] if s["service"] == SERVICE]
        assert (row["requests"], row["errors"]) == (10, 0)
        for trace_id in ids[:2]:  # one sent to each ingest process
            detail = q.wait_for(f"/api/v1/traces/{trace_id}", lambda j: len(j["spans"]) == 2)
            assert {s["name"] for s in detail["spans"]} == {"GET /cart", "SELECT carts"}
            assert {s["service"] for s in detail["spans"]} == {SERVICE}
        listed = q.api("/api/v1/traces", service=SERVICE, limit=50).json()["traces"]
        assert sorted(t["trace_id"] for t in listed) == sorted(ids)


def test_only_the_jobs_process_analyses(cluster: Cluster) -> None:
    query = cluster.query[0]
    trace_id = send_n_plus_one(cluster.ingest[1])
    query.wait_for(
        "/api/v1/services",
        lambda j: any(s["service"] == N_PLUS_ONE_SERVICE for s in j["services"]),
    )
    time.sleep(12)  # longer than the analysis interval (10 s): nobody analyses yet
    findings = query.api("/api/v1/n-plus-one", **{"from": "-15m"}).json()["findings"]
    assert findings == []

    jobs = cluster.jobs = cluster.process("jobs", "jobs", flag=True).start(timeout=90)
    health = httpx.get(f"{jobs.url}/healthz", timeout=30).json()
    assert (health["status"], health["role"]) == ("ok", "jobs")
    assert jobs.api("/api/v1/services").status_code == 404
    assert httpx.get(f"{jobs.url}/login", timeout=30).status_code == 404
    r = httpx.post(f"{jobs.url}/v1/traces", json={"resourceSpans": []}, timeout=30)
    assert r.status_code == 404

    def found(j: dict[str, Any]) -> bool:
        return any(f["service"] == N_PLUS_ONE_SERVICE for f in j["findings"])

    for q in cluster.query:
        body = q.wait_for("/api/v1/n-plus-one", found, timeout=45, **{"from": "-15m"})
        (finding,) = body["findings"]
        assert (finding["endpoint"], finding["kind"]) == ("GET /orders", "db")
        assert "order_items" in finding["display"]
        assert (finding["occurrences"], finding["max_repeats"]) == (1, 8)
        assert finding["example_trace_id"] == trace_id


def test_the_same_new_bugs_at_the_same_moment_make_one_issue_each(cluster: Cluster) -> None:
    tag = uuid.uuid4().hex[:6]
    bugs = [f"Bug{i}_{tag}" for i in range(5)]
    repeats = 3
    ids = sentry_bugs_at_once(cluster.ingest, bugs, repeats)
    expected = len(cluster.ingest) * repeats
    assert len(ids) == len(bugs) * expected and len(set(ids)) == len(ids)
    assert_one_issue_per_bug(cluster, tag, bugs, expected)


def test_issue_status_is_shared(cluster: Cluster) -> None:
    """Resolved on one query process, resolved on the other; an event of a later release
    through either ingest process reopens it as a regression for all."""
    q1, q2 = cluster.query
    tag = uuid.uuid4().hex[:6]
    bug = f"Bug_status_{tag}"
    sentry_bugs_at_once(cluster.ingest[:1], [bug], 1)
    issue_id = _issue_of(q1, bug, lambda i: i["event_count"] == 1)["id"]
    r = httpx.post(
        f"{q2.url}/api/v1/issues/{issue_id}/status",
        json={"status": "resolved", "release": "shop@1.0.0"},
        headers={"Authorization": f"Bearer {q2.token}"},
        timeout=30,
    )
    assert (r.status_code, r.json()["status"]) == (200, "resolved"), r.text
    resolved = _issue_of(q1, bug, lambda i: True)
    assert (resolved["status"], resolved["resolved_release"]) == ("resolved", "shop@1.0.0")
    sentry_bugs_at_once(cluster.ingest[1:], [bug], 1, release="shop@1.1.0")
    for q in cluster.query:
        again = _issue_of(q, bug, lambda i: i["event_count"] == 2)
        assert (again["id"], again["status"], again["regressed"]) == (issue_id, "open", True)


def _issue_of(q: HeronProcess, exc_type: str, ok: Any) -> dict[str, Any]:
    """The one issue of ``exc_type`` on ``q`` once ``ok(issue)`` holds."""

    def mine(j: dict[str, Any]) -> list[dict[str, Any]]:
        return [i for i in j["issues"] if i["exc_type"] == exc_type]

    body = q.wait_for(
        "/api/v1/issues", lambda j: len(mine(j)) == 1 and ok(mine(j)[0]), **{"from": "-1h"}
    )
    (issue,) = mine(body)
    return issue


def assert_one_issue_per_bug(cluster: Cluster, tag: str, bugs: list[str], events: int) -> None:
    """Every query process lists one open issue per bug (``tag`` in its type), each with
    all ``events`` of both ingest processes."""

    def ours(j: dict[str, Any]) -> list[dict[str, Any]]:
        return [i for i in j["issues"] if tag in (i["exc_type"] or "")]

    for q in cluster.query:
        body = q.wait_for(
            "/api/v1/issues",
            lambda j: sum(i["events"] for i in ours(j)) == len(bugs) * events,
            **{"from": "-1h"},
        )
        issues = ours(body)
        assert sorted(i["exc_type"] for i in issues) == bugs  # one issue per bug
        for issue in issues:
            assert (issue["event_count"], issue["events"], issue["status"]) == (
                events,
                events,
                "open",
            )


def test_the_same_new_exceptions_in_spans_make_one_issue_each(cluster: Cluster) -> None:
    for _ in range(3):  # rounds of new bugs: each round is a race of its own
        tag = uuid.uuid4().hex[:6]
        bugs = [f"SpanBug{i}_{tag}" for i in range(5)]
        repeats = 2
        otlp_bugs_at_once(cluster.ingest, bugs, repeats)
        # OpenTelemetry names the type with its module
        types = [f"{_charge.__module__}.{bug}" for bug in bugs]
        assert_one_issue_per_bug(cluster, tag, types, len(cluster.ingest) * repeats)


def test_the_same_new_exceptions_in_logs_make_one_issue_each(cluster: Cluster) -> None:
    for _ in range(3):  # rounds of new bugs: each round is a race of its own
        tag = uuid.uuid4().hex[:6]
        bugs = [f"LogBug{i}_{tag}" for i in range(5)]
        repeats = 2
        log_bugs_at_once(cluster.ingest, bugs, repeats)
        types = [f"{_charge.__module__}.{bug}" for bug in bugs]
        assert_one_issue_per_bug(cluster, tag, types, len(cluster.ingest) * repeats)


def test_a_user_added_by_the_cli_signs_in_and_the_session_is_shared(cluster: Cluster) -> None:
    q1, q2 = cluster.query
    r = subprocess.run(
        [sys.executable, "-m", "heron", "users", "add", "ops", "--password-stdin"],
        input="ops password 1\n",
        capture_output=True,
        text=True,
        env={**q1.env, "HERON_DATA_DIR": str(cluster.root / "cli")},
        timeout=60,
    )
    assert (r.returncode, r.stdout.strip()) == (0, "added user ops"), r.stderr
    with httpx.Client(base_url=q1.url, timeout=30) as b1:
        sign_in(b1, "ops", "ops password 1")
        session = b1.cookies["heron_session"]
    with httpx.Client(base_url=q2.url, timeout=30, cookies={"heron_session": session}) as b2:
        assert b2.get("/api/v1/services").status_code == 200
        page = b2.get("/", headers=HTML)
        assert page.status_code == 200
        token = CSRF_FIELD.search(page.text)
        assert token, page.text
        r = b2.post("/logout", data={"csrf_token": token.group(1)})
        assert (r.status_code, r.headers["location"]) == (303, "/login")
    with httpx.Client(base_url=q1.url, timeout=30, cookies={"heron_session": session}) as b1:
        assert b1.get("/api/v1/services").status_code == 401  # signed out everywhere
    assert httpx.get(f"{q2.url}/api/v1/services", timeout=30).status_code == 401


def test_restarted_processes_keep_everything(cluster: Cluster) -> None:
    q1 = cluster.query[0]
    before = snapshot(q1)
    assert all(before.values()), before
    with httpx.Client(base_url=q1.url, timeout=30) as b:
        sign_in(b, "ops", "ops password 1")
        session = b.cookies["heron_session"]
    for h in cluster.running:
        h.stop()
        assert h.log().rstrip().splitlines()[-2] == "INFO:     Application shutdown complete."
    start_all(cluster.running)
    for q in cluster.query:  # telemetry, issues, findings and the session outlived them
        assert snapshot(q) == before
        r = httpx.get(f"{q.url}/api/v1/services", cookies={"heron_session": session}, timeout=30)
        assert r.status_code == 200
    # a bug seen before the restart is still that issue: counted into it, no new one
    issue = next(i for i in before["issues"] if i[1].startswith("Bug"))  # a Sentry bug
    sentry_bugs_at_once(cluster.ingest, [issue[1]], 1)
    grown = (issue[0], issue[1], issue[2] + len(cluster.ingest))
    after = q1.wait_for("/api/v1/issues", lambda j: grown in _issues(j), **{"from": "-1h"})
    assert len(_issues(after)) == len(before["issues"])


def snapshot(q: HeronProcess) -> dict[str, list[tuple[Any, ...]]]:
    """What the query API answers about services, issues and N+1 findings."""
    services = q.api("/api/v1/services", **{"from": "-1h"}).json()["services"]
    issues = q.api("/api/v1/issues", **{"from": "-1h"}).json()
    findings = q.api("/api/v1/n-plus-one", **{"from": "-1h"}).json()["findings"]
    return {
        "services": sorted((s["service"], s["requests"], s["errors"]) for s in services),
        "issues": _issues(issues),
        "findings": sorted(
            (f["service"], f["endpoint"], f["occurrences"], f["example_trace_id"]) for f in findings
        ),
    }


def _issues(body: dict[str, Any]) -> list[tuple[int, str, int]]:
    return sorted((i["id"], i["exc_type"], i["event_count"]) for i in body["issues"])


def test_no_process_logged_an_error(cluster: Cluster) -> None:
    for h in cluster.running:
        log = h.log()
        assert "Traceback" not in log and " ERROR " not in log, log[-3000:]
