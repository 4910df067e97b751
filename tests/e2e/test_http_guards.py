"""HTTP hygiene over real sockets: body deadlines, quiet disconnects, no-store, proxies."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import HeronProcess, make_heron
from tests.e2e.test_auth_e2e import CSRF_FIELD

pytestmark = pytest.mark.e2e

ADMIN_PASSWORD = "guards-admin-0123"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> HeronProcess:
    h = make_heron(
        tmp_path_factory.mktemp("guards"),
        HERON_BODY_TIMEOUT_S="1",
        HERON_LOG_LEVEL="debug",
        HERON_ADMIN_PASSWORD=ADMIN_PASSWORD,
    ).start()
    yield h  # type: ignore[misc]
    h.stop()


def partial_post(h: HeronProcess, declared: int, sent: bytes) -> socket.socket:
    """A raw connection that declares ``declared`` body bytes and sends only ``sent``."""
    sock = socket.create_connection(("127.0.0.1", h.port), timeout=10)
    head = (
        f"POST /v1/traces HTTP/1.1\r\nHost: 127.0.0.1\r\nx-heron-key: {h.key}\r\n"
        f"Content-Type: application/x-protobuf\r\nContent-Length: {declared}\r\n\r\n"
    )
    sock.sendall(head.encode() + sent)
    return sock


def read_until_closed(sock: socket.socket) -> bytes:
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def test_a_body_that_never_finishes_is_answered_408_and_closed(server: HeronProcess) -> None:
    sock = partial_post(server, 1000, b"\x0a\x05")
    started = time.monotonic()
    with sock:
        answer = read_until_closed(sock)  # returns only once the server closes
    waited = time.monotonic() - started
    assert answer.startswith(b"HTTP/1.1 408 "), answer
    assert b"request body not received within 1 s" in answer
    assert b"cache-control: no-store" in answer.lower()
    assert 0.8 < waited < 8, waited
    assert "closed POST /v1/traces from 127.0.0.1: body not received within 1 s" in server.log()
    assert httpx.get(f"{server.url}/healthz", timeout=10).status_code == 200


def test_a_body_within_the_deadline_is_read(server: HeronProcess) -> None:
    sock = partial_post(server, 4, b"\x0a")
    with sock:
        time.sleep(0.3)
        sock.sendall(b"\x00\x0a\x00")  # three empty ResourceSpans fields: a valid request
        answer = sock.recv(65536)
    assert answer.startswith(b"HTTP/1.1 200 "), answer


def test_a_client_hanging_up_mid_body_is_logged_quietly(server: HeronProcess) -> None:
    before = len(server.log())
    partial_post(server, 1000, b"\x0a\x05").close()
    deadline = time.monotonic() + 10
    while "hung up" not in server.log()[before:] and time.monotonic() < deadline:
        time.sleep(0.05)
    log = server.log()[before:]
    assert "DEBUG heron.server.http: client 127.0.0.1 hung up during POST /v1/traces" in log
    assert "ERROR" not in log and "Traceback" not in log, log
    assert httpx.get(f"{server.url}/healthz", timeout=10).status_code == 200


def sign_in(client: httpx.Client, password: str, **headers: str) -> httpx.Response:
    token = CSRF_FIELD.search(client.get("/login").text).group(1)  # type: ignore[union-attr]
    return client.post(
        "/login",
        data={"username": "admin", "password": password, "csrf_token": token, "next": "/"},
        headers=headers,
    )


def test_api_answers_and_pages_are_not_stored_but_static_files_are(
    server: HeronProcess,
) -> None:
    with httpx.Client(base_url=server.url, timeout=30) as b:
        assert sign_in(b, ADMIN_PASSWORD).status_code == 303
        for path in ("/api/v1/services", "/", "/traces", "/issues", "/api/v1/nope", "/docs"):
            r = b.get(path, headers={"Accept": "text/html"} if "api" not in path else {})
            assert r.headers["cache-control"] == "no-store", (path, r.status_code)
        r = b.get("/static/vendor/uPlot.iife.min.js", params={"v": "1"})
        assert r.status_code == 200
        assert r.headers["cache-control"] == "public, max-age=31536000, immutable"
    r = httpx.get(f"{server.url}/api/v1/services", headers={"Authorization": "Bearer x"})
    assert r.status_code == 401 and r.headers["cache-control"] == "no-store"


def failed_sign_ins(h: HeronProcess, attempts: int) -> list[int]:
    """Wrong passwords for admin, each from a different claimed X-Forwarded-For."""
    statuses = []
    with httpx.Client(base_url=h.url, timeout=30) as b:
        for i in range(attempts):
            r = sign_in(b, "wrong password", **{"X-Forwarded-For": f"203.0.113.{i + 1}"})
            statuses.append(r.status_code)
    return statuses


def test_rotating_x_forwarded_for_does_not_bypass_the_sign_in_limiter(tmp_path: Path) -> None:
    h = make_heron(tmp_path, HERON_ADMIN_PASSWORD=ADMIN_PASSWORD).start()
    try:
        assert failed_sign_ins(h, 7) == [401] * 5 + [429] * 2
    finally:
        h.stop()


def test_x_forwarded_for_from_a_trusted_proxy_is_the_client(tmp_path: Path) -> None:
    h = make_heron(
        tmp_path, HERON_ADMIN_PASSWORD=ADMIN_PASSWORD, HERON_TRUSTED_PROXIES="127.0.0.1"
    ).start()
    try:
        assert failed_sign_ins(h, 7) == [401] * 7  # seven clients, one failure each
    finally:
        h.stop()
