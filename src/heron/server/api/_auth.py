"""The read API's one authentication dependency: a bearer API token."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from heron.server.errors import Unauthorized

if TYPE_CHECKING:
    from heron.server.projects import Projects

_CHALLENGE = {"WWW-Authenticate": "Bearer"}
_SCHEME = HTTPBearer(
    auto_error=False,
    scheme_name="apiToken",
    description="The API token printed by `heron serve` on first start (HERON_API_TOKEN).",
)


def require_api_token(projects: Projects) -> Callable[..., None]:
    """A dependency that raises 401 unless ``Authorization: Bearer <api token>`` is valid."""

    def check(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_SCHEME)],
    ) -> None:
        if credentials is None or not credentials.credentials:
            raise Unauthorized(
                "missing API token: send 'Authorization: Bearer <api token>'", _CHALLENGE
            )
        if not projects.token_valid(credentials.credentials):
            raise Unauthorized("invalid API token", _CHALLENGE)

    return check
