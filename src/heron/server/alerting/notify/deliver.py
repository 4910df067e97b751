"""The outbox's sender: due notifications are sent, retried with exponential backoff
(5 s doubling, at most 5 min apart, honouring a 429's Retry-After) and given up on
(``failed``) once ``alert_retry_max_s`` has passed since they were decided, or at once
when retrying cannot help (a 4xx answer, a refused URL). Every attempt is recorded
(attempts, last_error), so failures show in the notification log.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from heron.server.alerting.notify.channels import DeliveryError, build_payload, send
from heron.server.model.alerting import ChannelSpec, SpecError, parse_channel
from heron.server.store.alerting import ConfigRow, NotificationRow

log = logging.getLogger("heron.alerts")
S = 10**9
FIRST_RETRY_S = 5.0
MAX_RETRY_GAP_S = 300.0


def backoff_s(attempts: int) -> float:
    """Seconds before the next attempt after ``attempts`` failed ones (5, 10, 20, ... 300)."""
    return min(MAX_RETRY_GAP_S, FIRST_RETRY_S * 2 ** max(0, attempts - 1))


def _channel(row: ConfigRow | None) -> ChannelSpec:
    if row is None:
        raise DeliveryError("the channel was deleted", permanent=True)
    try:
        return parse_channel(json.loads(row.spec))
    except (SpecError, ValueError) as err:
        raise DeliveryError(f"the channel's config is invalid: {err}", permanent=True) from None


class Deliverer:
    """Sends the outbox (one per deployment; the engine calls :meth:`deliver_due`)."""

    def __init__(self, store: Any, *, config: Any, clock: Callable[[], int]) -> None:
        self._store = store
        self._config = config
        self._clock = clock

    def deliver_due(self, now_ns: int, limit: int = 100) -> int:
        """Attempt every due notification once; returns how many were sent."""
        state = self._store.state
        sent = 0
        for row in state.due_notifications(now_ns, limit):
            status, attempts, next_ns, error = self.attempt(row, now_ns)
            state.finish_attempt(
                row.id,
                status=status,
                attempts=attempts,
                next_attempt_ns=next_ns,
                last_error=error,
                sent_ns=self._clock() if status == "sent" else 0,
            )
            sent += status == "sent"
        return sent

    def attempt(self, row: NotificationRow, now_ns: int) -> tuple[Any, int, int, str]:
        """Send ``row`` once: (status, attempts, next attempt ns, last error)."""
        attempts = row.attempts + 1
        try:
            channel = _channel(
                self._store.state.get_alert_config(row.project_id, "channel", row.channel_id)
            )
            send(
                channel,
                row.payload,
                self._config.alert_delivery_timeout_s,
                allowed=self._config.alert_allowed_hosts,
            )
        except DeliveryError as err:
            return self._failed(row, attempts, err, now_ns)
        return "sent", attempts, row.next_attempt_ns, ""

    def _failed(
        self, row: NotificationRow, attempts: int, err: DeliveryError, now_ns: int
    ) -> tuple[Any, int, int, str]:
        delay = err.retry_after_s if err.retry_after_s is not None else backoff_s(attempts)
        next_ns = now_ns + int(delay * S)
        give_up = next_ns - row.created_ns > self._config.alert_retry_max_s * S
        if err.permanent or give_up or row.kind == "test":
            log.warning(
                "alerting: notification %d to channel %d failed: %s", row.id, row.channel_id, err
            )
            return "failed", attempts, now_ns, err.message
        return "pending", attempts, next_ns, err.message


def send_test(
    store: Any, project_id: int, channel_row: ConfigRow, now_ns: int, *, config: Any
) -> NotificationRow:
    """Send a test notification on a channel now (no retries): it is recorded in the
    notification log (kind ``test``); returns the row, ``sent`` or ``failed`` with the
    error."""
    channel = _channel(channel_row)
    alert = {
        "status": "firing",
        "labels": {"alertname": "Heron test notification", "severity": "info"},
        "annotations": {"summary": "This is a test notification from Heron."},
        "value": None,
        "starts_ns": now_ns,
        "ends_ns": 0,
        "fingerprint": "0" * 16,
        "link": "",
    }
    base = str(getattr(config, "public_url", "") or "").rstrip("/")
    notification = {
        "kind": "test",
        "status": "firing",
        "group_key": "test",
        "group_labels": {},
        "common_labels": alert["labels"],
        "common_annotations": alert["annotations"],
        "receiver": channel.name,
        "external_url": base,
        "link": f"{base}/alerts" if base else "",
        "title": f"Test of channel {channel.name}",
        "alerts": [alert],
    }
    payload = build_payload("test", channel, notification)
    # Stored not yet due, so the engine's deliverer does not send it too meanwhile.
    hold = now_ns + 3600 * S
    row = NotificationRow(
        0, project_id, channel_row.id, "test", "test", payload, "pending", 0, hold, "", now_ns, 0
    )
    (nid,) = store.state.save_dispatch([], [], [row])
    row = NotificationRow(**{**_asdict(row), "id": nid})
    status, attempts, next_ns, error = Deliverer(
        store, config=config, clock=lambda: now_ns
    ).attempt(row, now_ns)
    sent_ns = now_ns if status == "sent" else 0
    store.state.finish_attempt(
        nid,
        status=status,
        attempts=attempts,
        next_attempt_ns=next_ns,
        last_error=error,
        sent_ns=sent_ns,
    )
    return NotificationRow(
        **{
            **_asdict(row),
            "status": status,
            "attempts": attempts,
            "next_attempt_ns": next_ns,
            "last_error": error,
            "sent_ns": sent_ns,
        }
    )


def _asdict(row: NotificationRow) -> dict[str, Any]:
    return {f: getattr(row, f) for f in row.__dataclass_fields__}
