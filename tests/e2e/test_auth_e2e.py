"""Sign-in against a real ``heron serve`` subprocess over a real socket."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.conftest import TEST_API_TOKEN, TEST_INGEST_KEY, HeronProcess, make_heron

pytestmark = pytest.mark.e2e

CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')
GENERATED = re.compile(r"admin user:\s+admin, password (\S+)\s+\(shown once")
HTML = {"Accept": "text/html"}


def browser(h: HeronProcess) -> httpx.Client:
    return httpx.Client(base_url=h.url, timeout=30)


def sign_in(client: httpx.Client, username: str, password: str) -> None:
    """Go through the sign-in form like a browser."""
    page = client.get("/login", params={"next": "/"})
    assert page.status_code == 200, page.text
    token = CSRF_FIELD.search(page.text).group(1)  # type: ignore[union-attr]
    r = client.post(
        "/login",
        data={"username": username, "password": password, "csrf_token": token, "next": "/"},
    )
    assert (r.status_code, r.headers.get("location")) == (303, "/"), r.text
    cookie = next(c for c in r.headers.get_list("set-cookie") if c.startswith("heron_session="))
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie  # http://127.0.0.1 out of the box


def test_first_start_prints_a_generated_admin_password_once(tmp_path: Path) -> None:
    h = make_heron(tmp_path).start()
    try:
        first_log = h.log()
        m = GENERATED.search(first_log)
        assert m, first_log
        password = m.group(1)
        assert f"sign in:        {h.url}/login" in first_log
        with browser(h) as b:
            sign_in(b, "admin", password)
            assert b.get("/api/v1/services").status_code == 200
            assert b.get("/", headers=HTML).status_code == 200
    finally:
        h.stop()
    h.start()
    try:
        later = h.log()[len(first_log) :]
        assert "Heron is listening" in later
        assert "admin user" not in later and password not in later
        with browser(h) as b:
            sign_in(b, "admin", password)
            assert b.get("/api/v1/services").status_code == 200
    finally:
        h.stop()


def test_admin_password_from_the_environment(tmp_path: Path) -> None:
    secret = "from-the-env-0123"
    h = make_heron(tmp_path, HERON_ADMIN_PASSWORD=secret).start()
    try:
        log = h.log()
        assert "admin user:     admin, password as configured" in log
        assert secret not in log
        with browser(h) as b:
            sign_in(b, "admin", secret)
        wrong = browser(h)
        token = CSRF_FIELD.search(wrong.get("/login").text).group(1)  # type: ignore[union-attr]
        r = wrong.post(
            "/login", data={"username": "admin", "password": "not it!!", "csrf_token": token}
        )
        assert r.status_code == 401 and "heron_session" not in r.headers.get("set-cookie", "")
        wrong.close()
    finally:
        h.stop()


def test_a_user_added_with_the_cli_signs_in(tmp_path: Path) -> None:
    h = make_heron(tmp_path)
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "heron",
            "users",
            "add",
            "ops",
            "--password-stdin",
            "--data-dir",
            str(h.data_dir),
        ],
        input="ops password 1\n",
        capture_output=True,
        text=True,
        env=h.env,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    h.start()
    try:
        assert "admin user" not in h.log()  # a user exists: no admin is created
        with browser(h) as b:
            sign_in(b, "ops", "ops password 1")
            assert b.get("/api/v1/services").status_code == 200
            token = CSRF_FIELD.search(b.get("/", headers=HTML).text)
            assert token, "the UI renders the session's CSRF token for the sign-out form"
            r = b.post("/logout", data={"csrf_token": token.group(1)})
            assert (r.status_code, r.headers["location"]) == (303, "/login")
            assert b.get("/api/v1/services").status_code == 401
    finally:
        h.stop()


def test_anonymous_requests_and_ingest_keys(heron_server: HeronProcess) -> None:
    h = heron_server
    r = httpx.get(f"{h.url}/", headers=HTML, timeout=30)
    assert (r.status_code, r.headers["location"]) == (303, "/login?next=%2F")
    assert httpx.get(f"{h.url}/api/v1/services", timeout=30).status_code == 401
    assert h.api("/api/v1/services").status_code == 200  # the bearer API token
    body = {"resourceSpans": []}
    traces = f"{h.url}/v1/traces"
    bearer = {"Authorization": f"Bearer {TEST_API_TOKEN}"}
    assert httpx.post(traces, json=body, headers=bearer, timeout=30).status_code == 401
    password = GENERATED.search(h.log()).group(1)  # type: ignore[union-attr]
    with browser(h) as b:
        sign_in(b, "admin", password)
        assert b.post("/v1/traces", json=body).status_code == 401
    key = {"x-heron-key": TEST_INGEST_KEY}
    assert httpx.post(traces, json=body, headers=key, timeout=30).status_code == 200
