"""What one evaluation cycle shares: its samples' shape, the condition error, and the
read cache (:class:`CycleReads`). Kept apart from ``conditions`` so ``slo`` (which
``conditions`` calls for burn-rate conditions) can use them without an import cycle."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from heron.server import query
from heron.server.query import TimeRange
from heron.server.store.base import Store
from heron.server.store.rum import RumFilters

T = TypeVar("T")


class ConditionError(ValueError):
    """The condition cannot be evaluated as written (an unknown metric, a deleted SLO):
    the rule is marked broken with this message (a preview answers it with 400)."""


@dataclass(frozen=True, slots=True)
class Sample:
    """One group's value: an alert instance when it holds. ``link`` is a path of Heron's
    UI showing the group. ``holds`` overrides the op/threshold comparison (absence and
    SLO burn conditions decide themselves)."""

    labels: dict[str, str]
    value: float | None
    link: str
    holds: bool | None = None


class CycleReads:
    """Reads of one evaluation cycle, each made once: keyed by what was asked (project,
    window end and length, filters). Make a new one per cycle (cached values go stale)."""

    def __init__(self, store: Store, *, apdex_t_ms: float = 500.0) -> None:
        self.store = store
        self.apdex_t_ms = apdex_t_ms
        self._cache: dict[tuple[Any, ...], Any] = {}
        self.reads = 0
        self.seconds: dict[str, float] = {}
        """Time spent reading, by what was read (the key's first part)."""
        """Reads actually made (the rest were answered from the cache)."""

    def get(self, key: tuple[Any, ...], read: Callable[[], T]) -> T:
        """``read()``, made once per key; a read that raised raises again for every rule
        asking (it is not retried within the cycle)."""
        if key not in self._cache:
            self.reads += 1
            start = time.perf_counter()
            try:
                self._cache[key] = read()
            except Exception as err:
                self._cache[key] = _Failed(err)
            what = str(key[0])
            self.seconds[what] = self.seconds.get(what, 0.0) + time.perf_counter() - start
        got = self._cache[key]
        if isinstance(got, _Failed):
            raise got.err
        return got

    # ------------------------------------------------------------------ RED
    def services(
        self, pid: int, tr: TimeRange, env: str | None, release: str | None
    ) -> list[query.ServiceStats]:
        return self.get(
            ("services", pid, tr, env, release),
            lambda: query.service_table(
                self.store, pid, tr, environment=env, release=release, apdex_t_ms=self.apdex_t_ms
            ),
        )

    def endpoints(
        self, pid: int, tr: TimeRange, service: str, env: str | None, release: str | None
    ) -> list[query.EndpointStats]:
        return self.get(
            ("endpoints", pid, tr, service, env, release),
            lambda: query.endpoint_table(
                self.store,
                pid,
                tr,
                service,
                environment=env,
                release=release,
                apdex_t_ms=self.apdex_t_ms,
            ),
        )

    # ------------------------------------------------------------------ RUM
    def rum_figures(
        self, pid: int, tr: TimeRange, filters: RumFilters, metric: str, by: str | None
    ) -> dict[str, query.rum.MetricFigures]:
        """A RUM metric's figures per ``by`` group (``""`` without), from the rollup."""
        return self.get(
            ("rum", pid, tr, filters, metric, by),
            lambda: query.rum.figures_by_group(self.store, pid, tr, filters, metric, by),
        )


@dataclass(frozen=True, slots=True)
class _Failed:
    err: Exception
