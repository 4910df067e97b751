"""Notifications: which to send and when (``dispatch``), sending them from the outbox
with retries (``deliver``), what each channel sends (``channels``) and the check of
outgoing URLs (``ssrf``)."""

from __future__ import annotations

from heron.server.alerting.notify.channels import DeliveryError, build_payload, send
from heron.server.alerting.notify.deliver import Deliverer, send_test
from heron.server.alerting.notify.dispatch import Dispatcher, muted
from heron.server.alerting.notify.ssrf import UnsafeUrl, check_url

__all__ = [
    "DeliveryError",
    "Deliverer",
    "Dispatcher",
    "UnsafeUrl",
    "build_payload",
    "check_url",
    "muted",
    "send",
    "send_test",
]
