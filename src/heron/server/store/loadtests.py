"""Load-test runs (``model/loadtest.py``): the part of the state store that keeps them.

A run is a row of state (name, window, labels, load, verdict); its figures come from the
telemetry of its window through the readers (``TraceReader.request_samples``). Each
backend's state implements this (DuckDB: ``store/duckdb/loadtests.py``, PostgreSQL:
``store/postgres/loadtests.py``). No SQL above ``store/``.
"""

from __future__ import annotations

from typing import Any, Protocol

from heron.server.model.loadtest import LoadTestRun, NewRun, RunStatus, Verdict


class LoadTestStore(Protocol):
    def create_loadtest(
        self, project_id: int, run: NewRun, start_ns: int, now_ns: int
    ) -> LoadTestRun:
        """Store a new ``running`` run starting at ``start_ns``; ids grow."""
        ...

    def finish_loadtest(
        self,
        project_id: int,
        run_id: int,
        *,
        status: RunStatus,
        end_ns: int,
        exit_code: int | None,
        load: dict[str, Any] | None,
        now_ns: int,
    ) -> LoadTestRun | None:
        """Close a run's window (None: no such run). Finishing a finished run again
        changes nothing and returns it as stored (a retried request is harmless)."""
        ...

    def set_loadtest_verdict(
        self, project_id: int, run_id: int, baseline_id: int | None, verdict: Verdict, now_ns: int
    ) -> None:
        """Remember the last comparison's outcome and the baseline it used."""
        ...

    def get_loadtest(self, project_id: int, run_id: int) -> LoadTestRun | None: ...

    def latest_loadtest(
        self, project_id: int, name: str, before_id: int | None = None
    ) -> LoadTestRun | None:
        """The newest finished (or failed) run named ``name``, with an id below
        ``before_id`` when given (a run's baseline is never itself)."""
        ...

    def list_loadtests(
        self,
        project_id: int,
        *,
        name: str | None = None,
        limit: int = 100,
        before_id: int | None = None,
    ) -> list[LoadTestRun]:
        """Newest first; ``before_id`` pages back."""
        ...

    def delete_loadtest(self, project_id: int, run_id: int) -> bool: ...
