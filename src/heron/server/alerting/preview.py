"""A rule's condition over the last hours, and when it would have fired.

The editor's preview: the condition evaluated at each step (the rule's interval, or
coarser so there are at most :data:`MAX_STEPS`) and the evaluator's own state machine
(:func:`evaluator.advance`) replayed over those values, so "would have fired at ..."
means what the evaluator would have done, ``for`` and hysteresis included.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from heron.server.alerting.conditions import CycleReads, Sample, evaluate_condition
from heron.server.alerting.evaluator import NS, advance
from heron.server.model.alerting import RuleSpec, fingerprint, instance_labels
from heron.server.store.alerting import InstanceRow
from heron.server.store.base import Store

MAX_STEPS = 200
MAX_HOURS = 7 * 24


@dataclass(frozen=True, slots=True)
class PreviewSeries:
    labels: dict[str, str]
    points: list[tuple[int, float | None]]
    """(time ns, value) per step; None where the group had no value."""


@dataclass(frozen=True, slots=True)
class PreviewEvent:
    labels: dict[str, str]
    fired_ns: int
    resolved_ns: int | None
    """None: still firing at the end of the preview."""


@dataclass(frozen=True, slots=True)
class Preview:
    step_s: int
    series: list[PreviewSeries]
    threshold: float | None
    op: str | None
    events: list[PreviewEvent] = field(default_factory=list)


def preview_step_s(spec: RuleSpec, hours: float) -> int:
    """The rule's interval, or a multiple of 60 s coarse enough for ``MAX_STEPS``."""
    span_s = hours * 3600
    if span_s / spec.interval <= MAX_STEPS:
        return spec.interval
    return math.ceil(span_s / MAX_STEPS / 60) * 60


def preview_rule(
    store: Store, project_id: int, spec: RuleSpec, now_ns: int, hours: float = 6
) -> Preview:
    """The condition's value per group and step over ``hours`` before ``now_ns``, and
    the firings the evaluator would have made (ConditionError for a broken condition)."""
    hours = min(max(hours, 1 / 60), MAX_HOURS)
    step_s = preview_step_s(spec, hours)
    n = max(int(hours * 3600 // step_s), 1)
    times = [now_ns - (n - 1 - i) * step_s * NS for i in range(n)]
    values: dict[str, dict[int, float | None]] = {}
    labels: dict[str, dict[str, str]] = {}
    state: dict[str, InstanceRow] = {}
    fired: dict[str, list[list[int | None]]] = {}
    for t in times:
        samples: dict[str, Sample] = {}
        for s in evaluate_condition(CycleReads(store), project_id, spec, t):
            fp = fingerprint(instance_labels(spec, s.labels))
            samples[fp] = s
            labels.setdefault(fp, s.labels)
            values.setdefault(fp, {})[t] = s.value
        for fp in sorted(state.keys() | samples.keys()):
            row, entered = advance(spec, 0, project_id, state.get(fp), samples.get(fp), t)
            if row is None:
                state.pop(fp, None)
            else:
                state[fp] = row
            if "firing" in entered:
                fired.setdefault(fp, []).append([t, None])
            if "resolved" in entered:
                fired[fp][-1][1] = t
    series = [
        PreviewSeries(labels[fp], [(t, values[fp].get(t)) for t in times]) for fp in sorted(values)
    ]
    events = [
        PreviewEvent(dict(labels[fp]), int(f or 0), r)
        for fp, spans in sorted(fired.items())
        for f, r in spans
    ]
    events.sort(key=lambda e: e.fired_ns)
    cond = spec.condition
    return Preview(
        step_s=step_s,
        series=series,
        threshold=getattr(cond, "threshold", None),
        op=getattr(cond, "op", None),
        events=events,
    )
