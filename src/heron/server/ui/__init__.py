"""Server-rendered HTML pages (placeholder until the UI lands)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import APIRouter

if TYPE_CHECKING:
    from heron.server.app import AppContext


def build_ui_router(ctx: AppContext) -> APIRouter:
    return APIRouter()
