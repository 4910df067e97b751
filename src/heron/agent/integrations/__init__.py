"""Integrations: one module per library, each set up when the app imports that library.

Every integration module follows one contract (sentry-python's ``integrations/``,
OpenTelemetry's ``BaseInstrumentor``):

- ``NAME``: its name in ``heron.init(instrument=...)``, ``HERON_INSTRUMENT`` and
  ``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS``;
- ``DISTRIBUTION`` and ``MIN_VERSION``: the library and the oldest version supported
  (``""`` for a module of the standard library);
- ``TRIGGER``: the module whose import runs ``setup()``. Hooking the import (rather than
  importing every installed framework in ``init()``) costs nothing for libraries the app
  never uses, and works whether the app imports them before or after ``heron.init()``;
- ``setup()``: idempotent; uses only the OpenTelemetry API and its contrib
  instrumentations, never the SDK; ``teardown()`` undoes it (for tests).
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import logging
import re
from collections.abc import Callable
from types import ModuleType
from typing import Protocol, cast

from heron.agent.config import AgentConfig
from heron.agent.guard import capture_internal_exceptions

logger = logging.getLogger("heron.agent")

NAMES = (
    "flask",
    "django",
    "fastapi",
    "requests",
    "httpx",
    # Databases (their shared span logic is in ``_db``):
    "psycopg",
    "psycopg2",
    "sqlite3",
    "sqlalchemy",
    "pymysql",
    "mysqlclient",
    "redis",
)


class Integration(Protocol):
    NAME: str
    DISTRIBUTION: str
    MIN_VERSION: tuple[int, ...]
    TRIGGER: str

    def setup(self) -> None: ...

    def teardown(self) -> None: ...


def load(name: str) -> Integration:
    """The integration module called ``name``."""
    return cast(Integration, importlib.import_module(f"{__name__}.{name}"))


def installed_version(distribution: str) -> tuple[int, ...] | None:
    """The installed version of ``distribution`` as integers, or None if not installed."""
    try:
        version = importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None
    return tuple(int(part) for part in re.findall(r"\d+", version.split("+")[0])[:3])


def check_supported(integration: Integration) -> str | None:
    """Why ``integration`` cannot be set up here, or None if it can."""
    if not integration.DISTRIBUTION:  # the standard library's
        return None
    version = installed_version(integration.DISTRIBUTION)
    if version is None:
        return f"{integration.DISTRIBUTION} is not installed"
    if version < integration.MIN_VERSION:
        minimum = ".".join(map(str, integration.MIN_VERSION))
        return f"{integration.DISTRIBUTION} {'.'.join(map(str, version))} is older than {minimum}"
    return None


def _on_import(integration: Integration) -> Callable[[ModuleType], None]:
    def hook(_module: ModuleType) -> None:
        with capture_internal_exceptions:  # an import in the app must never fail for us
            problem = check_supported(integration)
            if problem is not None:
                logger.warning("heron: not instrumenting %s: %s", integration.NAME, problem)
                return
            integration.setup()
            logger.debug("heron: instrumented %s", integration.NAME)

    return hook


def wanted_integrations(config: AgentConfig) -> tuple[str, ...]:
    """The integration names ``config`` asks for, in a stable order."""
    asked = NAMES if config.integrations is None else config.integrations
    for name in asked:
        if name not in NAMES:
            logger.warning("heron: unknown integration %r (known: %s)", name, ", ".join(NAMES))
    return tuple(n for n in NAMES if n in asked and n not in config.disabled_integrations)


def setup_integrations(config: AgentConfig) -> tuple[str, ...]:
    """Arrange for each wanted integration to set itself up when its library is imported."""
    from wrapt import register_post_import_hook

    scheduled = []
    for name in wanted_integrations(config):
        integration = load(name)
        if importlib.util.find_spec(integration.TRIGGER.partition(".")[0]) is None:
            if config.integrations is not None:  # asked for by name: say why not
                logger.warning("heron: not instrumenting %s: it is not installed", name)
            continue
        register_post_import_hook(_on_import(integration), integration.TRIGGER)
        scheduled.append(name)
    return tuple(scheduled)
