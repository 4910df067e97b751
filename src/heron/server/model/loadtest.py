"""Load-test runs: a named, labelled time window with the load it carried (docs/loadtest.md).

A run is only a window and its metadata. The telemetry of the window (entry spans of
every service, database spans, runtime metrics) is what Heron already stores; a run's
figures and its comparison with a baseline run are computed from that on demand
(``query/loadtest.py``), so any load tool works: the CLI marks the window around the
tool's command (``heron loadtest run``), or a script calls the API at start and stop.

``NewRun`` is what a client sends to start a run (validated here, above the store);
``LoadTestRun`` is a stored run. ``labels`` and ``load`` are small free-form JSON objects:
labels are ``str -> str`` (branch, commit, build…), ``load`` is what the load tool reports
(users, spawn rate, duration, requests sent, failures, host), shown as given.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

RunStatus = Literal["running", "finished", "failed", "aborted"]
"""``finished``: the command exited 0 (or ``stop`` was called); ``failed``: it exited
non-zero; ``aborted``: the client gave up (Ctrl-C) — its window is still usable."""
RUN_STATUSES: tuple[str, ...] = RunStatus.__args__  # type: ignore[attr-defined]
Verdict = Literal["pass", "regression", "insufficient-data"]
VERDICTS: tuple[str, ...] = Verdict.__args__  # type: ignore[attr-defined]
Tool = Literal["command", "locust", "manual"]
"""``command``: ``heron loadtest run -- CMD``; ``locust``: the built-in Locust driver;
``manual``: ``heron loadtest start/stop`` or the API."""

MAX_LABELS = 32
MAX_NAME = 128
MAX_TEXT = 4096  # command line, one label value
MAX_LOAD_KEYS = 64


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class NewRun(_Strict):
    """``POST /api/v1/loadtests``: start a run now (or at ``start_ns``)."""

    name: str = Field(min_length=1, max_length=MAX_NAME)
    labels: dict[str, str] = Field(default_factory=dict)
    baseline: str | None = Field(default=None, max_length=MAX_NAME)
    """A run id (digits) or a run name (its newest finished run); checked when comparing."""
    command: str = Field(default="", max_length=MAX_TEXT)
    tool: Tool = "manual"
    service: str | None = Field(default=None, max_length=256)
    """Only this service's endpoints are compared (default: every service in the window)."""
    environment: str | None = Field(default=None, max_length=256)
    load: dict[str, Any] = Field(default_factory=dict)
    start_ns: int | None = Field(default=None, ge=0)
    """Default: the server's clock when the request arrives."""

    @field_validator("labels")
    @classmethod
    def _labels(cls, v: dict[str, str]) -> dict[str, str]:
        if len(v) > MAX_LABELS:
            raise ValueError(f"at most {MAX_LABELS} labels")
        for k, val in v.items():
            if not k or len(k) > MAX_NAME or len(val) > MAX_TEXT:
                raise ValueError(f"label {k[:40]!r}: keys 1-{MAX_NAME}, values <= {MAX_TEXT}")
        return v

    @field_validator("load")
    @classmethod
    def _load(cls, v: dict[str, Any]) -> dict[str, Any]:
        if len(v) > MAX_LOAD_KEYS:
            raise ValueError(f"at most {MAX_LOAD_KEYS} load keys")
        return v


class FinishRun(_Strict):
    """``POST /api/v1/loadtests/{id}/finish``: close the window now (or at ``end_ns``)."""

    status: Literal["finished", "failed", "aborted"] = "finished"
    exit_code: int | None = None
    load: dict[str, Any] | None = None
    """Replaces the run's ``load`` when given (the tool's final counts)."""
    end_ns: int | None = Field(default=None, ge=0)


@dataclass(frozen=True, slots=True)
class LoadTestRun:
    """A stored run. ``end_ns`` is None while it runs; ``verdict`` is the outcome of the
    last comparison made against ``baseline_id`` (None: never compared)."""

    id: int
    project_id: int
    name: str
    status: RunStatus
    start_ns: int
    end_ns: int | None
    tool: Tool
    command: str = ""
    service: str | None = None
    environment: str | None = None
    exit_code: int | None = None
    baseline: str | None = None
    baseline_id: int | None = None
    verdict: Verdict | None = None
    labels: dict[str, str] = field(default_factory=dict)
    load: dict[str, Any] = field(default_factory=dict)
    created_ns: int = 0
    updated_ns: int = 0
