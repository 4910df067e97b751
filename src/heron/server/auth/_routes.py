"""The sign-in pages: ``/login`` (form and post), ``/logout`` and ``/login/once``.

Every answer here carries ``Cache-Control: no-store`` and a strict CSP, and every value
rendered goes through Jinja2's autoescaping. Failed sign-ins all read the same ("wrong
username or password") and cost the same (a dummy hash for unknown users).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qsl, quote

import anyio.to_thread
from fastapi import APIRouter, Query
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from heron.server.auth._deps import verify_csrf
from heron.server.auth._web import (
    LOGIN_CSRF_COOKIE,
    LOGIN_PURPOSE,
    SESSION_COOKIE,
    LoginRequired,
    auth_of,
    cross_site,
    derive_token,
    safe_next,
    token_matches,
    wants_html,
)

_HERE = Path(__file__).parent / "templates"
_TEMPLATES = Environment(loader=FileSystemLoader(_HERE), autoescape=select_autoescape(default=True))
_STYLE = (_HERE / "style.css").read_bytes()
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}
WRONG = "Wrong username or password."
FORM_EXPIRED = "This sign-in form has expired or was not sent from Heron. Please try again."
BAD_FORM = "The sign-in request was not understood. Please try again."
MAX_FORM_BYTES = 8192
_URLENCODED = "application/x-www-form-urlencoded"
LINK_INVALID = (
    "This sign-in link is invalid, has expired or was already used. "
    "Sign in with your username and password."
)


async def _read_small_form(request: Request) -> dict[str, str] | None:
    """The sign-in form's fields, or None unless it is a small URL-encoded body. Read here
    rather than by FastAPI, so an anonymous client cannot make the server buffer a large
    body; the first value of a repeated field wins."""
    if not request.headers.get("content-type", "").startswith(_URLENCODED):
        return None
    declared = request.headers.get("content-length", "0")
    if not declared.isdigit() or int(declared) > MAX_FORM_BYTES:
        return None
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            return None
    try:
        pairs = parse_qsl(body.decode(), keep_blank_values=True, max_num_fields=16)
    except (UnicodeDecodeError, ValueError):
        return None
    form: dict[str, str] = {}
    for key, value in pairs:
        form.setdefault(key, value)
    return form


def _html(template: str, status: int, **values: Any) -> HTMLResponse:
    body = _TEMPLATES.get_template(template).render(**values)
    return HTMLResponse(body, status, headers=SECURITY_HEADERS)


def _redirect(location: str, **extra: str) -> RedirectResponse:
    return RedirectResponse(location, 303, headers={**SECURITY_HEADERS, **extra})


def login_page(
    request: Request,
    status: int = 200,
    *,
    error: str | None = None,
    username: str = "",
    next_path: str = "/",
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    """The sign-in form, with a CSRF token bound to the pre-session cookie."""
    auth = auth_of(request)
    secret, new = auth.login_csrf_secret(request)
    response = _html(
        "login.html",
        status,
        title="Sign in",
        error=error,
        username=username[:64],
        next=safe_next(next_path),
        csrf_token=derive_token(secret, LOGIN_PURPOSE),
    )
    response.headers.update(headers or {})
    if new:
        auth.set_login_csrf_cookie(response, request, secret)
    return response


router = APIRouter(include_in_schema=False)


@router.get("/login")
def login_form(request: Request, next_path: Annotated[str, Query(alias="next")] = "/") -> Response:
    if auth_of(request).user_for(request) is not None:
        return _redirect(safe_next(next_path))
    return login_page(request, next_path=next_path)


@router.post("/login")
async def login(request: Request) -> Response:
    auth = auth_of(request)
    form = await _read_small_form(request)
    if form is None:
        return login_page(request, 400, error=BAD_FORM)
    username, password = form.get("username", ""), form.get("password", "")
    page: dict[str, Any] = {"username": username, "next_path": form.get("next", "/")}
    if cross_site(request) or not token_matches(
        form.get("csrf_token"), request.cookies.get(LOGIN_CSRF_COOKIE), LOGIN_PURPOSE
    ):
        return login_page(request, 403, error=FORM_EXPIRED, **page)
    client = request.client.host if request.client else "unknown"
    name = username.strip().lower()[:128]
    wait = auth.limiter.retry_after(client, name)
    if wait > 0:
        minutes = math.ceil(wait / 60)
        error = f"Too many failed sign-ins. Try again in {minutes} minute(s)."
        retry = {"Retry-After": str(math.ceil(wait))}
        return login_page(request, 429, error=error, headers=retry, **page)
    # Waiting sign-ins queue here as coroutines, not as threads of the shared pool:
    # a burst of them cannot starve the pages and the API of threads.
    user_id = await anyio.to_thread.run_sync(
        auth.check_password, username, password, limiter=auth.sign_in_slots()
    )
    if user_id is None:
        auth.limiter.failed(client, name)
        return login_page(request, 401, error=WRONG, **page)
    auth.limiter.succeeded(client, name)
    # A new session id on every sign-in: a session id planted before sign-in (session
    # fixation) is never promoted, and the browser's previous session ends.
    sid = await run_in_threadpool(
        auth.accounts.start_session,
        user_id,
        auth.session_ttl_s,
        request.cookies.get(SESSION_COOKIE),
    )
    response = _redirect(safe_next(page["next_path"]))
    auth.set_session_cookie(response, request, sid)
    auth.clear_login_csrf_cookie(response, request)
    return response


@router.get("/login/once")
def login_once(
    request: Request,
    token: str = "",
    next_path: Annotated[str, Query(alias="next")] = "/",
) -> Response:
    auth = auth_of(request)
    redeemed = auth.accounts.redeem_login_token(
        token, auth.session_ttl_s, replaces=request.cookies.get(SESSION_COOKIE)
    )
    if redeemed is None:
        return login_page(
            request, 400, error=LINK_INVALID, headers={"Referrer-Policy": "no-referrer"}
        )
    # The token is spent, but keep it out of Referer headers all the same.
    response = _redirect(safe_next(next_path), **{"Referrer-Policy": "no-referrer"})
    auth.set_session_cookie(response, request, redeemed[1])
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    auth = auth_of(request)
    if await run_in_threadpool(auth.user_for, request) is not None:
        await verify_csrf(request)
        await run_in_threadpool(auth.accounts.end_session, request.cookies.get(SESSION_COOKIE))
    response = _redirect("/login")
    auth.clear_session_cookie(response, request)
    return response


@router.get("/login/style.css")
def style() -> Response:
    return Response(
        _STYLE,
        media_type="text/css",
        headers={"Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"},
    )


async def on_login_required(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, LoginRequired)
    if wants_html(request):
        return _redirect(f"/login?next={quote(safe_next(exc.next_path), safe='')}")
    return JSONResponse({"error": "sign-in required"}, 401, headers={"Cache-Control": "no-store"})


async def on_csrf_rejected(request: Request, exc: Exception) -> Response:
    if wants_html(request):
        return _html(
            "message.html",
            403,
            title="Request refused",
            message=(
                "This form has expired or was not sent from Heron. "
                "Go back, reload the page and try again."
            ),
            back="/",
            back_label="Back to Heron",
        )
    return JSONResponse({"error": f"forbidden: {exc}"}, 403)
