"""What routes need from the running server: config, store, projects, clock.

Routers in ``api/``, ``ui/`` and ``auth/`` are module level and reach the context through
the :func:`get_ctx` dependency, never by importing ``app.py`` (which builds the context
and includes the routers); so imports flow one way: app → routes → context.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends
from starlette.requests import Request

from heron.server.config import Config
from heron.server.projects import Bootstrap, Projects
from heron.server.store.base import Store

DEFAULT_PROJECT_ID = 1


@dataclass
class AppContext:
    """Everything a route needs; tests build one with their own store and clock."""

    config: Config
    store: Store
    projects: Projects
    clock: Callable[[], int] = time.time_ns
    bootstrap: Bootstrap | None = None
    on_bootstrap: list[Callable[[Bootstrap], None]] = field(default_factory=list)

    @property
    def project_id(self) -> int:
        """The project routes read (the bootstrapped one; 1 before the lifespan ran)."""
        return self.bootstrap.project_id if self.bootstrap else DEFAULT_PROJECT_ID


def ctx_of(request: Request) -> AppContext:
    """The app's context of a request."""
    ctx: AppContext = request.app.state.ctx
    return ctx


async def get_ctx(request: Request) -> AppContext:
    """The app's context, as a FastAPI dependency (``async``: it does no I/O, and a plain
    ``def`` dependency costs a thread-pool hop per request)."""
    return ctx_of(request)


Ctx = Annotated[AppContext, Depends(get_ctx)]
