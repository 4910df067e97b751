"""Server-side scrubbing of error events and log records, before anything is stored.

Runs on every event and record whatever the sender did: a sentry-sdk with
``send_default_pii=True`` or an OTLP SDK with no scrubbing at all still never gets a
password, token, cookie or card number into the database. Built on the shared
:class:`heron._scrub.Scrubber`, so agent and server agree on what is a secret.

What is kept on purpose: the user's id, username, e-mail and IP address (identity, not
credentials: they make "users affected" work), header names, frame locations.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from heron._scrub import FILTERED, Scrubber
from heron.server.analyze.span_scrub import strip_query
from heron.server.model import ErrorEvent, LogRecord

_USER_KEPT = ("id", "username", "email", "ip_address")


class EventScrubber:
    """Scrub :class:`ErrorEvent` and :class:`LogRecord` in place.

    ``extra_keys`` extends the default deny list (the server's ``scrub_keys`` setting).
    """

    def __init__(self, extra_keys: Iterable[str] = ()) -> None:
        self.scrubber = Scrubber(extra_keys)

    # ------------------------------------------------------------------ events

    def event(self, ev: ErrorEvent) -> ErrorEvent:
        s = self.scrubber
        secrets = self._secrets(ev)
        ev.message = s.text(ev.message)
        ev.culprit = s.text(ev.culprit)
        ev.exceptions = [self._exception(e) for e in ev.exceptions]
        ev.breadcrumbs = [self._breadcrumb(b) for b in ev.breadcrumbs]
        ev.request = self._request(ev.request)
        ev.user = self._user(ev.user)
        ev.tags = {k: FILTERED if s.sensitive_key(k) else s.text(v) for k, v in ev.tags.items()}
        ev.contexts = _as_dict(s.value(ev.contexts))
        ev.extra = _as_dict(s.value(ev.extra))
        if ev.transaction:
            ev.transaction = s.text(strip_query(ev.transaction))  # as spans' endpoints
        if ev.explicit_fingerprint:
            ev.explicit_fingerprint = [s.text(p) for p in ev.explicit_fingerprint]
        if secrets:  # the same values under other names (a password passed on as "card")
            ev.message = s.redact(ev.message, secrets)
            ev.exceptions = s.redact(ev.exceptions, secrets)
            ev.breadcrumbs = s.redact(ev.breadcrumbs, secrets)
            ev.extra = _as_dict(s.redact(ev.extra, secrets))
            ev.contexts = _as_dict(s.redact(ev.contexts, secrets))
            ev.tags = _as_dict(s.redact(ev.tags, secrets))
        return ev

    def _secrets(self, ev: ErrorEvent) -> set[str]:
        """Values under sensitive keys in the event as received (request, locals, extra)."""
        s = self.scrubber
        req = ev.request or {}
        found = s.secrets({k: v for k, v in req.items() if k != "query_string"})
        if isinstance(req.get("query_string"), str):
            found |= s.query_secrets(req["query_string"])
        for exc in ev.exceptions:
            for frame in exc.get("frames") or ():
                if isinstance(frame, dict):
                    found |= s.secrets(frame.get("vars") or {})
        found |= s.secrets(ev.extra) | s.secrets(ev.contexts)
        return found

    def _exception(self, exc: dict[str, Any]) -> dict[str, Any]:
        s = self.scrubber
        out = dict(exc)
        if isinstance(out.get("value"), str):
            out["value"] = s.text(out["value"])
        if out.get("frames"):
            out["frames"] = [self._frame(f) for f in out["frames"]]
        return out

    def _frame(self, frame: dict[str, Any]) -> dict[str, Any]:
        s = self.scrubber
        out = dict(frame)
        if "vars" in out:
            out["vars"] = s.value(out["vars"])
        # Source lines can hold hard-coded credentials; paths and names cannot.
        if isinstance(out.get("context_line"), str):
            out["context_line"] = s.text(out["context_line"])
        for key in ("pre_context", "post_context"):
            if isinstance(out.get(key), list):
                out[key] = [s.text(x) if isinstance(x, str) else x for x in out[key]]
        return out

    def _breadcrumb(self, crumb: dict[str, Any]) -> dict[str, Any]:
        s = self.scrubber
        out = dict(crumb)
        if isinstance(out.get("message"), str):
            out["message"] = s.text(out["message"])
        if "data" in out:
            out["data"] = s.value(out["data"])
        return out

    def _request(self, req: dict[str, Any]) -> dict[str, Any]:
        if not req:
            return req
        s = self.scrubber
        out: dict[str, Any] = {}
        for key, value in req.items():
            if key == "url" and isinstance(value, str):
                out[key] = s.url(value)
            elif key == "query_string" and isinstance(value, str):
                out[key] = s.query_string(value)
            elif key == "headers" and isinstance(value, dict):
                out[key] = s.headers(value)
            elif key == "cookies":
                # Cookies are sessions and CSRF tokens: names only.
                out[key] = _filter_all(value)
            else:
                out[key] = s.value(value, key)
        return out

    def _user(self, user: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in user.items():
            if key in _USER_KEPT and isinstance(value, str | int | float):
                out[key] = value
            else:
                out[key] = self.scrubber.value(value, key)
        return out

    # ------------------------------------------------------------------ logs

    def log(self, rec: LogRecord) -> LogRecord:
        s = self.scrubber
        rec.body = s.text(rec.body)
        rec.attributes = _as_dict(s.value(rec.attributes))
        return rec


def _as_dict(v: Any) -> dict[str, Any]:
    return v if isinstance(v, dict) else {}


def _filter_all(cookies: Any) -> Any:
    if isinstance(cookies, dict):
        return dict.fromkeys(cookies, FILTERED)
    if isinstance(cookies, str) and cookies:
        names = [part.split("=", 1)[0].strip() for part in cookies.split(";")]
        return "; ".join(f"{n}={FILTERED}" for n in names if n)
    return FILTERED if cookies else cookies
