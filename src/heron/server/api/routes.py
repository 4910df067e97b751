"""JSON read API routes. (Placeholder until the query layer lands.)"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import APIRouter

if TYPE_CHECKING:
    from heron.server.app import AppContext


def build_router(ctx: AppContext) -> APIRouter:
    return APIRouter(prefix="/api/v1")
