"""What each channel sends, and sending it: Slack, email, a generic webhook
(Alertmanager's webhook JSON), PagerDuty Events v2, an Alertmanager, the server log.

:func:`build_payload` turns a notification (the neutral dict the dispatcher builds, see
:data:`NOTIFICATION_KEYS`) into the channel's body once, when the notification is
decided, so the outbox row is exactly what is sent. Secrets (the PagerDuty routing key,
webhook headers, the SMTP password) are added by :func:`send` and never stored in the
outbox, which is also the notification log. :func:`send` raises :class:`DeliveryError`;
the deliverer decides about retries.
"""

from __future__ import annotations

import html
import http.client
import json
import logging
import smtplib
import socket
import ssl
from datetime import datetime, timezone
from email.message import EmailMessage
from typing import Any
from urllib.parse import urlsplit

from heron.server.alerting.notify import ssrf
from heron.server.model.alerting import ChannelSpec

log = logging.getLogger("heron.alerts")

# A notification: kind (firing, resolved, escalation, test), status (firing|resolved),
# group_key, group_labels, common_labels, common_annotations, receiver (channel name),
# external_url (Heron's base URL), link (absolute URL of the Heron page), title, and
# alerts: [{status, labels, annotations, value, starts_ns, ends_ns, fingerprint, link}].
NOTIFICATION_KEYS = (
    "kind",
    "status",
    "group_key",
    "group_labels",
    "common_labels",
    "common_annotations",
    "receiver",
    "external_url",
    "link",
    "title",
    "alerts",
)
_ZERO_TIME = "0001-01-01T00:00:00Z"  # Alertmanager's "not ended"
_PD_SEVERITY = {"critical": "critical", "warning": "warning", "info": "info"}
_USER_AGENT = "heron-alerts"


class DeliveryError(Exception):
    """A send failed. ``retry_after_s``: the receiver's Retry-After (429); ``permanent``:
    retrying cannot help (a 4xx answer, an unsafe URL)."""

    def __init__(
        self, message: str, retry_after_s: float | None = None, *, permanent: bool = False
    ) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after_s = retry_after_s
        self.permanent = permanent


def rfc3339(ns: int) -> str:
    if ns <= 0:
        return _ZERO_TIME
    stamp = datetime.fromtimestamp(ns / 1e9, tz=timezone.utc)
    return stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _value(value: Any) -> str:
    if value is None:
        return "no data"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _summary(alert: dict[str, Any]) -> str:
    ann = alert.get("annotations", {})
    labels = alert.get("labels", {})
    return str(ann.get("summary") or labels.get("alertname", "alert"))


def _headline(n: dict[str, Any]) -> str:
    firing = sum(1 for a in n["alerts"] if a["status"] == "firing")
    resolved = len(n["alerts"]) - firing
    what = {"escalation": "ESCALATED", "test": "TEST"}.get(n["kind"], n["status"].upper())
    counts = f"{firing} firing" + (f", {resolved} resolved" if resolved else "")
    return f"[{what}] {n['title']} ({counts})"


# ------------------------------------------------------------------------- payloads
def _slack(n: dict[str, Any]) -> dict[str, Any]:
    headline = _headline(n)
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": headline[:150]}}
    ]
    for alert in n["alerts"][:10]:
        labels = ", ".join(f"{k}={v}" for k, v in sorted(alert["labels"].items()))
        fields = [
            {"type": "mrkdwn", "text": f"*Status*\n{alert['status']}"},
            {"type": "mrkdwn", "text": f"*Value*\n{_value(alert.get('value'))}"},
            {"type": "mrkdwn", "text": f"*Severity*\n{alert['labels'].get('severity', '')}"},
            {"type": "mrkdwn", "text": f"*Since*\n{rfc3339(alert['starts_ns'])}"},
        ]
        text = f"*{_summary(alert)}*\n{alert['annotations'].get('description', '')}"
        if alert.get("link"):
            text += f"\n<{alert['link']}|Open in Heron>"
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": text[:3000]}})
        blocks.append({"type": "section", "fields": fields})
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": labels[:300]}]})
    if len(n["alerts"]) > 10:
        more = f"and {len(n['alerts']) - 10} more"
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": more}]})
    if n.get("link"):
        blocks.append(
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "text": {"type": "plain_text", "text": "Open in Heron"},
                        "url": n["link"],
                    }
                ],
            }
        )
    return {"text": f"{headline} {n.get('link', '')}".strip(), "blocks": blocks}


def _am_alert(alert: dict[str, Any], external_url: str) -> dict[str, Any]:
    return {
        "status": alert["status"],
        "labels": alert["labels"],
        "annotations": {k: str(v) for k, v in alert["annotations"].items() if v},
        "startsAt": rfc3339(alert["starts_ns"]),
        "endsAt": rfc3339(alert["ends_ns"]) if alert["status"] == "resolved" else _ZERO_TIME,
        "generatorURL": alert.get("link") or external_url,
        "fingerprint": alert["fingerprint"],
    }


def _webhook(channel: ChannelSpec, n: dict[str, Any]) -> dict[str, Any]:
    alerts = n["alerts"]
    limit = getattr(channel.config, "max_alerts", 0)
    shown = alerts[:limit] if limit else alerts
    return {
        "version": "4",
        "groupKey": n["group_key"],
        "truncatedAlerts": len(alerts) - len(shown),
        "status": n["status"],
        "receiver": n["receiver"],
        "groupLabels": n["group_labels"],
        "commonLabels": n["common_labels"],
        "commonAnnotations": n["common_annotations"],
        "externalURL": n["external_url"],
        "alerts": [_am_alert(a, n["external_url"]) for a in shown],
    }


def _pagerduty(n: dict[str, Any]) -> dict[str, Any]:
    if n["status"] == "resolved":
        return {"event_action": "resolve", "dedup_key": n["group_key"]}
    severity = n["common_labels"].get("severity") or "warning"
    first = n["alerts"][0] if n["alerts"] else {"labels": {}, "annotations": {}}
    body: dict[str, Any] = {
        "event_action": "trigger",
        "dedup_key": n["group_key"],
        "payload": {
            "summary": _headline(n)[:1024],
            "source": first["labels"].get("service") or "heron",
            "severity": _PD_SEVERITY.get(severity, "warning"),
            "custom_details": {
                "alerts": [
                    {"labels": a["labels"], "value": a.get("value"), "summary": _summary(a)}
                    for a in n["alerts"][:20]
                ],
            },
        },
        "client": "Heron",
    }
    if n.get("link"):
        body["client_url"] = n["link"]
        body["links"] = [{"href": n["link"], "text": "Open in Heron"}]
    return body


def _alertmanager(n: dict[str, Any]) -> list[dict[str, Any]]:
    """Alertmanager's postable alerts. A firing alert has no endsAt, so Alertmanager
    keeps it for its resolve_timeout after each push (the dispatcher re-pushes every
    minute); a resolved one ends when it resolved."""
    out = []
    for a in n["alerts"]:
        alert = {
            "labels": a["labels"],
            "annotations": {k: str(v) for k, v in a["annotations"].items() if v},
            "startsAt": rfc3339(a["starts_ns"]),
            "generatorURL": a.get("link") or n["external_url"],
        }
        if a["status"] == "resolved":
            alert["endsAt"] = rfc3339(a["ends_ns"])
        out.append(alert)
    return out


def _email(n: dict[str, Any]) -> dict[str, Any]:
    headline = _headline(n)
    lines, rows = [headline, ""], []
    for a in n["alerts"]:
        labels = ", ".join(f"{k}={v}" for k, v in sorted(a["labels"].items()))
        desc = a["annotations"].get("description", "")
        lines += [f"- {a['status']}: {_summary(a)} (value {_value(a.get('value'))})"]
        lines += [f"  {desc}"] if desc else []
        lines += [f"  {labels}", f"  {a.get('link', '')}", ""]
        link = a.get("link", "")
        rows.append(
            "<tr><td>{}</td><td>{}{}</td><td>{}</td><td><code>{}</code></td></tr>".format(
                html.escape(a["status"]),
                html.escape(_summary(a)),
                f' <a href="{html.escape(link)}">open</a>' if link else "",
                html.escape(_value(a.get("value"))),
                html.escape(labels),
            )
        )
    link = n.get("link", "")
    body_html = (
        f"<h2>{html.escape(headline)}</h2><table border='1' cellpadding='4'>"
        "<tr><th>Status</th><th>Alert</th><th>Value</th><th>Labels</th></tr>"
        + "".join(rows)
        + "</table>"
        + (f'<p><a href="{html.escape(link)}">Open in Heron</a></p>' if link else "")
    )
    return {"subject": headline[:200], "text": "\n".join(lines + [link]), "html": body_html}


def _log(n: dict[str, Any]) -> dict[str, Any]:
    alerts = "; ".join(
        f"{a['status']} {_summary(a)} value={_value(a.get('value'))}" for a in n["alerts"][:20]
    )
    return {"message": f"{_headline(n)}: {alerts} {n.get('link', '')}".strip()}


def build_payload(kind: str, channel: ChannelSpec, notification: dict[str, Any]) -> str:
    """The JSON body ``channel`` sends for ``notification`` (``kind`` overrides the
    notification's own kind: firing, resolved, escalation or test)."""
    n = {**notification, "kind": kind}
    ctype = channel.config.type
    builders: dict[str, Any] = {
        "slack": _slack,
        "webhook": lambda x: _webhook(channel, x),
        "pagerduty": _pagerduty,
        "alertmanager": _alertmanager,
        "email": _email,
        "log": _log,
    }
    return json.dumps(builders[ctype](n), separators=(",", ":"), ensure_ascii=False)


# ---------------------------------------------------------------------------- sending
class _PinnedHTTPConnection(http.client.HTTPConnection):
    """Connects to an address checked by ssrf.resolve_safe, not a second resolution."""

    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self._address = address

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)  # type: ignore[attr-defined]


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        from email.utils import parsedate_to_datetime

        when = parsedate_to_datetime(value)
        return max(0.0, when.timestamp() - datetime.now(tz=timezone.utc).timestamp())
    except (TypeError, ValueError):
        return None


def post_json(
    url: str, body: str, timeout_s: float, *, headers: dict[str, str] | None = None, allowed: str
) -> str:
    """POST ``body`` to ``url`` after the SSRF check; the response body. Raises
    DeliveryError (permanent for a refused URL and 4xx answers but 408 and 429)."""
    try:
        scheme, host, port = ssrf.split_url(url)
        addresses = ssrf.resolve_safe(host, port, allowed)
    except ssrf.UnsafeUrl as err:
        raise DeliveryError(str(err), permanent="cannot resolve" not in str(err)) from None
    parts = urlsplit(url)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    cls = _PinnedHTTPSConnection if scheme == "https" else _PinnedHTTPConnection
    conn = cls(host, port, addresses[0], timeout_s)
    sent = {"Content-Type": "application/json", "User-Agent": _USER_AGENT, **(headers or {})}
    try:
        conn.request("POST", path, body=body.encode(), headers=sent)
        resp = conn.getresponse()
        text = resp.read(64 * 1024).decode(errors="replace")
    except (OSError, http.client.HTTPException) as err:
        raise DeliveryError(f"{host}: {type(err).__name__}: {err}") from None
    finally:
        conn.close()
    if 200 <= resp.status < 300:
        return text
    message = f"HTTP {resp.status} from {host}: {text[:300].strip()}"
    if resp.status == 429:
        raise DeliveryError(message, _retry_after(resp.getheader("Retry-After")))
    raise DeliveryError(message, permanent=400 <= resp.status < 500 and resp.status != 408)


def _send_email(
    channel: ChannelSpec, payload: dict[str, Any], timeout_s: float, allowed: str
) -> None:
    cfg = channel.config
    assert cfg.type == "email"
    try:
        ssrf.check_host(cfg.host, cfg.port, allowed)
    except ssrf.UnsafeUrl as err:
        raise DeliveryError(str(err), permanent=True) from None
    msg = EmailMessage()
    msg["Subject"] = payload["subject"]
    msg["From"] = cfg.from_addr
    msg["To"] = ", ".join(cfg.to)
    msg.set_content(payload["text"])
    msg.add_alternative(payload["html"], subtype="html")
    context = ssl.create_default_context()
    try:
        smtp: smtplib.SMTP
        if cfg.security == "ssl":
            smtp = smtplib.SMTP_SSL(cfg.host, cfg.port, timeout=timeout_s, context=context)
        else:
            smtp = smtplib.SMTP(cfg.host, cfg.port, timeout=timeout_s)
        with smtp:
            if cfg.security == "starttls":
                smtp.starttls(context=context)
            if cfg.username:
                smtp.login(cfg.username, cfg.password)
            smtp.send_message(msg)
    except smtplib.SMTPResponseException as err:
        said = err.smtp_error
        said = said.decode(errors="replace") if isinstance(said, bytes) else str(said)
        text = f"SMTP {err.smtp_code}: {said}"
        raise DeliveryError(text, permanent=500 <= err.smtp_code < 600) from None
    except (OSError, smtplib.SMTPException) as err:
        raise DeliveryError(f"SMTP {cfg.host}:{cfg.port}: {type(err).__name__}: {err}") from None


def send(channel: ChannelSpec, payload: str, timeout_s: float, *, allowed: str = "") -> None:
    """Deliver a payload built by :func:`build_payload`; raises DeliveryError.
    ``allowed``: the ``alert_allowed_hosts`` setting (the SSRF check's exceptions)."""
    cfg = channel.config
    body = json.loads(payload)
    if cfg.type == "log":
        log.warning("%s", body["message"])
    elif cfg.type == "email":
        _send_email(channel, body, timeout_s, allowed)
    elif cfg.type == "slack":
        post_json(cfg.url, payload, timeout_s, allowed=allowed)
    elif cfg.type == "webhook":
        post_json(cfg.url, payload, timeout_s, headers=dict(cfg.headers), allowed=allowed)
    elif cfg.type == "pagerduty":
        keyed = json.dumps({"routing_key": cfg.routing_key, **body})
        post_json(cfg.url, keyed, timeout_s, allowed=allowed)
    elif cfg.type == "alertmanager":
        post_json(cfg.url.rstrip("/") + "/api/v2/alerts", payload, timeout_s, allowed=allowed)
