"""Alerting's JSON (and TOML) formats: rules, channels, silences and SLOs.

What a user writes, in the API, the UI's editors and rule files (docs/alerting.md), and
what the state store keeps as JSON text (``to_json``). Unknown fields are refused, so a
typo fails loudly; durations are seconds or strings like ``"30s"``, ``"5m"``, ``"1h"``,
``"2d"``. ``parse_*`` turn a ValidationError into :class:`SpecError`, whose message names
each wrong field (the API answers it with 400).

A rule's condition yields samples (labels → value); each sample is one alert instance,
keyed by its labels (``alertname``, ``severity``, the rule's labels and the sample's own,
e.g. ``service``). The evaluator compares the value with ``op``/``threshold``; a sample
that holds for ``for`` seconds fires, and a firing one resolves once it no longer holds
(and, with ``recover_threshold``, once the value is back past that too) for
``keep_firing_for`` seconds.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime, timezone
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from heron.server.model.dashboard import Agg

Severity = Literal["critical", "warning", "info"]
SEVERITIES: tuple[str, ...] = Severity.__args__  # type: ignore[attr-defined]
Op = Literal[">", ">=", "<", "<="]
# RED figures over the window (latency in milliseconds, error rate in percent, throughput
# in requests per minute, Apdex 0..1).
RedFigure = Literal[
    "p50_ms",
    "p95_ms",
    "p99_ms",
    "mean_ms",
    "error_rate",
    "throughput_rpm",
    "requests",
    "errors",
    "apdex",
]
RED_FIGURES: tuple[str, ...] = RedFigure.__args__  # type: ignore[attr-defined]
ConfigKind = Literal["rule", "channel", "silence", "slo"]
# Instance states as stored; "inactive" instances are not stored (or deleted).
InstanceState = Literal["pending", "firing", "resolved"]

MAX_LABELS = 32
MAX_CHANNELS = 10
MAX_MATCHERS = 16
MAX_WINDOW_S = 30 * 86400
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$")
_UNIT_S = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400, None: 1}
_LABEL = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]{0,127}$")


class SpecError(ValueError):
    """A spec is invalid; the message names each wrong field (→ 400)."""


def parse_duration(value: Any) -> int:
    """Whole seconds from a number of seconds or a string such as ``"90s"``, ``"5m"``."""
    if isinstance(value, bool):
        raise ValueError("a duration is a number of seconds or a string like '5m'")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and (m := _DURATION.match(value)):
        seconds = float(m.group(1)) * _UNIT_S[m.group(2)]
    else:
        raise ValueError(f"invalid duration {value!r}: use seconds or e.g. '30s', '5m', '1h', '2d'")
    if seconds < 0:
        raise ValueError("a duration cannot be negative")
    return round(seconds)


Duration = Annotated[int, BeforeValidator(parse_duration)]
Name = Annotated[str, Field(min_length=1, max_length=200)]
Text = Annotated[str, Field(max_length=4000)]
LabelValue = Annotated[str, Field(max_length=1024)]


def _check_labels(value: dict[str, str]) -> dict[str, str]:
    if len(value) > MAX_LABELS:
        raise ValueError(f"at most {MAX_LABELS} labels")
    for key in value:
        if not _LABEL.match(key):
            raise ValueError(f"label name {key!r} must match [A-Za-z_][A-Za-z0-9_.]*")
    return value


class _Strict(BaseModel):
    model_config = ConfigDict(
        extra="forbid", frozen=True, str_strip_whitespace=True, populate_by_name=True
    )


# ----------------------------------------------------------------------- conditions
class _Compared(_Strict):
    window: Annotated[Duration, Field(ge=60, le=MAX_WINDOW_S)] = 300
    """The window the value is computed over, ending now (whole minutes for RED)."""
    op: Op = ">"
    threshold: float = 0.0


class RedCondition(_Compared):
    """A RED figure of each service (``per="service"``) or each endpoint, optionally one
    ``service``/``endpoint`` only; ``environment``/``release`` filter the requests."""

    kind: Literal["red"]
    figure: RedFigure
    per: Literal["service", "endpoint"] = "service"
    service: Annotated[str | None, Field(max_length=256)] = None
    endpoint: Annotated[str | None, Field(max_length=1024)] = None
    environment: Annotated[str | None, Field(max_length=256)] = None
    release: Annotated[str | None, Field(max_length=256)] = None
    min_requests: Annotated[int, Field(ge=0)] = 1
    """A group with fewer requests in the window has no value (never fires)."""

    @model_validator(mode="after")
    def _endpoint_needs_service(self) -> RedCondition:
        if self.endpoint is not None and self.service is None:
            raise ValueError("endpoint needs a service")
        return self


class MetricCondition(_Compared):
    """``agg`` of a stored metric over the window, one instance per ``by`` group."""

    kind: Literal["metric"]
    metric: Annotated[str, Field(min_length=1, max_length=256)]
    agg: Agg = "avg"
    by: Annotated[
        list[Annotated[str, Field(min_length=1, max_length=256)]], Field(max_length=5)
    ] = []
    filter: dict[Annotated[str, Field(min_length=1, max_length=256)], LabelValue] = {}


class ErrorCondition(_Compared):
    """``new_issue``: an issue first seen in the window (one instance per issue);
    ``regression``: an issue that regressed in the window; ``rate``: an issue's events in
    the window ``op threshold`` (``issue_id`` one issue, else each issue)."""

    kind: Literal["error"]
    event: Literal["new_issue", "regression", "rate"]
    service: Annotated[str | None, Field(max_length=256)] = None
    environment: Annotated[str | None, Field(max_length=256)] = None
    issue_id: Annotated[int | None, Field(ge=1)] = None


class DbCondition(_Compared):
    """``slow_queries``: slow queries (over the slow-query threshold) in the window, per
    service; ``fingerprint_p95``: a query fingerprint's p95 in milliseconds (``fingerprint``
    one, else each); ``n_plus_one``: N+1 findings first seen in the window, one per finding."""

    kind: Literal["db"]
    event: Literal["slow_queries", "fingerprint_p95", "n_plus_one"]
    service: Annotated[str | None, Field(max_length=256)] = None
    fingerprint: Annotated[str | None, Field(pattern=r"^[0-9a-fA-F]{1,16}$")] = None


class AbsenceCondition(_Strict):
    """A service (``target="service"``) or metric that reported within ``lookback`` but
    not within ``window``: one instance per service (or per metric series group)."""

    kind: Literal["absence"]
    target: Literal["service", "metric"]
    service: Annotated[str | None, Field(max_length=256)] = None
    metric: Annotated[str | None, Field(max_length=256)] = None
    by: Annotated[
        list[Annotated[str, Field(min_length=1, max_length=256)]], Field(max_length=5)
    ] = []
    filter: dict[Annotated[str, Field(min_length=1, max_length=256)], LabelValue] = {}
    window: Annotated[Duration, Field(ge=60, le=MAX_WINDOW_S)] = 600
    lookback: Annotated[Duration, Field(ge=120, le=MAX_WINDOW_S)] = 86400

    @model_validator(mode="after")
    def _target_named(self) -> AbsenceCondition:
        if self.target == "metric" and not self.metric:
            raise ValueError("an absence of a metric needs metric")
        if self.lookback <= self.window:
            raise ValueError("lookback must be longer than window")
        return self


class SloBurnCondition(_Strict):
    """The multi-window burn-rate alert of an SLO (generated from the SLO, not written by
    hand): ``page`` = 14.4x over 1 h and 5 m or 6x over 6 h and 30 m, ``ticket`` = 3x
    over 1 d and 2 h or 1x over 3 d and 6 h (for 30 days; scaled to the SLO's window)."""

    kind: Literal["slo_burn"]
    slo_id: Annotated[int, Field(ge=1)]
    alert: Literal["page", "ticket"]


class RumCondition(_Compared):
    """A web vital (or the page ``load`` time) of real users from the RUM rollup over the
    window: its ``p75`` (default), ``p50``, ``p95`` (ms; CLS unitless), ``poor_share``
    (percent of samples rated poor, vitals only) or ``samples`` (count); optionally one
    app/environment/page/browser/device only, one instance per ``by`` group. A group with
    fewer than ``min_samples`` samples has no value (never fires)."""

    kind: Literal["rum"]
    vital: Literal["LCP", "INP", "CLS", "FCP", "TTFB", "load"]
    figure: Literal["p75", "p50", "p95", "poor_share", "samples"] = "p75"
    app: Annotated[str | None, Field(max_length=256)] = None
    environment: Annotated[str | None, Field(max_length=256)] = None
    page: Annotated[str | None, Field(max_length=2000)] = None
    browser: Annotated[str | None, Field(max_length=256)] = None
    device: Literal["desktop", "mobile", "tablet", "other"] | None = None
    by: Literal["page", "browser", "device", "app"] | None = None
    min_samples: Annotated[int, Field(ge=0, le=1_000_000_000)] = 20

    @model_validator(mode="after")
    def _poor_share_of_vitals(self) -> RumCondition:
        if self.figure == "poor_share" and self.vital == "load":
            raise ValueError("poor_share is for web vitals (LCP, INP, CLS, FCP, TTFB), not load")
        return self


Condition = Annotated[
    RedCondition
    | MetricCondition
    | ErrorCondition
    | DbCondition
    | AbsenceCondition
    | SloBurnCondition
    | RumCondition,
    Field(discriminator="kind"),
]
CONDITION_KINDS = ("red", "metric", "error", "db", "absence", "slo_burn", "rum")


class Annotations(_Strict):
    """Jinja templates (sandboxed) rendered per instance with ``value``, ``threshold``,
    ``labels`` (a dict), ``link`` (the Heron page of the instance) and ``rule``."""

    summary: Text = ""
    description: Text = ""
    runbook_url: Annotated[str, Field(max_length=2048)] = ""


class RuleSpec(_Strict):
    """An alert rule."""

    name: Name
    enabled: bool = True
    severity: Severity = "warning"
    condition: Condition
    for_: Annotated[Duration, Field(alias="for", ge=0, le=MAX_WINDOW_S)] = 0
    """How long a sample must hold before the instance fires (pending until then)."""
    keep_firing_for: Annotated[Duration, Field(ge=0, le=MAX_WINDOW_S)] = 0
    """How long a firing instance must stop holding before it resolves (anti-flapping)."""
    recover_threshold: float | None = None
    """Hysteresis: a firing instance resolves only once the value is back past this
    (below it for ``>``/``>=``, above it for ``<``/``<=``)."""
    interval: Annotated[Duration, Field(ge=10, le=3600)] = 60
    """How often the rule is evaluated."""
    labels: Annotated[dict[str, LabelValue], Field()] = {}
    annotations: Annotations = Annotations()
    channels: Annotated[list[Name], Field(max_length=MAX_CHANNELS)] = []
    """Channel names notified of this rule's alerts."""
    group_by: Annotated[
        list[Annotated[str, Field(min_length=1, max_length=128)]], Field(max_length=10)
    ] = ["alertname"]
    """Labels whose values group alerts into one notification."""
    group_wait: Annotated[Duration, Field(ge=0, le=3600)] = 30
    group_interval: Annotated[Duration, Field(ge=0, le=86400)] = 300
    repeat_interval: Annotated[Duration | None, Field(ge=60, le=7 * 86400)] = None
    """Re-send while firing; default by severity: 5 min critical, 15 min otherwise."""
    send_resolved: bool = True
    group: Annotated[str | None, Field(max_length=200)] = None
    """Inhibition group: while a critical instance of a rule of this group fires, the
    warning and info instances with the same condition labels (e.g. the same service) in
    the group are muted."""
    escalate_after: Annotated[Duration | None, Field(ge=60, le=7 * 86400)] = None
    escalate_to: Annotated[list[Name], Field(max_length=MAX_CHANNELS)] = []
    """An unacknowledged critical alert firing for ``escalate_after`` is also sent here."""

    @field_validator("labels")
    @classmethod
    def _labels(cls, value: dict[str, str]) -> dict[str, str]:
        return _check_labels(value)

    @model_validator(mode="after")
    def _escalation(self) -> RuleSpec:
        if self.escalate_to and self.escalate_after is None:
            raise ValueError("escalate_to needs escalate_after")
        if self.escalate_after is not None and not self.escalate_to:
            raise ValueError("escalate_after needs escalate_to (the second channel)")
        return self

    def effective_repeat_s(self) -> int:
        if self.repeat_interval is not None:
            return self.repeat_interval
        return 300 if self.severity == "critical" else 900

    def to_json(self) -> str:
        return self.model_dump_json(by_alias=True)


# ------------------------------------------------------------------------- channels
HttpUrl = Annotated[str, Field(min_length=8, max_length=2048, pattern=r"^https?://")]


class SlackChannel(_Strict):
    type: Literal["slack"]
    url: HttpUrl
    """The incoming webhook URL (a secret: shown masked)."""


class EmailChannel(_Strict):
    type: Literal["email"]
    host: Annotated[str, Field(min_length=1, max_length=255)]
    port: Annotated[int, Field(ge=1, le=65535)] = 587
    security: Literal["starttls", "ssl", "none"] = "starttls"
    username: Annotated[str, Field(max_length=255)] = ""
    password: Annotated[str, Field(max_length=1024)] = ""
    from_addr: Annotated[str, Field(alias="from", min_length=3, max_length=320)]
    to: Annotated[
        list[Annotated[str, Field(min_length=3, max_length=320)]],
        Field(min_length=1, max_length=50),
    ]


class WebhookChannel(_Strict):
    """POSTs Alertmanager's webhook JSON (version 4) to ``url``."""

    type: Literal["webhook"]
    url: HttpUrl
    headers: dict[
        Annotated[str, Field(max_length=256)], Annotated[str, Field(max_length=4096)]
    ] = {}
    max_alerts: Annotated[int, Field(ge=0)] = 0


class PagerDutyChannel(_Strict):
    type: Literal["pagerduty"]
    routing_key: Annotated[str, Field(min_length=1, max_length=256)]
    url: HttpUrl = "https://events.pagerduty.com/v2/enqueue"


class AlertmanagerChannel(_Strict):
    """Pushes alerts to an Alertmanager (``POST {url}/api/v2/alerts``), which then groups
    and routes them itself."""

    type: Literal["alertmanager"]
    url: HttpUrl


class LogChannel(_Strict):
    """Writes each notification to the server log (logger ``heron.alerts``)."""

    type: Literal["log"]


ChannelConfig = Annotated[
    SlackChannel
    | EmailChannel
    | WebhookChannel
    | PagerDutyChannel
    | AlertmanagerChannel
    | LogChannel,
    Field(discriminator="type"),
]
CHANNEL_TYPES = ("slack", "email", "webhook", "pagerduty", "alertmanager", "log")
# Fields of a channel's config that are secrets: never returned by the API (masked).
SECRET_FIELDS = {
    "slack": ("url",),
    "email": ("password",),
    "pagerduty": ("routing_key",),
    "webhook": ("headers",),
}


class ChannelSpec(_Strict):
    name: Name
    config: ChannelConfig

    def to_json(self) -> str:
        return self.model_dump_json(by_alias=True)


# ------------------------------------------------------------------------- silences
class Matcher(_Strict):
    label: Annotated[str, Field(min_length=1, max_length=128)]
    value: LabelValue
    op: Literal["=", "!=", "=~", "!~"] = "="

    @model_validator(mode="after")
    def _regex(self) -> Matcher:
        if self.op in ("=~", "!~"):
            try:
                re.compile(self.value)
            except re.error as err:
                raise ValueError(f"invalid regular expression: {err}") from None
        return self

    def matches(self, labels: dict[str, str]) -> bool:
        got = labels.get(self.label, "")
        if self.op == "=":
            return got == self.value
        if self.op == "!=":
            return got != self.value
        hit = re.fullmatch(self.value, got) is not None
        return hit if self.op == "=~" else not hit


class SilenceSpec(_Strict):
    """Mutes notifications of the alert instances whose labels match every matcher,
    from ``starts`` to ``ends`` (the alerts still show, marked silenced)."""

    matchers: Annotated[list[Matcher], Field(min_length=1, max_length=MAX_MATCHERS)]
    starts: datetime
    ends: datetime
    comment: Text = ""
    created_by: Annotated[str, Field(max_length=200)] = ""

    @field_validator("starts", "ends")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)

    @model_validator(mode="after")
    def _window(self) -> SilenceSpec:
        if self.ends <= self.starts:
            raise ValueError("ends must be after starts")
        return self

    @property
    def starts_ns(self) -> int:
        return int(self.starts.timestamp()) * 10**9

    @property
    def ends_ns(self) -> int:
        return int(self.ends.timestamp()) * 10**9

    def matches(self, labels: dict[str, str]) -> bool:
        return all(m.matches(labels) for m in self.matchers)

    def active(self, now_ns: int) -> bool:
        return self.starts_ns <= now_ns < self.ends_ns

    def to_json(self) -> str:
        return self.model_dump_json()


# ----------------------------------------------------------------------------- SLOs
class SloSpec(_Strict):
    """A service's (or endpoint's) objective: the share of good requests over a rolling
    window. ``availability``: good = not an error; ``latency``: good = not an error and
    faster than ``threshold_ms``. Creating one generates its burn-rate rules (``page``:
    critical, ``ticket``: warning) notifying ``channels``."""

    name: Name
    service: Annotated[str, Field(min_length=1, max_length=256)]
    endpoint: Annotated[str | None, Field(max_length=1024)] = None
    environment: Annotated[str | None, Field(max_length=256)] = None
    sli: Literal["availability", "latency"] = "availability"
    threshold_ms: Annotated[float | None, Field(gt=0)] = None
    objective: Annotated[float, Field(gt=0, lt=100)] = 99.9
    """Percent of good requests, e.g. 99.9."""
    window_days: Literal[7, 28, 30] = 30
    channels: Annotated[list[Name], Field(max_length=MAX_CHANNELS)] = []
    alerts: bool = True
    """Generate the burn-rate alert rules."""

    @model_validator(mode="after")
    def _latency_threshold(self) -> SloSpec:
        if self.sli == "latency" and self.threshold_ms is None:
            raise ValueError("a latency SLO needs threshold_ms")
        if self.sli == "availability" and self.threshold_ms is not None:
            raise ValueError("threshold_ms is for latency SLOs only")
        return self

    def to_json(self) -> str:
        return self.model_dump_json()


# ------------------------------------------------------------------------- helpers
def describe(err: ValidationError, what: str) -> str:
    """``what: field.path: message; ...`` from a pydantic error (the union's tag dropped)."""
    parts = []
    for e in err.errors(include_url=False)[:10]:
        loc = [str(p) for p in e["loc"]]
        loc = [
            p
            for i, p in enumerate(loc)
            if not (
                i > 0
                and loc[i - 1] in ("condition", "config")
                and p in CONDITION_KINDS + CHANNEL_TYPES
            )
        ]
        where = ".".join(loc) or what
        parts.append(f"{where}: {e['msg']}")
    return f"invalid {what}: " + "; ".join(parts)


def parse_rule(data: Any) -> RuleSpec:
    try:
        return RuleSpec.model_validate(data)
    except ValidationError as err:
        raise SpecError(describe(err, "rule")) from None


def parse_channel(data: Any) -> ChannelSpec:
    try:
        return ChannelSpec.model_validate(data)
    except ValidationError as err:
        raise SpecError(describe(err, "channel")) from None


def parse_silence(data: Any) -> SilenceSpec:
    try:
        return SilenceSpec.model_validate(data)
    except ValidationError as err:
        raise SpecError(describe(err, "silence")) from None


def parse_slo(data: Any) -> SloSpec:
    try:
        return SloSpec.model_validate(data)
    except ValidationError as err:
        raise SpecError(describe(err, "slo")) from None


def instance_labels(rule: RuleSpec, sample_labels: dict[str, str]) -> dict[str, str]:
    """An alert instance's labels: the sample's, the rule's, then ``alertname`` and
    ``severity`` (which nothing overrides)."""
    return {**sample_labels, **rule.labels, "alertname": rule.name, "severity": rule.severity}


def fingerprint(labels: dict[str, str]) -> str:
    """The instance key: 16 hex digits of SHA-256 over the sorted labels."""
    text = json.dumps(sorted(labels.items()), separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
