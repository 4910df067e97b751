"""Users, sign-in sessions and CSRF (placeholder until auth lands)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastapi import FastAPI

    from heron.server.app import AppContext


def install_auth(app: FastAPI, ctx: AppContext) -> None:
    """Add sign-in routes and session handling to the app."""
