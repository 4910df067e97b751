"""Sign-in for the UI and the read API: users, sessions, CSRF.

For page authors (``heron.server.ui``)::

    from heron.server.auth import User, csrf_token, require_user, verify_csrf

    router = APIRouter(dependencies=[Depends(require_user), Depends(verify_csrf)])

    @router.get("/things")
    def things(request: Request, user: Annotated[User, Depends(require_user)]) -> Response:
        ...render(..., user=user, csrf_token=csrf_token(request))

    # in a template: <input type="hidden" name="csrf_token" value="{{ csrf_token }}">
    # sign out:      <form method="post" action="/logout"> + that hidden field

- ``require_user`` (dependency) returns the signed-in :class:`User` (id, username,
  is_admin). Without a valid session it answers **303 to** ``/login?next=<path>`` when the
  request accepts ``text/html`` (a browser navigating), else **401** ``{"error": ...}``
  (``fetch()`` calls). FastAPI caches it per request, so the router-level dependency and a
  handler's ``user`` parameter cost one lookup.
- ``verify_csrf`` (dependency) answers **403** to a POST/PUT/PATCH/DELETE unless it carries
  this session's token in the form field ``csrf_token`` or an ``X-CSRF-Token`` header, or
  when the browser says the request is cross-site. GET/HEAD pass, so one router-level
  dependency guards every form. Form bodies are parsed once (FastAPI's ``Form()`` reuses
  the parse).
- ``csrf_token(request)`` returns that token for a signed-in request.

Design (secure by default):

- Passwords: argon2id (argon2-cffi defaults), at most two hashes at a time, a dummy hash
  for unknown usernames; failed sign-ins limited per (client, username) and per client.
- Sessions are server-side: the cookie ``heron_session`` holds a random 256-bit id and the
  store only its SHA-256, with user and expiry (``session_days``). Signing in always
  starts a new session (and ends the browser's previous one); signing out, a password
  change and deleting a user end sessions at once. Cookie: HttpOnly, SameSite=Lax,
  Path=/, Secure when the request is HTTPS (``cookie_secure = "auto"``), so
  ``heron serve`` on http://127.0.0.1 works out of the box (browsers drop Secure cookies
  set over plain http on 127.0.0.1); ``cookie_secure = "true"`` forces it behind a TLS
  proxy that does not send ``X-Forwarded-Proto``.
- CSRF: a page's token is HMAC-SHA256 keyed by the session id, so it is bound to the
  session and nothing is stored. The sign-in form uses a pre-session cookie
  ``heron_login_csrf`` (Path=/login) the same way. ``next`` accepts local paths only.
- One-time sign-in links (``/login/once?token=...``, made by ``heron demo``): random
  256-bit, stored as SHA-256 with an expiry, consumed in one writer transaction.
- On first start, if no user exists, ``admin`` is created with ``HERON_ADMIN_PASSWORD`` or
  a generated password that ``heron serve`` prints once. ``heron users`` manages users.

The read API (``/api/v1``) accepts a session cookie or ``Authorization: Bearer <api
token>`` (``heron.server.api._auth``); ingest routes accept only ingest keys.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from heron.server.auth._accounts import User
from heron.server.auth._deps import csrf_token, require_user, verify_csrf
from heron.server.auth._offline import DatabaseInUse, prepare_one_time_sign_in
from heron.server.auth._routes import on_csrf_rejected, on_login_required, router
from heron.server.auth._web import Auth, CSRFRejected, LoginRequired

if TYPE_CHECKING:
    from fastapi import FastAPI

    from heron.server.context import AppContext
    from heron.server.projects import Bootstrap

__all__ = [
    "Auth",
    "CSRFRejected",
    "DatabaseInUse",
    "LoginRequired",
    "User",
    "csrf_token",
    "install_auth",
    "prepare_one_time_sign_in",
    "require_user",
    "verify_csrf",
]


def install_auth(app: FastAPI, ctx: AppContext) -> None:
    """Add sign-in routes and error handlers; create the first admin on first start."""
    auth = Auth(ctx.config, ctx.store, clock=ctx.clock)
    app.state.auth = auth

    def create_first_admin(_bootstrap: Bootstrap) -> None:
        auth.bootstrap_admin()

    ctx.on_bootstrap.append(create_first_admin)
    app.add_exception_handler(LoginRequired, on_login_required)
    app.add_exception_handler(CSRFRejected, on_csrf_rejected)
    app.include_router(router)
