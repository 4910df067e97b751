"""Sign-in over in-process ASGI (httpx.ASGITransport), with the real lifespan and store.

Covers passwords, sessions and their cookie, CSRF, redirects, the read API's two kinds
of credentials, ingest keys staying separate, one-time links and brute-force limits.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import anyio.from_thread
import httpx
import pytest
from argon2 import PasswordHasher
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import HTMLResponse
from fastapi.routing import APIRoute

from heron.server.app import create_app
from heron.server.auth import User, csrf_token, require_user, verify_csrf
from heron.server.auth._limiter import LoginLimiter
from heron.server.auth._passwords import Passwords
from heron.server.auth._web import safe_next
from heron.server.config import Config, ConfigError, load_config
from heron.server.store.duckdb_store import DuckDBStore

NS = 1_000_000_000
NOW_NS = 1_700_000_000 * NS
PASSWORD = "correct horse battery staple"
TOKEN = "ht_auth_test_token_0123456789"
KEY = "hk_auth_test_key_0123456789"
# Cheap parameters keep the suite fast; hashes are still argon2id.
FAST = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
HTML = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


class Clock:
    def __init__(self, now_ns: int) -> None:
        self.now_ns = now_ns

    def __call__(self) -> int:
        return self.now_ns


def guarded_pages() -> APIRouter:
    """A stand-in for the UI: one page and one form, guarded like the UI's router."""
    router = APIRouter(dependencies=[Depends(require_user), Depends(verify_csrf)])

    @router.get("/t/page")
    def page(request: Request, user: Annotated[User, Depends(require_user)]) -> HTMLResponse:
        token = csrf_token(request)
        return HTMLResponse(f'<p>{user.username}</p><input name="csrf_token" value="{token}">')

    @router.post("/t/form")
    def form(user: Annotated[User, Depends(require_user)]) -> dict[str, str]:
        return {"done_by": user.username}

    return router


@dataclass
class Browser:
    """A cookie-keeping client; sync methods run on the portal."""

    portal: anyio.from_thread.BlockingPortal
    client: httpx.AsyncClient

    def get(self, path: str, **kw: Any) -> httpx.Response:
        return self.portal.call(lambda: self.client.get(path, **kw))

    def post(self, path: str, **kw: Any) -> httpx.Response:
        return self.portal.call(lambda: self.client.post(path, **kw))

    def login_token(self, next_path: str = "/") -> str:
        r = self.get("/login", params={"next": next_path})
        assert r.status_code == 200, r.text
        return CSRF_FIELD.search(r.text).group(1)  # type: ignore[union-attr]

    def login(
        self, username: str = "admin", password: str = PASSWORD, next_path: str = "/"
    ) -> httpx.Response:
        token = self.login_token(next_path)
        return self.post(
            "/login",
            data={
                "username": username,
                "password": password,
                "csrf_token": token,
                "next": next_path,
            },
        )

    def page_token(self) -> str:
        r = self.get("/t/page", headers=HTML)
        assert r.status_code == 200, r.text
        return CSRF_FIELD.search(r.text).group(1)  # type: ignore[union-attr]

    @property
    def session(self) -> str | None:
        return self.client.cookies.get("heron_session")


@dataclass
class Heron:
    app: FastAPI
    portal: anyio.from_thread.BlockingPortal
    clock: Clock
    store: DuckDBStore
    clients: list[httpx.AsyncClient]

    def browser(self, base_url: str = "http://heron") -> Browser:
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url=base_url)
        self.clients.append(client)
        return Browser(self.portal, client)

    @property
    def auth(self) -> Any:
        return self.app.state.auth


@contextmanager
def running(tmp_path: Path, **config: Any) -> Iterator[Heron]:
    cfg = Config(
        **{
            "data_dir": str(tmp_path / "data"),
            "api_token": TOKEN,
            "ingest_key": KEY,
            "admin_password": PASSWORD,
            **config,
        }
    )
    clock = Clock(NOW_NS)
    store = DuckDBStore(cfg.db_path, commit_interval_ms=0)
    app = create_app(cfg, store=store, clock=clock, maintenance_interval_s=3600)
    app.state.auth.passwords = Passwords(FAST)
    app.include_router(guarded_pages())
    with (
        anyio.from_thread.start_blocking_portal() as portal,
        portal.wrap_async_context_manager(app.router.lifespan_context(app)),
    ):
        heron = Heron(app, portal, clock, store, [])
        try:
            yield heron
        finally:
            for c in heron.clients:
                portal.call(c.aclose)


@pytest.fixture
def heron(tmp_path: Path) -> Iterator[Heron]:
    with running(tmp_path) as h:
        yield h


def cookie_attrs(response: httpx.Response, name: str) -> dict[str, str]:
    """The attributes of the Set-Cookie for ``name`` (lower-case keys; value under '')."""
    for header in response.headers.get_list("set-cookie"):
        first, *rest = (p.strip() for p in header.split(";"))
        key, _, value = first.partition("=")
        if key == name:
            attrs = {"": value}
            for p in rest:
                k, _, v = p.partition("=")
                attrs[k.lower()] = v
            return attrs
    raise AssertionError(f"no Set-Cookie {name}: {response.headers.get_list('set-cookie')}")


# ------------------------------------------------------------------ signing in


def test_sign_in_with_the_right_password(heron: Heron) -> None:
    b = heron.browser()
    r = b.login(next_path="/t/page?x=1")
    assert r.status_code == 303
    assert r.headers["location"] == "/t/page?x=1"
    r = b.get("/t/page", headers=HTML)
    assert r.status_code == 200 and "<p>admin</p>" in r.text


@pytest.mark.parametrize(
    ("username", "password"),
    [("admin", "wrong password"), ("nobody", PASSWORD), ("admin", ""), ("", "")],
)
def test_wrong_credentials_are_refused_alike(heron: Heron, username: str, password: str) -> None:
    b = heron.browser()
    r = b.login(username, password)
    assert r.status_code == 401
    assert "Wrong username or password." in r.text
    assert "heron_session" not in r.headers.get("set-cookie", "")
    assert b.session is None
    assert b.get("/t/page", headers=HTML).status_code == 303


def test_sign_in_takes_only_small_urlencoded_forms(heron: Heron) -> None:
    b = heron.browser()
    data = {"username": "admin", "password": PASSWORD, "csrf_token": b.login_token()}
    r = b.post("/login", data=data, files={"f": ("f.txt", b"x")})  # multipart
    assert r.status_code == 400 and b.session is None
    r = b.post("/login", data={**data, "padding": "x" * 10_000})
    assert r.status_code == 400 and b.session is None
    r = b.post(
        "/login",
        content=b"username=admin&username=other",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 403  # parsed (first value wins), then refused: no CSRF token
    assert b.post("/login", data=data).status_code == 303


def test_unknown_usernames_cost_a_real_hash() -> None:
    default = Passwords()
    assert default._dummy_hash().startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    assert not default.hasher.check_needs_rehash(default._dummy_hash())
    custom = Passwords(FAST)
    assert not FAST.check_needs_rehash(custom._dummy_hash())
    assert custom.verify(None, "anything") is False


def test_usernames_are_case_insensitive(heron: Heron) -> None:
    assert heron.browser().login(" Admin ").status_code == 303


def test_session_cookie_attributes_on_http(heron: Heron) -> None:
    r = heron.browser().login()
    c = cookie_attrs(r, "heron_session")
    assert len(c[""]) >= 43  # 256 random bits
    assert "httponly" in c and c["samesite"].lower() == "lax" and c["path"] == "/"
    assert c["max-age"] == str(7 * 86400)
    assert "secure" not in c  # plain http on 127.0.0.1 must work out of the box


def test_session_cookie_is_secure_on_https(heron: Heron) -> None:
    b = heron.browser("https://heron.example")
    assert "secure" in cookie_attrs(b.get("/login"), "heron_login_csrf")
    r = b.login()
    assert "secure" in cookie_attrs(r, "heron_session")
    assert b.get("/t/page", headers=HTML).status_code == 200


@pytest.mark.parametrize(("mode", "secure"), [("true", True), ("false", False)])
def test_cookie_secure_setting(tmp_path: Path, mode: str, secure: bool) -> None:
    """``true`` marks cookies Secure even when the server sees plain http (a TLS proxy
    that does not say so); ``false`` never does, even on https."""
    with running(tmp_path, cookie_secure=mode, session_days=2) as h:
        b = h.browser("http://heron" if secure else "https://heron.example")
        page = b.get("/login")
        pre = cookie_attrs(page, "heron_login_csrf")
        assert ("secure" in pre) is secure
        token = CSRF_FIELD.search(page.text).group(1)  # type: ignore[union-attr]
        r = b.post(
            "/login",
            data={"username": "admin", "password": PASSWORD, "csrf_token": token},
            headers={"Cookie": f"heron_login_csrf={pre['']}"},  # as the browser sends it
        )
        c = cookie_attrs(r, "heron_session")
        assert ("secure" in c) is secure
        assert c["max-age"] == str(2 * 86400)


def test_the_store_keeps_digests_and_argon2id_hashes_only(heron: Heron) -> None:
    b = heron.browser()
    b.login()
    sid = b.session
    assert sid
    sessions = heron.store.read("SELECT id_sha256 FROM sessions")
    assert sessions == [(hashlib.sha256(sid.encode()).hexdigest(),)]
    (stored,) = heron.store.read("SELECT password_hash FROM users WHERE username = 'admin'")[0]
    assert stored.startswith("$argon2id$") and PASSWORD not in stored


def test_sign_in_rotates_the_session(heron: Heron) -> None:
    b = heron.browser()
    token = b.login_token()
    planted = "A" * 43  # a session id an attacker set before sign-in (fixation)
    b.client.cookies.set("heron_session", planted)
    r = b.post("/login", data={"username": "admin", "password": PASSWORD, "csrf_token": token})
    first = cookie_attrs(r, "heron_session")[""]
    assert r.status_code == 303 and first != planted
    # Signing in again from a browser that has a session starts a new one, ends the old.
    b2 = heron.browser()
    token = b2.login_token()
    b2.client.cookies.set("heron_session", first)
    assert b2.get("/api/v1/services").status_code == 200
    r = b2.post("/login", data={"username": "admin", "password": PASSWORD, "csrf_token": token})
    second = cookie_attrs(r, "heron_session")[""]
    assert second not in (first, planted)
    old = heron.browser()
    old.client.cookies.set("heron_session", first)
    assert old.get("/api/v1/services").status_code == 401
    assert heron.store.read("SELECT count(*) FROM sessions")[0][0] == 1


def test_an_old_hash_is_upgraded_on_sign_in(heron: Heron) -> None:
    stronger = PasswordHasher(time_cost=2, memory_cost=2048, parallelism=1)
    heron.app.state.auth.passwords = Passwords(stronger)
    assert heron.browser().login().status_code == 303
    (stored,) = heron.store.read("SELECT password_hash FROM users")[0]
    assert "m=2048,t=2" in stored and not stronger.check_needs_rehash(stored)


def test_the_login_page_escapes_and_has_no_inline_script(heron: Heron) -> None:
    r = heron.browser().get("/login", params={"next": '/x"><script>alert(1)</script>'})
    assert r.status_code == 200
    assert "<script" not in r.text and "style=" not in r.text and "<style" not in r.text
    assert 'value="/x&#34;&gt;&lt;script&gt;' in r.text  # a local path, escaped
    csp = r.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "unsafe-inline" not in csp
    assert r.headers["cache-control"] == "no-store"
    assert "frame-ancestors 'none'" in csp
    assert heron.browser().get("/login/style.css").headers["content-type"].startswith("text/css")


def test_signed_in_visit_to_login_goes_to_next(heron: Heron) -> None:
    b = heron.browser()
    b.login()
    r = b.get("/login", params={"next": "/t/page"})
    assert (r.status_code, r.headers["location"]) == (303, "/t/page")


# ------------------------------------------------------------------- redirects


@pytest.mark.parametrize(
    "target",
    [
        "//evil.example/",
        "https://evil.example/",
        "http:evil.example",
        "/\\evil.example",
        "\\\\evil.example",
        "/\t/evil.example",
        "/\n/evil.example",
        " //evil.example",
        "javascript:alert(1)",
        "evil.example",
        "/login",
        "/logout",
        "",
    ],
)
def test_next_never_leaves_the_site(heron: Heron, target: str) -> None:
    assert safe_next(target) == "/"
    r = heron.browser().login(next_path=target)
    assert (r.status_code, r.headers["location"]) == (303, "/")


@pytest.mark.parametrize("target", ["/", "/t/page", "/traces?service=a%2Fb&x=1", "/a//b"])
def test_next_keeps_local_paths(target: str) -> None:
    assert safe_next(target) == target


def test_unauthenticated_page_redirects_to_sign_in_with_next(heron: Heron) -> None:
    r = heron.browser().get("/t/page?a=1&b=/x", headers=HTML)
    assert r.status_code == 303
    assert r.headers["location"] == "/login?next=%2Ft%2Fpage%3Fa%3D1%26b%3D%2Fx"


def test_unauthenticated_fetch_gets_401_json(heron: Heron) -> None:
    r = heron.browser().get("/t/page", headers={"Accept": "application/json"})
    assert r.status_code == 401 and r.json() == {"error": "sign-in required"}


def api_routes(routes: Any, prefix: str = "") -> Iterator[tuple[str, set[str]]]:
    """(path, methods) of every FastAPI route, inside included routers too."""
    for route in routes:
        inner = getattr(route, "original_router", None)
        if inner is not None:  # newer FastAPI keeps included routers as nodes
            yield from api_routes(inner.routes, prefix + route.include_context.prefix)
        elif isinstance(route, APIRoute):
            yield prefix + route.path, route.methods


def test_every_route_refuses_anonymous_requests(heron: Heron) -> None:
    """Deny by default: a new route that forgets its guard fails here (static files and
    FastAPI's /openapi.json is not an APIRoute; /docs shows only the schema)."""
    public = {"/healthz", "/login", "/login/once", "/login/style.css", "/logout", "/favicon.ico"}
    public.add("/docs")
    # The RUM beacon endpoint checks the page's Origin before its browser key: a request
    # from no allowed origin is refused with 403 (tests/e2e/test_rum_ingest.py).
    origin_first = {"/rum/v1/events"}
    checked = 0
    anon = heron.browser()
    for route_path, methods in api_routes(heron.app.routes):
        if route_path in public:
            continue
        path = re.sub(r"\{[^}]+\}", "x", route_path)
        for method in methods:
            r = anon.portal.call(
                lambda m=method, p=path: anon.client.request(
                    m, p, content=b"{}", headers={**HTML, "Content-Type": "application/json"}
                )
            )
            redirected = r.status_code == 303 and r.headers["location"].startswith("/login?")
            if route_path in origin_first:
                assert r.status_code == 403, (method, route_path, r.status_code)
                continue
            assert r.status_code == 401 or redirected, (method, route_path, r.status_code)
            checked += 1
    assert checked >= 10, checked


# ------------------------------------------------------------------------ CSRF


def test_login_form_without_or_with_a_wrong_csrf_token_is_refused(heron: Heron) -> None:
    b = heron.browser()
    good = b.login_token()
    creds = {"username": "admin", "password": PASSWORD}
    for data in (creds, {**creds, "csrf_token": "x" * 43}, {**creds, "csrf_token": ""}):
        r = b.post("/login", data=data)
        assert r.status_code == 403, data
        assert b.session is None
    # The token belongs to the cookie: another browser's cookie does not match it.
    other = heron.browser()
    other.login_token()
    r = other.post("/login", data={**creds, "csrf_token": good})
    assert r.status_code == 403
    # A cross-site post is refused even with a valid token.
    r = b.post(
        "/login", data={**creds, "csrf_token": good}, headers={"Sec-Fetch-Site": "cross-site"}
    )
    assert r.status_code == 403
    assert b.post("/login", data={**creds, "csrf_token": good}).status_code == 303


def test_form_posts_need_the_sessions_csrf_token(heron: Heron) -> None:
    b = heron.browser()
    b.login()
    token = b.page_token()
    assert b.post("/t/form", headers=HTML).status_code == 403
    r = b.post("/t/form", data={"csrf_token": "wrong"}, headers=HTML)
    assert r.status_code == 403 and "expired" in r.text
    assert (
        b.post(
            "/t/form", data={"csrf_token": token}, headers={"Sec-Fetch-Site": "cross-site"}
        ).status_code
        == 403
    )
    r = b.post("/t/form", data={"csrf_token": token})
    assert (r.status_code, r.json()) == (200, {"done_by": "admin"})
    assert b.post("/t/form", headers={"X-CSRF-Token": token}).status_code == 200
    # Another session's token does not work here.
    other = heron.browser()
    other.login()
    assert other.post("/t/form", data={"csrf_token": token}).status_code == 403
    assert b.post(
        "/t/form", data={"csrf_token": token}, headers={"Accept": "application/json"}
    ).json()


def test_unauthenticated_form_post_is_not_accepted(heron: Heron) -> None:
    r = heron.browser().post("/t/form", data={"csrf_token": "x"}, headers=HTML)
    assert r.status_code == 303 and r.headers["location"].startswith("/login?next=")


# ---------------------------------------------------------------------- logout


def test_logout_ends_the_session(heron: Heron) -> None:
    b = heron.browser()
    b.login()
    sid = b.session
    token = b.page_token()
    assert b.post("/logout").status_code == 403  # no CSRF token: still signed in
    assert b.get("/t/page", headers=HTML).status_code == 200
    r = b.post("/logout", data={"csrf_token": token})
    assert (r.status_code, r.headers["location"]) == (303, "/login")
    assert cookie_attrs(r, "heron_session")["max-age"] == "0"
    assert b.get("/t/page", headers=HTML).status_code == 303
    replay = heron.browser()
    replay.client.cookies.set("heron_session", sid or "")
    assert replay.get("/api/v1/services").status_code == 401
    assert heron.store.read("SELECT count(*) FROM sessions")[0][0] == 0


def test_sessions_expire(heron: Heron) -> None:
    b = heron.browser()
    b.login()
    heron.clock.now_ns += 7 * 86400 * NS - NS
    assert b.get("/api/v1/services").status_code == 200
    heron.clock.now_ns += 2 * NS
    assert b.get("/api/v1/services").status_code == 401
    assert b.get("/t/page", headers=HTML).status_code == 303


def test_deleting_a_user_or_changing_its_password_ends_its_sessions(heron: Heron) -> None:
    accounts = heron.auth.accounts
    hasher = heron.auth.passwords
    accounts.create_user("bob", hasher.hash("bobs password"), is_admin=False)
    b1, b2 = heron.browser(), heron.browser()
    assert b1.login("bob", "bobs password").status_code == 303
    assert b2.login("bob", "bobs password").status_code == 303
    assert accounts.set_password("bob", hasher.hash("new password")) == 2
    assert b1.get("/api/v1/services").status_code == 401
    assert b2.login("bob", "bobs password").status_code == 401
    assert b2.login("bob", "new password").status_code == 303
    assert accounts.delete_user("bob") == 1
    assert b2.get("/api/v1/services").status_code == 401
    assert b2.login("bob", "new password").status_code == 401


# --------------------------------------------------------------- the read API


def test_read_api_needs_a_token_or_a_session(heron: Heron) -> None:
    anon = heron.browser()
    r = anon.get("/api/v1/services")
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    assert (
        anon.get("/api/v1/services", headers={"Authorization": f"Bearer {TOKEN}"}).status_code
        == 200
    )
    b = heron.browser()
    b.login()
    assert b.get("/api/v1/services").status_code == 200
    # A wrong bearer token is refused even alongside a valid session.
    r = b.get("/api/v1/services", headers={"Authorization": "Bearer ht_wrong"})
    assert r.status_code == 401
    forged = heron.browser()
    forged.client.cookies.set("heron_session", "B" * 43)
    assert forged.get("/api/v1/services").status_code == 401


def test_ingest_accepts_only_ingest_keys(heron: Heron) -> None:
    body = {"resourceSpans": []}
    b = heron.browser()
    b.login()
    assert b.post("/v1/traces", json=body).status_code == 401  # a session is not a key
    for header in (f"Bearer {TOKEN}", TOKEN):
        r = heron.browser().post("/v1/traces", json=body, headers={"Authorization": header})
        assert r.status_code == 401, header
    r = heron.browser().post("/v1/traces", json=body, headers={"x-heron-key": KEY})
    assert r.status_code == 200


# ------------------------------------------------------------ one-time links


def test_one_time_link_signs_in_once(heron: Heron) -> None:
    token = heron.auth.accounts.create_login_token("admin", 600)
    b = heron.browser()
    r = b.get("/login/once", params={"token": token})
    assert (r.status_code, r.headers["location"]) == (303, "/")
    assert r.headers["referrer-policy"] == "no-referrer"
    assert "httponly" in cookie_attrs(r, "heron_session")
    assert b.get("/api/v1/services").status_code == 200
    again = heron.browser()
    r = again.get("/login/once", params={"token": token})
    assert r.status_code == 400 and "already used" in r.text
    assert again.session is None
    stored = heron.store.read("SELECT count(*) FROM login_tokens")[0][0]
    assert stored == 0


def test_one_time_link_expires_and_keeps_next_local(heron: Heron) -> None:
    old = heron.auth.accounts.create_login_token("admin", 60)
    heron.clock.now_ns += 61 * NS
    assert heron.browser().get("/login/once", params={"token": old}).status_code == 400
    fresh = heron.auth.accounts.create_login_token("admin", 60)
    r = heron.browser().get("/login/once", params={"token": fresh, "next": "//evil.example"})
    assert r.headers["location"] == "/"
    for bogus in ("", "short", "C" * 43):
        assert heron.browser().get("/login/once", params={"token": bogus}).status_code == 400


def test_the_one_time_token_is_stored_hashed(heron: Heron) -> None:
    token = heron.auth.accounts.create_login_token("admin", 60)
    (digest,) = heron.store.read("SELECT token_sha256 FROM login_tokens")[0]
    assert digest == hashlib.sha256(token.encode()).hexdigest()


# ------------------------------------------------------------- brute force


def test_repeated_failures_block_sign_in(heron: Heron) -> None:
    b = heron.browser()
    for _ in range(5):
        assert b.login("admin", "guess").status_code == 401
    r = b.login("admin", PASSWORD)  # even the right password, for a while
    assert r.status_code == 429 and int(r.headers["retry-after"]) > 0
    assert "Too many failed sign-ins" in r.text
    assert b.session is None


def test_limiter_windows_and_limits() -> None:
    now = [0.0]
    lim = LoginLimiter(per_user=3, per_client=5, window_s=100, clock=lambda: now[0])
    for _ in range(3):
        assert lim.retry_after("1.2.3.4", "admin") == 0
        lim.failed("1.2.3.4", "admin")
    assert lim.retry_after("1.2.3.4", "admin") == 100
    assert lim.retry_after("5.6.7.8", "admin") == 0  # another client
    assert lim.retry_after("1.2.3.4", "bob") == 0  # another user, same client
    lim.failed("1.2.3.4", "bob")
    lim.failed("1.2.3.4", "carol")
    assert lim.retry_after("1.2.3.4", "dave") == 100  # the client's own cap
    now[0] = 100.5
    assert lim.retry_after("1.2.3.4", "admin") == 0
    lim.failed("9.9.9.9", "x")
    lim.succeeded("9.9.9.9", "x")
    assert lim.retry_after("9.9.9.9", "x") == 0


def test_limiter_memory_is_bounded() -> None:
    lim = LoginLimiter(max_keys=100, clock=lambda: 0.0)
    for i in range(1000):
        lim.failed(f"10.0.{i // 256}.{i % 256}", "admin")
    assert len(lim._failures) <= 100


# ----------------------------------------------------------- first start


def test_first_start_creates_admin_from_the_configured_password(heron: Heron) -> None:
    created = heron.auth.admin_created
    assert created is not None and created.username == "admin" and created.password is None
    assert heron.browser().login().status_code == 303


def test_first_start_generates_an_admin_password_once(tmp_path: Path) -> None:
    with running(tmp_path, admin_password="") as h:
        created = h.auth.admin_created
        assert created is not None and created.password and len(created.password) >= 20
        assert h.browser().login(password=created.password).status_code == 303
    with running(tmp_path, admin_password="") as h:
        assert h.auth.admin_created is None  # a user exists: nothing new, nothing printed


def test_admin_password_config(tmp_path: Path) -> None:
    c = load_config(env={"HERON_ADMIN_PASSWORD": "s3cret-enough", "HERON_COOKIE_SECURE": "TRUE"})
    assert c.admin_password == "s3cret-enough" and "s3cret" not in repr(c)
    with pytest.raises(ConfigError, match="admin_password") as e:
        load_config(env={"HERON_ADMIN_PASSWORD": "short1"})
    assert "short1" not in str(e.value)
    with pytest.raises(ConfigError, match="cookie_secure"):
        load_config(env={"HERON_COOKIE_SECURE": "sometimes"})
    with pytest.raises(ConfigError, match="session_days"):
        load_config(env={"HERON_SESSION_DAYS": "0"})
