"""The per-app sign-in state and the request-level pieces: cookies, CSRF tokens, redirects.

Cookie and CSRF design (see the package docstring for the public view):

- ``heron_session`` holds a random 256-bit session id; the store keeps its SHA-256.
  HttpOnly, SameSite=Lax, Path=/, Max-Age = ``session_days``; Secure per
  ``cookie_secure`` (``auto``: when the request is HTTPS).
- A signed-in page's CSRF token is HMAC-SHA256(key=session id, "heron csrf v1"): bound to
  the session, nothing stored, and it reveals nothing about the session id.
- Before sign-in, ``heron_login_csrf`` (random, HttpOnly, Path=/login) plays the session
  id's part for the sign-in form.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import anyio
from starlette.requests import Request
from starlette.responses import Response

from heron.server.auth._accounts import Accounts, User, new_secret, well_formed
from heron.server.auth._limiter import LoginLimiter
from heron.server.auth._passwords import Passwords, generate_password

if TYPE_CHECKING:
    from heron.server.config import Config
    from heron.server.store.base import Store

log = logging.getLogger("heron.auth")

SESSION_COOKIE = "heron_session"
LOGIN_CSRF_COOKIE = "heron_login_csrf"
LOGIN_CSRF_MAX_AGE_S = 2 * 3600
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
ADMIN_USERNAME = "admin"
SESSION_PURPOSE = b"heron csrf v1"  # HMAC messages: one token never serves another purpose
LOGIN_PURPOSE = b"heron login csrf v1"
_NO_USER = object()


class LoginRequired(Exception):
    """No valid session: HTML requests are redirected to sign-in, others get 401."""

    def __init__(self, next_path: str = "/") -> None:
        super().__init__("sign-in required")
        self.next_path = next_path


class CSRFRejected(Exception):
    """A state-changing request without a valid CSRF token (answered 403)."""


@dataclass(frozen=True)
class AdminBootstrap:
    """The admin user created on first start; ``password`` is set only if generated."""

    username: str
    password: str | None


class Auth:
    """Sign-in state of one app (``app.state.auth``); built by ``install_auth``."""

    def __init__(
        self,
        config: Config,
        store: Store,
        *,
        clock: Callable[[], int] = time.time_ns,
        passwords: Passwords | None = None,
        limiter: LoginLimiter | None = None,
    ) -> None:
        self.config = config
        self.accounts = Accounts(store.state, clock)
        self.passwords = passwords or Passwords()
        self.limiter = limiter or LoginLimiter()
        self.admin_created: AdminBootstrap | None = None
        self._sign_in_slots: anyio.CapacityLimiter | None = None

    def sign_in_slots(self) -> anyio.CapacityLimiter:
        """How many sign-ins check a password at once (call from the event loop)."""
        if self._sign_in_slots is None:
            self._sign_in_slots = anyio.CapacityLimiter(self.passwords.concurrency)
        return self._sign_in_slots

    def check_password(self, username: str, password: str) -> int | None:
        """The user's id if the password is right (blocking: argon2). Upgrades a hash made
        with older parameters."""
        found = self.accounts.password_hash(username)
        if not self.passwords.verify(found[1] if found else None, password) or found is None:
            return None
        user, stored = found
        if self.passwords.needs_rehash(stored):
            self.accounts.rehash(user.id, stored, self.passwords.hash(password))
        return user.id

    @property
    def session_ttl_s(self) -> int:
        return self.config.session_days * 86400

    def bootstrap_admin(self) -> AdminBootstrap | None:
        """On first start (no user at all) create ``admin``; remember it for the banner."""
        if self.accounts.count_users():
            if self.config.admin_password:
                log.warning(
                    "admin_password (HERON_ADMIN_PASSWORD) is ignored: users exist already; "
                    "use `heron users set-password` to change a password"
                )
            return None
        given = self.config.admin_password
        password = given or generate_password()
        user = self.accounts.create_first_admin(ADMIN_USERNAME, self.passwords.hash(password))
        if user is not None:
            self.admin_created = AdminBootstrap(user.username, None if given else password)
        return self.admin_created

    def user_for(self, request: Request) -> User | None:
        """The session's user, looked up once per request."""
        cached = getattr(request.state, "heron_user", _NO_USER)
        if cached is _NO_USER:
            cached = self.accounts.session_user(request.cookies.get(SESSION_COOKIE))
            request.state.heron_user = cached
        return cached  # type: ignore[return-value]

    # ----------------------------------------------------------------- cookies

    def secure(self, request: Request) -> bool:
        mode = self.config.cookie_secure.lower()
        return mode == "true" or (mode == "auto" and request.url.scheme == "https")

    def set_session_cookie(self, response: Response, request: Request, sid: str) -> None:
        response.set_cookie(
            SESSION_COOKIE,
            sid,
            max_age=self.session_ttl_s,
            path="/",
            secure=self.secure(request),
            httponly=True,
            samesite="lax",
        )

    def clear_session_cookie(self, response: Response, request: Request) -> None:
        response.delete_cookie(
            SESSION_COOKIE, path="/", secure=self.secure(request), httponly=True, samesite="lax"
        )

    def login_csrf_secret(self, request: Request) -> tuple[str, bool]:
        """The pre-session secret for the sign-in form and whether it is new."""
        current = request.cookies.get(LOGIN_CSRF_COOKIE)
        if well_formed(current):
            assert current is not None
            return current, False
        return new_secret(), True

    def set_login_csrf_cookie(self, response: Response, request: Request, secret: str) -> None:
        response.set_cookie(
            LOGIN_CSRF_COOKIE,
            secret,
            max_age=LOGIN_CSRF_MAX_AGE_S,
            path="/login",
            secure=self.secure(request),
            httponly=True,
            samesite="lax",
        )

    def clear_login_csrf_cookie(self, response: Response, request: Request) -> None:
        response.delete_cookie(
            LOGIN_CSRF_COOKIE,
            path="/login",
            secure=self.secure(request),
            httponly=True,
            samesite="lax",
        )


# ----------------------------------------------------------------------- CSRF


def derive_token(secret: str, purpose: bytes) -> str:
    mac = hmac.new(secret.encode(), purpose, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def token_matches(sent: str | None, secret: str | None, purpose: bytes) -> bool:
    if not sent or not well_formed(secret):
        return False
    assert secret is not None
    return hmac.compare_digest(sent.encode(), derive_token(secret, purpose).encode())


def cross_site(request: Request) -> bool:
    """Browsers say where a request came from; a cross-site form post is never ours."""
    return request.headers.get("sec-fetch-site") == "cross-site"


# ------------------------------------------------------------------ redirects


def safe_next(value: str | None, default: str = "/") -> str:
    """``value`` if it is a path on this server, else ``default`` (no open redirect).

    Rejects anything with a scheme or host, ``//`` and ``/\\`` prefixes (browsers read
    both as another host), backslashes and control characters or spaces (browsers drop
    tabs and newlines, turning ``/\\t/evil`` into ``//evil``), and sign-in pages
    themselves.
    """
    if not value or len(value) > 2048 or not value.startswith("/"):
        return default
    if any(c == "\\" or ord(c) <= 0x20 or ord(c) == 0x7F for c in value):
        return default
    parts = urlsplit(value)
    if value.startswith("//") or parts.scheme or parts.netloc:
        return default
    if parts.path == "/login" or parts.path.startswith(("/login/", "/logout")):
        return default
    return value


def request_path(request: Request) -> str:
    query = request.url.query
    return request.url.path + (f"?{query}" if query else "")


def wants_html(request: Request) -> bool:
    return "text/html" in request.headers.get("accept", "")


def auth_of(request: Request) -> Auth:
    auth: Auth = request.app.state.auth
    return auth
