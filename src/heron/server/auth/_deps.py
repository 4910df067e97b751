"""FastAPI dependencies for pages: ``require_user``, ``verify_csrf``; and ``csrf_token``."""

from __future__ import annotations

from starlette.requests import Request

from heron.server.auth._accounts import User
from heron.server.auth._web import (
    CSRF_FIELD,
    CSRF_HEADER,
    SESSION_COOKIE,
    SESSION_PURPOSE,
    CSRFRejected,
    LoginRequired,
    auth_of,
    cross_site,
    derive_token,
    request_path,
    token_matches,
)


def require_user(request: Request) -> User:
    """The signed-in user; otherwise raise LoginRequired (303 to sign-in, or 401).

    A plain ``def``: FastAPI runs it in its thread pool, so the session lookup never
    blocks the event loop.
    """
    user = auth_of(request).user_for(request)
    if user is None:
        raise LoginRequired(request_path(request))
    return user


def csrf_token(request: Request) -> str:
    """The CSRF token for forms on a signed-in page (put it in a ``csrf_token`` field)."""
    sid = request.cookies.get(SESSION_COOKIE)
    if auth_of(request).user_for(request) is None or sid is None:
        raise LoginRequired(request_path(request))
    return derive_token(sid, SESSION_PURPOSE)


async def verify_csrf(request: Request) -> None:
    """Reject (403) a state-changing request unless it carries this session's CSRF token,
    in the ``csrf_token`` form field or an ``X-CSRF-Token`` header. Safe methods pass, so
    it can guard a whole router."""
    if request.method in ("GET", "HEAD", "OPTIONS", "TRACE"):
        return
    if cross_site(request):
        raise CSRFRejected("cross-site request")
    sent = request.headers.get(CSRF_HEADER) or await _form_field(request, CSRF_FIELD)
    if not token_matches(sent, request.cookies.get(SESSION_COOKIE), SESSION_PURPOSE):
        raise CSRFRejected("missing or wrong CSRF token")


async def _form_field(request: Request, name: str) -> str | None:
    ctype = request.headers.get("content-type", "")
    if not ctype.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        return None
    value = (await request.form()).get(name)  # parsed once: FastAPI's Form() reuses it
    return value if isinstance(value, str) else None
