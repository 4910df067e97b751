"""The read API's one authentication dependency: an API token or a signed-in session.

``Authorization: Bearer <api token>`` is for scripts; the ``heron_session`` cookie lets
the UI's own pages call the API. A bearer header that is present but wrong is refused
even when a session cookie is valid, so a misconfigured script fails loudly. Cookies
need no CSRF check here: every read-API route is a GET without side effects.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer

from heron.server.context import Ctx
from heron.server.errors import Unauthorized

_CHALLENGE = {"WWW-Authenticate": "Bearer"}
_SCHEME = HTTPBearer(
    auto_error=False,
    scheme_name="apiToken",
    description="The API token printed by `heron serve` on first start (HERON_API_TOKEN).",
)
_SESSION = APIKeyCookie(
    name="heron_session",
    auto_error=False,
    scheme_name="session",
    description="The session cookie set by signing in at /login.",
)


def require_api_token(
    request: Request,
    ctx: Ctx,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_SCHEME)],
    session: Annotated[str | None, Depends(_SESSION)],
) -> None:
    """A dependency that raises 401 unless the request has a valid API token or session.

    A plain ``def``: FastAPI runs it in its thread pool, so the session lookup never
    blocks the event loop.
    """
    if credentials is not None and credentials.credentials:
        if ctx.projects.token_valid(credentials.credentials):
            return
        raise Unauthorized("invalid API token", _CHALLENGE)
    auth = getattr(request.app.state, "auth", None)
    if session and auth is not None and auth.user_for(request) is not None:
        return
    raise Unauthorized(
        "missing API token: send 'Authorization: Bearer <api token>' or sign in",
        _CHALLENGE,
    )
