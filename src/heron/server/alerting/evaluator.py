"""The evaluator: every due rule's condition → alert instances, through the state machine
inactive → pending → firing → resolved, persisted in one ``save_evaluation`` per cycle.

- a sample that holds starts ``pending`` (``active_since``); it fires once it has held
  for ``for`` (at once when ``for`` is 0);
- a pending instance whose sample stops holding is deleted (history ``inactive``);
- a firing instance resolves once its sample has not held for ``keep_firing_for``, and,
  with ``recover_threshold``, only once the value is back past it (hysteresis: until
  then it counts as holding);
- resolved instances are kept :data:`RESOLVED_KEEP_NS` (the resolve notification and
  the alerts page need them), then deleted; one that holds again starts over, unacked.

An instance is rewritten only when something a later evaluation (or the dispatcher)
reads changed: a pending or firing one whose value is the same is left as stored (its
``last_eval_ns`` then says when it last changed; the rule's status says when it ran),
except that ``keep_firing_for`` needs ``last_true_ns`` kept current.

A rule that raises (a bad condition, a template error, a failed read) is marked broken
in its status and keeps its instances untouched; the others still run.
:func:`advance` is pure, so the preview replays the same machine over past data.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace

from heron.server.alerting.conditions import (
    ConditionError,
    CycleReads,
    Sample,
    evaluate_condition,
    sample_holds,
)
from heron.server.alerting.templates import TemplateError, render_annotations
from heron.server.model.alerting import (
    RuleSpec,
    SpecError,
    fingerprint,
    instance_labels,
    parse_rule,
)
from heron.server.store.alerting import ConfigRow, HistoryRow, InstanceRow, RuleStatusRow
from heron.server.store.base import Store

log = logging.getLogger("heron.alerts")
NS = 1_000_000_000
RESOLVED_KEEP_NS = 15 * 60 * NS


@dataclass(slots=True)
class CycleStats:
    """What one cycle did (``GET /metrics``, the benchmark)."""

    rules: int = 0
    evaluated: int = 0
    broken: int = 0
    instances: int = 0
    reads: int = 0
    seconds: float = 0.0
    save_seconds: float = 0.0
    """Of ``seconds``, the time persisting the outcome (``save_evaluation``)."""
    read_seconds: dict[str, float] = field(default_factory=dict)
    """Of ``seconds``, the time reading, by kind of read."""
    cpu_seconds: float = 0.0


def recovered(rule: RuleSpec, value: float | None) -> bool:
    """Whether a firing instance's value is back past ``recover_threshold`` (always
    without one, or without a value)."""
    rt = rule.recover_threshold
    op = getattr(rule.condition, "op", None)
    if rt is None or value is None or op is None:
        return True
    return value < rt if op in (">", ">=") else value > rt


def advance(
    rule: RuleSpec,
    rule_id: int,
    project_id: int,
    prev: InstanceRow | None,
    sample: Sample | None,
    now_ns: int,
) -> tuple[InstanceRow | None, list[str]]:
    """One evaluation of one instance: the new row (None: delete or stay absent) and the
    states entered, in order (for history)."""
    value = sample.value if sample is not None else None
    holds = sample is not None and sample_holds(rule, sample)
    if prev is None or prev.state == "resolved":
        if holds:
            assert sample is not None
            return _start(rule, rule_id, project_id, sample, now_ns)
        if prev is not None and now_ns - prev.resolved_ns >= RESOLVED_KEEP_NS:
            return None, []
        return prev, []  # unchanged: not rewritten
    if prev.state == "pending":
        if not holds:
            return None, ["inactive"]
        row = replace(prev, value=value, last_eval_ns=now_ns, last_true_ns=now_ns)
        if now_ns - prev.active_since_ns >= rule.for_ * NS:
            return replace(row, state="firing", fired_ns=now_ns), ["firing"]
        return (prev if value == prev.value else row), []
    # firing
    if holds or not recovered(rule, value):
        if value == prev.value and rule.keep_firing_for == 0:
            return prev, []  # nothing a later step reads changed: not rewritten
        return replace(prev, value=value, last_eval_ns=now_ns, last_true_ns=now_ns), []
    if now_ns - prev.last_true_ns >= rule.keep_firing_for * NS:
        row = replace(prev, value=value, state="resolved", resolved_ns=now_ns, last_eval_ns=now_ns)
        return row, ["resolved"]
    return replace(prev, value=value, last_eval_ns=now_ns), []


def _start(
    rule: RuleSpec, rule_id: int, project_id: int, sample: Sample, now_ns: int
) -> tuple[InstanceRow, list[str]]:
    labels = instance_labels(rule, sample.labels)
    firing = rule.for_ == 0
    row = InstanceRow(
        rule_id=rule_id,
        fingerprint=fingerprint(labels),
        project_id=project_id,
        labels=json.dumps(labels, sort_keys=True),
        annotations="{}",
        state="firing" if firing else "pending",
        value=sample.value,
        active_since_ns=now_ns,
        fired_ns=now_ns if firing else 0,
        resolved_ns=0,
        last_eval_ns=now_ns,
        last_true_ns=now_ns,
    )
    return row, ["pending", "firing"] if firing else ["pending"]


@dataclass(frozen=True, slots=True)
class _Outcome:
    upserts: list[InstanceRow]
    deletes: list[tuple[int, str]]
    history: list[HistoryRow]
    unack: list[tuple[int, str]]
    instances: int


class Evaluator:
    """Runs the due rules of every project; one instance per deployment (the jobs role)."""

    def __init__(
        self,
        store: Store,
        clock: Callable[[], int] = time.time_ns,
        *,
        public_url: str = "",
        apdex_t_ms: float = 500.0,
    ) -> None:
        self.store = store
        self.clock = clock
        self.public_url = public_url.rstrip("/")
        self.apdex_t_ms = apdex_t_ms
        self.last = CycleStats()

    def run(self, now_ns: int | None = None) -> CycleStats:
        """Evaluate the rules whose interval has elapsed; persist in one transaction."""
        now = self.clock() if now_ns is None else now_ns
        start, cpu = time.perf_counter(), time.process_time()
        state = self.store.state
        rows = state.list_alert_config(None, "rule")
        last_eval = {s.rule_id: s.last_eval_ns for s in state.rule_statuses()}
        by_rule: dict[int, list[InstanceRow]] = {}
        for inst in state.alert_instances():
            by_rule.setdefault(inst.rule_id, []).append(inst)
        reads = CycleReads(self.store, apdex_t_ms=self.apdex_t_ms)
        stats = CycleStats(rules=len(rows))
        ups: list[InstanceRow] = []
        dels: list[tuple[int, str]] = []
        hist: list[HistoryRow] = []
        unack: list[tuple[int, str]] = []
        statuses: list[RuleStatusRow] = []
        for row in rows:
            prev = by_rule.pop(row.id, [])
            status, out = self._rule(reads, row, prev, last_eval.get(row.id), now)
            if status is None:
                continue
            stats.evaluated += 1
            stats.broken += bool(status.error)
            statuses.append(status)
            if out is not None:
                ups += out.upserts
                dels += out.deletes
                hist += out.history
                unack += out.unack
        for rule_id, orphans in by_rule.items():  # rules deleted under us: drop leftovers
            dels += [(rule_id, i.fingerprint) for i in orphans]
        saving = time.perf_counter()
        if statuses or dels:
            state.save_evaluation(ups, dels, hist, statuses, unack)
        stats.save_seconds = time.perf_counter() - saving
        stats.instances = sum(s.instances for s in statuses)
        stats.reads = reads.reads
        stats.read_seconds = {k: round(v, 4) for k, v in reads.seconds.items()}
        stats.seconds = time.perf_counter() - start
        stats.cpu_seconds = time.process_time() - cpu
        self.last = stats
        return stats

    def _rule(
        self,
        reads: CycleReads,
        row: ConfigRow,
        prev: list[InstanceRow],
        last_eval_ns: int | None,
        now: int,
    ) -> tuple[RuleStatusRow | None, _Outcome | None]:
        t0 = time.perf_counter()
        try:
            rule = parse_rule(json.loads(row.spec))
        except (SpecError, ValueError) as err:
            return self._status(row, now, t0, f"invalid rule: {err}", len(prev)), None
        if last_eval_ns is not None and now - last_eval_ns < rule.interval * NS:
            return None, None
        try:
            samples = evaluate_condition(reads, row.project_id, rule, now) if rule.enabled else []
            out = self._outcome(rule, row, prev, samples, now)
        except (ConditionError, TemplateError) as err:
            return self._status(row, now, t0, str(err), len(prev)), None
        except Exception as err:  # a rule must never stop the others
            log.exception("alert rule %d (%s) failed", row.id, row.name)
            return self._status(row, now, t0, f"{type(err).__name__}: {err}", len(prev)), None
        return self._status(row, now, t0, "", out.instances), out

    def _status(self, row: ConfigRow, now: int, t0: float, error: str, n: int) -> RuleStatusRow:
        ms = (time.perf_counter() - t0) * 1000
        return RuleStatusRow(row.id, row.project_id, now, round(ms, 3), error[:2000], n)

    def _outcome(
        self,
        rule: RuleSpec,
        row: ConfigRow,
        prev: list[InstanceRow],
        samples: Iterable[Sample],
        now: int,
    ) -> _Outcome:
        keyed = {fingerprint(instance_labels(rule, s.labels)): s for s in samples}
        old = {i.fingerprint: i for i in prev}
        ups, dels, hist, unack = [], [], [], []
        for fp in sorted(old.keys() | keyed.keys()):
            before, sample = old.get(fp), keyed.get(fp)
            after, entered = advance(rule, row.id, row.project_id, before, sample, now)
            if after is None and before is None:
                continue  # a sample that does not hold, and no instance
            if after is None:
                if before is not None:
                    dels.append((row.id, fp))
            elif after is not before:
                if sample is not None and after.state != "resolved":
                    after = replace(after, annotations=self._annotate(rule, after, sample))
                ups.append(after)
                if before is not None and before.state == "resolved" and "pending" in entered:
                    unack.append((row.id, fp))
            labels = after.labels if after is not None else before.labels  # type: ignore[union-attr]
            value = sample.value if sample is not None else None
            hist += [
                HistoryRow(0, row.project_id, row.id, fp, labels, s, value, now) for s in entered
            ]
        live = {fp for fp, i in old.items() if i.state != "resolved"} - {fp for fp, _ in dels}
        live |= {u.fingerprint for u in ups if u.state != "resolved"}
        live -= {u.fingerprint for u in ups if u.state == "resolved"}
        return _Outcome(ups, dels, hist, unack, len(live))

    def _annotate(self, rule: RuleSpec, inst: InstanceRow, sample: Sample) -> str:
        labels = json.loads(inst.labels)
        link = self.public_url + sample.link
        out = render_annotations(rule, value=sample.value, labels=labels, link=link)
        return json.dumps(out, sort_keys=True)
