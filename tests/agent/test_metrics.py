"""Agent metrics against a real OTLP/HTTP receiver on loopback (protobuf decoded with
``opentelemetry.proto``): custom instruments, runtime and host metrics, event-loop lag,
HTTP and database durations, fork, cardinality, never raising, slow requests, tags."""

from __future__ import annotations

import json
import subprocess
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.agent.helpers import APPS, Procs, agent_env, free_port, python
from tests.agent.otlp_receiver import OtlpReceiver

pytestmark = pytest.mark.e2e

PRELUDE = """
import json, os, sys, time
import heron
"""


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    r = OtlpReceiver().start()
    yield r
    r.stop()


def run(
    receiver: OtlpReceiver, tmp_path: Path, program: str, timeout: float = 60, **env: str
) -> tuple[list[Any], str]:
    """Run ``program`` (after PRELUDE) against the receiver; its JSON stdout lines, stderr."""
    environ = agent_env(
        tmp_path,
        HERON_ENDPOINT=receiver.url,
        HERON_KEY="metrics-key",
        HERON_SERVICE="metered",
        HERON_RELEASE="1.2.3",
        HERON_ENVIRONMENT="test",
        OTEL_METRIC_EXPORT_INTERVAL="300",
        **env,
    )
    code = textwrap.dedent(PRELUDE) + textwrap.dedent(program)
    done = subprocess.run(
        python("-c", code), env=environ, capture_output=True, text=True, timeout=timeout
    )
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")], (
        done.stderr
    )


def test_custom_instruments_arrive_with_the_values_recorded(
    receiver: OtlpReceiver, tmp_path: Path
) -> None:
    run(
        receiver,
        tmp_path,
        """
        orders = heron.counter("orders.placed", unit="{order}", description="Orders")
        heron.init()
        assert heron.counter("orders.placed") is orders  # cached per name
        for _ in range(7):
            orders.add(1, {"country": "FR"})
        for _ in range(3):
            heron.record_metric("orders.placed", 1, "counter", country="DE")
        for v in (1.0, 2.0, 3.5, 40.0):
            heron.record_metric("payment.amount", v, unit="EUR", attributes={"payment.method": "card"})
        heron.histogram("latency", unit="s").record(0.25)
        heron.gauge("queue.depth").set(5)
        heron.gauge("queue.depth").set(9)
        q = heron.up_down_counter("inflight")
        q.add(3); q.add(-1)
        heron.record_metric("temperature", 21.5, "gauge", room="a")
        assert heron.flush(10)
        """,
    )
    fr = receiver.latest("orders.placed", country="FR")
    de = receiver.latest("orders.placed", country="DE")
    assert fr is not None and fr["value"] == 7 and fr["monotonic"] and fr["kind"] == "sum"
    assert de is not None and de["value"] == 3
    assert fr["unit"] == "{order}"
    amount = receiver.latest("payment.amount", **{"payment.method": "card"})
    assert amount is not None and amount["kind"] == "histogram"
    assert (amount["count"], amount["sum"], amount["min"], amount["max"]) == (4, 46.5, 1.0, 40.0)
    assert amount["unit"] == "EUR"
    latency = receiver.latest("latency")
    assert latency is not None and latency["count"] == 1 and latency["sum"] == 0.25
    depth = receiver.latest("queue.depth")
    assert depth is not None and depth["kind"] == "gauge" and depth["value"] == 9
    inflight = receiver.latest("inflight")
    assert inflight is not None and inflight["value"] == 2 and not inflight["monotonic"]
    temperature = receiver.latest("temperature", room="a")
    assert temperature is not None and temperature["value"] == 21.5
    # Same endpoint, key and resource as the traces.
    assert any(path == "/v1/metrics" for path, _ in receiver.bodies)
    assert set(receiver.keys) == {"metrics-key"}
    resource = fr["resource"]
    assert resource["service.name"] == "metered"
    assert resource["service.version"] == "1.2.3"
    assert resource["deployment.environment.name"] == "test"
    assert resource["process.pid"] > 0 and resource["service.instance.id"]
    assert resource["host.name"]
    assert fr["temporality"] == 2  # cumulative


def test_runtime_and_host_metrics_have_sane_values(receiver: OtlpReceiver, tmp_path: Path) -> None:
    (out,), _ = run(
        receiver,
        tmp_path,
        """
        import gc, threading
        heron.init()
        garbage = [[i] for i in range(50_000)]
        gc.collect()
        t = time.process_time()
        while time.process_time() - t < 0.3:  # some CPU
            pass
        time.sleep(0.5)
        assert heron.flush(10)
        print(json.dumps({"pid": os.getpid(), "threads": threading.active_count()}))
        """,
    )
    names = {p["name"] for p in receiver.points}
    expected = {
        "process.cpu.time",
        "process.cpu.utilization",
        "process.memory.usage",
        "process.memory.virtual",
        "process.thread.count",
        "process.unix.file_descriptor.count",
        "process.context_switches",
        "process.uptime",
        "cpython.gc.collections",
        "cpython.gc.collected_objects",
        "cpython.gc.uncollectable_objects",
        "cpython.gc.pause.duration",
        "heron.asyncio.event_loop.lag",
        "system.cpu.utilization",
        "system.cpu.load_average.1m",
        "system.cpu.load_average.5m",
        "system.cpu.load_average.15m",
        "system.memory.usage",
        "system.memory.utilization",
        "system.filesystem.usage",
        "system.filesystem.utilization",
        "system.network.io",
    } - {"heron.asyncio.event_loop.lag"}  # no loop ran in this program
    assert expected <= names, expected - names
    cpu = sum(
        receiver.latest("process.cpu.time", **{"cpu.mode": m})["value"] for m in ("user", "system")
    )
    assert cpu >= 0.3
    assert receiver.latest("process.memory.usage")["value"] > 10 * 2**20
    assert receiver.latest("process.memory.virtual")["value"] > 10 * 2**20
    assert receiver.latest("process.memory.usage")["unit"] == "By"
    assert receiver.latest("process.thread.count")["value"] >= out["threads"]
    assert receiver.latest("process.unix.file_descriptor.count")["value"] >= 3
    assert 0 < receiver.latest("process.uptime")["value"] < 60
    assert receiver.latest("process.uptime")["resource"]["process.pid"] == out["pid"]
    assert receiver.latest("cpython.gc.collections", **{"cpython.gc.generation": 2})["value"] >= 1
    pauses = receiver.latest("cpython.gc.pause.duration", **{"cpython.gc.generation": 2})
    assert pauses is not None and pauses["count"] >= 1 and 0 < pauses["sum"] < 5
    assert pauses["unit"] == "s"
    used = receiver.latest("system.memory.utilization", **{"system.memory.state": "used"})
    assert 0 < used["value"] < 1
    root = receiver.latest(
        "system.filesystem.usage",
        **{"system.filesystem.mountpoint": "/", "system.filesystem.state": "used"},
    )
    assert root is not None and root["value"] > 0
    # Only real filesystems: no proc, sysfs, tmpfs pseudo mounts.
    types = {
        p["attributes"]["system.filesystem.type"]
        for p in receiver.metric("system.filesystem.usage")
    }
    assert not types & {"proc", "sysfs", "tmpfs", "cgroup2", "devpts"}
    load = receiver.latest("system.cpu.load_average.1m")
    assert load is not None and load["value"] >= 0
    modes = {p["attributes"]["cpu.mode"] for p in receiver.metric("system.cpu.utilization")}
    assert {"user", "system", "idle"} <= modes


def test_event_loop_lag_grows_while_the_loop_is_blocked(
    receiver: OtlpReceiver, tmp_path: Path
) -> None:
    run(
        receiver,
        tmp_path,
        """
        import asyncio, threading
        heron.init()

        async def calm():
            await asyncio.sleep(1.0)
            heron.flush(10)

        async def blocked():
            await asyncio.sleep(0.1)
            time.sleep(0.8)  # blocks the loop
            await asyncio.sleep(0.3)
            heron.flush(10)

        def reused():  # a loop run now and then: the pause between runs is not lag
            loop = asyncio.new_event_loop()
            loop.run_until_complete(asyncio.sleep(0.05))
            time.sleep(1.0)
            loop.run_until_complete(asyncio.sleep(0.6))
            heron.flush(10)
            loop.close()

        asyncio.run(calm())
        t = threading.Thread(target=lambda: asyncio.run(blocked()), name="worker-loop")
        t.start(); t.join()
        t = threading.Thread(target=reused, name="reused-loop")
        t.start(); t.join()
        """,
    )
    reused = [
        p["value"]
        for p in receiver.metric("heron.asyncio.event_loop.lag")
        if p["attributes"]["thread.name"] == "reused-loop"
    ]
    assert reused and max(reused) < 0.2, reused
    main = [
        p["value"]
        for p in receiver.metric("heron.asyncio.event_loop.lag")
        if p["attributes"]["thread.name"] == "MainThread"
    ]
    worker = [
        p["value"]
        for p in receiver.metric("heron.asyncio.event_loop.lag")
        if p["attributes"]["thread.name"] == "worker-loop"
    ]
    assert main and max(main) < 0.2, main
    # Blocked 0.8 s with a probe due every 0.5 s: one probe runs at least 0.3 s late.
    assert worker and max(worker) >= 0.28, worker
    assert receiver.metric("heron.asyncio.event_loop.lag")[0]["unit"] == "s"


def test_a_child_forked_while_the_reader_held_its_locks_still_exports(
    receiver: OtlpReceiver, tmp_path: Path
) -> None:
    """The parent's ticker holds its wake-up event's lock and its export lock for a moment
    every interval; a fork at that moment (gunicorn --preload) must not leave the child's
    new ticker blocked on them. Held here on purpose, so the race is not left to chance."""
    lines, _ = run(
        receiver,
        tmp_path,
        """
        heron.init()
        c = heron.counter("ticks")
        from heron.agent import runtime
        reader = runtime._metrics.reader
        reader._export_lock.acquire()
        reader._shutdown_event._cond.acquire()
        pid = os.fork()
        if pid == 0:
            c.add(3, {"who": "child"})
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and heron.stats().metric_points == 0:
                time.sleep(0.05)
            print(json.dumps({"child": os.getpid(), "points": heron.stats().metric_points}),
                  flush=True)
            os._exit(0)
        reader._shutdown_event._cond.release()
        reader._export_lock.release()
        os.waitpid(pid, 0)
        """,
    )
    (child,) = lines
    assert child["points"] > 0  # the child's ticker ran and exported
    points = [p for p in receiver.metric("ticks") if p["resource"]["process.pid"] == child["child"]]
    assert points and points[-1]["value"] == 3


def test_a_forked_child_reports_as_itself_without_its_parents_counts(
    receiver: OtlpReceiver, tmp_path: Path
) -> None:
    lines, _ = run(
        receiver,
        tmp_path,
        """
        heron.init()
        c = heron.counter("jobs")
        c.add(5, {"who": "parent"})
        assert heron.flush(10)
        pid = os.fork()
        if pid == 0:
            c.add(2, {"who": "child"})
            with heron.span("in-child"):
                pass
            ok = heron.flush(10)
            print(json.dumps({"child": os.getpid(), "flushed": ok,
                              "points": heron.stats().metric_points}), flush=True)
            os._exit(0)
        os.waitpid(pid, 0)
        c.add(1, {"who": "parent"})
        assert heron.flush(10)
        print(json.dumps({"parent": os.getpid()}), flush=True)
        """,
    )
    child, parent = lines
    assert child["flushed"] and child["points"] > 0
    child_points = [
        p for p in receiver.metric("jobs") if p["resource"]["process.pid"] == child["child"]
    ]
    parent_points = [
        p for p in receiver.metric("jobs") if p["resource"]["process.pid"] == parent["parent"]
    ]
    assert child_points and parent_points
    # The child counts only its own: no "parent" series inherited.
    assert {p["attributes"]["who"] for p in child_points} == {"child"}
    assert child_points[-1]["value"] == 2
    assert parent_points[-1]["value"] == 6
    child_instance = {p["resource"]["service.instance.id"] for p in child_points}
    parent_instance = {p["resource"]["service.instance.id"] for p in parent_points}
    assert len(child_instance) == 1 and child_instance.isdisjoint(parent_instance)
    # The child's runtime metrics are its own too.
    uptime = [
        p
        for p in receiver.metric("process.uptime")
        if p["resource"]["process.pid"] == child["child"]
    ]
    assert uptime
    # The child's spans and metrics carry the same process.pid and service.instance.id.
    (span,) = [s for s in receiver.spans if s["name"] == "in-child"]
    assert span["resource"]["process.pid"] == child["child"]
    assert span["resource"]["service.instance.id"] in child_instance


def test_cardinality_overflow_is_capped_and_counted(receiver: OtlpReceiver, tmp_path: Path) -> None:
    (out,), _ = run(
        receiver,
        tmp_path,
        """
        heron.init(metric_cardinality_limit=5, runtime_metrics=False, host_metrics=False)
        for i in range(20):
            heron.record_metric("requests", 1, "counter", user=str(i))
        heron.record_metric("fine", 1, "counter", a="1")
        assert heron.flush(10)
        print(json.dumps({"overflowed": heron.stats().metrics_overflowed}))
        """,
        HERON_METRIC_CARDINALITY_LIMIT="999",  # the keyword option wins
    )
    assert out["overflowed"] == 1
    points = receiver.metric("requests")
    overflow = [p for p in points if p["attributes"].get("otel.metric.overflow") is True]
    assert overflow and overflow[-1]["value"] == 15  # 20 sets: 5 kept, 15 in the overflow one
    assert len({json.dumps(p["attributes"], sort_keys=True) for p in points}) == 6
    assert {p["name"] for p in receiver.points} == {"requests", "fine"}


@pytest.mark.swallows_internal_errors
def test_metrics_never_raise_and_work_before_init(receiver: OtlpReceiver, tmp_path: Path) -> None:
    (out,), _ = run(
        receiver,
        tmp_path,
        """
        early = heron.counter("early")
        early.add(1)  # before init: a no-op proxy, bound once init() runs
        heron.record_metric("early.histogram", 1.0)
        heron.record_metric("bad", "not a number")
        heron.record_metric("bad", float("nan"))
        heron.record_metric("bad", 1, kind="nonsense")
        heron.record_metric("bad", -1, "counter")  # the SDK drops negative counts
        heron.record_metric("weird", 1, attributes={"x": object()})
        heron.init(runtime_metrics=False, host_metrics=False)
        early.add(4)
        heron.init()  # twice: ignored
        assert heron.flush(10)
        assert heron.shutdown(10)
        heron.record_metric("after.shutdown", 1)
        heron.counter("after.shutdown.counter").add(1)
        print(json.dumps({"ok": True}))
        """,
    )
    assert out == {"ok": True}
    assert receiver.latest("early")["value"] == 4


def test_metrics_can_be_turned_off(receiver: OtlpReceiver, tmp_path: Path) -> None:
    run(
        receiver,
        tmp_path,
        """
        heron.init()
        heron.record_metric("x", 1)
        with heron.span("still-traced"):
            pass
        assert heron.flush(10)
        """,
        HERON_METRICS="false",
    )
    assert receiver.points == []
    assert [s["name"] for s in receiver.spans] == ["still-traced"]


def test_http_and_database_durations(receiver: OtlpReceiver, tmp_path: Path) -> None:
    run(
        receiver,
        tmp_path,
        """
        heron.init(runtime_metrics=False, host_metrics=False)
        import flask, requests, sqlite3
        app = flask.Flask("shop")

        @app.get("/orders/<int:order_id>")
        def order(order_id):
            return {"id": order_id}

        client = app.test_client()
        for i in range(3):
            assert client.get(f"/orders/{i}").status_code == 200
        try:
            requests.get(os.environ["HERON_ENDPOINT"] + "/nothing", timeout=5)
        except Exception:
            pass
        db = sqlite3.connect(":memory:")
        db.execute("CREATE TABLE items (id INTEGER)")
        for i in range(4):
            db.execute("INSERT INTO items VALUES (?)", (i,))
        db.execute("SELECT * FROM items WHERE id = ?", (1,)).fetchall()
        try:
            db.execute("SELECT * FROM missing")
        except sqlite3.OperationalError:
            pass
        assert heron.flush(10)
        """,
    )
    server = receiver.latest(
        "http.server.request.duration", **{"http.route": "/orders/<int:order_id>"}
    )
    assert server is not None and server["count"] == 3 and server["unit"] == "s"
    assert server["attributes"]["http.request.method"] == "GET"
    assert server["attributes"]["http.response.status_code"] == 200
    client = receiver.latest("http.client.request.duration")
    assert client is not None and client["count"] == 1
    inserts = receiver.latest(
        "db.client.operation.duration",
        **{"db.operation.name": "INSERT", "db.collection.name": "items"},
    )
    assert inserts is not None and inserts["count"] == 4 and inserts["unit"] == "s"
    assert inserts["attributes"]["db.system.name"] == "sqlite"
    assert 0 < inserts["sum"] < 1
    select = receiver.latest("db.client.operation.duration", **{"db.operation.name": "SELECT"})
    assert select is not None
    failed = [
        p
        for p in receiver.metric("db.client.operation.duration")
        if "error.type" in p["attributes"]
    ]
    assert failed and failed[-1]["attributes"]["error.type"] == "sqlite3.OperationalError"


def test_slow_requests_are_flagged_and_logged_once(receiver: OtlpReceiver, tmp_path: Path) -> None:
    _, stderr = run(
        receiver,
        tmp_path,
        """
        import logging
        from opentelemetry.trace import SpanKind
        logging.basicConfig(level=logging.WARNING)
        heron.init(slow_request_ms=100, metrics=False)
        for i in range(3):
            with heron.span("GET /slow", kind=SpanKind.SERVER,
                            attributes={"http.request.method": "GET", "http.route": "/slow"}):
                with heron.span("inner"):
                    time.sleep(0.15)
        with heron.span("GET /fast", kind=SpanKind.SERVER):
            pass
        with heron.span("job"):  # not an entry span
            time.sleep(0.15)
        assert heron.flush(10)
        print(json.dumps({"slow": heron.stats().slow_requests}))
        """,
        HERON_LOGS="false",
    )
    slow = [s for s in receiver.spans if s["name"] == "GET /slow"]
    assert len(slow) == 3 and all(s["attributes"]["heron.slow_request"] is True for s in slow)
    others = [s for s in receiver.spans if s["name"] != "GET /slow"]
    assert others and all("heron.slow_request" not in s["attributes"] for s in others)
    lines = [line for line in stderr.splitlines() if "slow request:" in line]
    assert len(lines) == 1, stderr  # rate-limited: once per route per minute
    assert "slow request: GET /slow took 1" in lines[0]
    assert f"trace_id={slow[0]['trace_id']}" in lines[0]


def test_set_tag_and_set_user_land_on_the_current_span(
    receiver: OtlpReceiver, tmp_path: Path
) -> None:
    run(
        receiver,
        tmp_path,
        """
        heron.init(metrics=False)
        with heron.span("request"):
            heron.set_tag("tenant", "acme")
            heron.set_user({"id": 42, "username": "ada", "email": "ada@example.com",
                            "ip_address": "10.0.0.1"})
        assert heron.flush(10)
        """,
    )
    (span,) = receiver.spans
    attributes = span["attributes"]
    assert attributes["tenant"] == "acme"
    assert attributes["enduser.id"] == "42"
    assert attributes["user.name"] == "ada"
    assert attributes["user.email"] == "ada@example.com"
    assert "10.0.0.1" not in json.dumps(attributes)


def test_scrub_keys_keep_the_users_email_off_spans(receiver: OtlpReceiver, tmp_path: Path) -> None:
    run(
        receiver,
        tmp_path,
        """
        heron.init(metrics=False, scrub_keys=["email"])
        with heron.span("request"):
            heron.set_user({"id": "u1", "email": "ada@example.com"})
        assert heron.flush(10)
        """,
    )
    (span,) = receiver.spans
    assert span["attributes"]["enduser.id"] == "u1"
    assert "user.email" not in span["attributes"]


def test_a_server_without_metrics_costs_one_warning_and_no_spans(
    receiver: OtlpReceiver, tmp_path: Path
) -> None:
    receiver.refuse.add("/v1/metrics")  # a Heron server older than metrics: 404
    (out,), stderr = run(
        receiver,
        tmp_path,
        """
        import logging
        logging.basicConfig(level=logging.WARNING)
        heron.init(host_metrics=False)
        with heron.span("kept"):
            pass
        time.sleep(2)  # several failed metric exports (every 300 ms)
        heron.flush(10)
        s = heron.stats()
        print(json.dumps({"exported": s.exported, "failed": s.metric_exports_failed}))
        """,
        HERON_LOGS="false",
    )
    assert out["exported"] == 1 and out["failed"] >= 3
    assert [s["name"] for s in receiver.spans] == ["kept"]
    assert stderr.count("heron: could not export metrics") == 1, stderr
    # "code: 404", not "404": the receiver's random port may hold those digits (40431).
    assert stderr.count("code: 404") <= 1, stderr


def test_fastapi_request_durations_and_its_loop(receiver: OtlpReceiver, tmp_path: Path) -> None:
    run(
        receiver,
        tmp_path,
        """
        heron.init(host_metrics=False)
        from fastapi import FastAPI
        from fastapi.testclient import TestClient

        app = FastAPI()

        @app.get("/items/{item_id}")
        async def item(item_id: int):
            return {"id": item_id}

        with TestClient(app) as client:
            for i in range(2):
                assert client.get(f"/items/{i}").status_code == 200
            assert client.get("/missing").status_code == 404
        assert heron.flush(10)
        """,
    )
    ok = receiver.latest("http.server.request.duration", **{"http.route": "/items/{item_id}"})
    assert ok is not None and ok["count"] == 2
    assert ok["attributes"]["http.response.status_code"] == 200
    missing = [
        p
        for p in receiver.metric("http.server.request.duration")
        if p["attributes"].get("http.response.status_code") == 404
    ]
    assert missing and missing[-1]["count"] == 1
    # TestClient serves the app on an event loop of its own thread: it was probed too.
    threads = {
        p["attributes"]["thread.name"] for p in receiver.metric("heron.asyncio.event_loop.lag")
    }
    assert len(threads) >= 1


def _thread_dumps(url: str, pids: set[int]) -> dict[int, object]:
    """The stacks of the given gunicorn workers (asked until each has answered)."""
    import httpx

    dumps: dict[int, object] = {}
    for _ in range(100):
        if set(dumps) >= pids:
            break
        answer = httpx.get(f"{url}/threads", timeout=10).json()
        if answer["pid"] in pids:
            dumps[answer["pid"]] = answer
    return dumps


def test_gunicorn_preload_workers_export_their_own_metrics(
    receiver: OtlpReceiver, procs: Procs, tmp_path: Path
) -> None:
    """heron.init() in the gunicorn master (--preload), two forked workers: each exports
    its own counts under its own process.pid and service.instance.id."""
    import httpx

    port = free_port()
    proc = procs.start(
        python(
            "-m",
            "gunicorn",
            "--preload",
            "--workers",
            "2",
            "--worker-class",
            "sync",
            "--bind",
            f"127.0.0.1:{port}",
            "--chdir",
            str(APPS),
            "prom_app:app",
        ),
        agent_env(
            tmp_path,
            HERON_SERVICE="shop",
            HERON_ENDPOINT=receiver.url,
            OTEL_METRIC_EXPORT_INTERVAL="200",
        ),
        "gunicorn",
    )
    url = f"http://127.0.0.1:{port}"
    procs.wait_http(proc, f"{url}/work")
    sent, pids = 1, set()  # wait_http sent one
    deadline = time.monotonic() + 30
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(8) as pool:
        while len(pids) < 2 and time.monotonic() < deadline:
            answers = list(pool.map(lambda _: httpx.get(f"{url}/work", timeout=10), range(16)))
            sent += len(answers)
            pids |= {a.json()["pid"] for a in answers}
    assert len(pids) == 2

    def per_worker() -> dict[int, float]:
        latest: dict[int, float] = {}
        for p in receiver.metric("orders.placed"):
            latest[p["resource"]["process.pid"]] = p["value"]
        return latest

    try:
        receiver.wait(lambda r: sum(per_worker().values()) == sent, timeout=30)
    except AssertionError:
        silent = pids - set(per_worker())
        raise AssertionError(
            f"sent {sent} to {pids}, received {per_worker()}; "
            f"silent workers' threads: {_thread_dumps(url, silent)}"
        ) from None
    assert set(per_worker()) == pids  # nothing in the master's name
    receiver.wait(
        lambda r: pids <= {p["resource"]["process.pid"] for p in r.metric("process.uptime")}
    )
    instances = {
        p["resource"]["process.pid"]: p["resource"]["service.instance.id"]
        for p in receiver.metric("process.uptime")
    }
    assert len(set(instances.values())) == len(instances)  # one instance id per process
