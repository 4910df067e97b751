"""Error grouping: which issue an event belongs to, and how an issue is named.

The fingerprint is a stable 64-bit key per project, computed from (in order):

1. the event's explicit ``fingerprint`` (``{{ default }}`` expands to the default parts);
2. the exception chain: each exception's type plus its in-app frames as ``module.function``
   (all frames when none is in-app). Line numbers and context lines are left out, so
   editing the file elsewhere does not split an issue;
3. the type plus the message with variable parts stripped (numbers, UUIDs, hex, quoted
   strings, e-mail addresses), for events without frames and plain messages.

Changing any of this regroups every new event: treat it like a schema migration.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from typing import Any

from heron.server.model import ErrorEvent

MAX_TITLE_CHARS = 200
# Modules a type's name says nothing with: Python's own, and the script that was run.
_BARE_MODULES = ("builtins.", "__main__.")
_DEFAULT_MARKERS = frozenset({"{{ default }}", "{{default}}"})

_VARIABLE = re.compile(
    r"""
      [^\s@]{1,64}@[\w-]+(?:\.[\w-]+)+                           # e-mail address
    | "(?:[^"\\]|\\.)*"                                          # "double quoted"
    | '(?:[^'\\]|\\.)*'                                          # 'single quoted'
    | \b[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}\b
    | \b0[xX][0-9a-fA-F]+\b                                      # 0x7f3a...
    | \b(?=[0-9a-fA-F]*[0-9])(?=[0-9a-fA-F]*[a-fA-F])[0-9a-fA-F]{7,}\b  # hex ids, digests
    | [+-]?\d+(?:[.,:]\d+)*                                      # numbers, times, IPs
    """,
    re.VERBOSE,
)
# Memory addresses in reprs and generated function names (<lambda at 0x...>) vary per run.
_ADDRESS = re.compile(r"\bat 0x[0-9a-fA-F]+")


def normalize_message(message: str) -> str:
    """The message with its variable parts replaced by ``<*>``, whitespace collapsed."""
    return " ".join(_VARIABLE.sub("<*>", message).split())


def _frame_key(frame: dict[str, Any]) -> str:
    module = frame.get("module") or _module_from_path(str(frame.get("filename") or ""))
    function = _ADDRESS.sub("", str(frame.get("function") or "?"))
    return f"{module}.{function}"


def _module_from_path(path: str) -> str:
    """A path's last component without extension: stable across install locations."""
    name = path.replace("\\", "/").rsplit("/", 1)[-1]
    return name.rsplit(".", 1)[0] if "." in name else name


def grouping_frames(frames: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The frames that identify a bug: the in-app ones, else all of them."""
    in_app = [f for f in frames if f.get("in_app")]
    return in_app or frames


def default_parts(event: ErrorEvent) -> list[str]:
    """The default grouping input: type and frames, else type and normalized message."""
    parts: list[str] = []
    for exc in event.exceptions:
        frames = grouping_frames(exc.get("frames") or [])
        if frames:
            parts.append(str(exc.get("type") or ""))
            parts.extend(_frame_key(f) for f in frames)
    if parts:
        return parts
    return [event.exc_type or "", normalize_message(event.message)]


def fingerprint_parts(event: ErrorEvent) -> list[str]:
    """What the fingerprint hashes: the explicit fingerprint (expanded) or the default."""
    if not event.explicit_fingerprint:
        return ["default", *default_parts(event)]
    parts: list[str] = ["explicit"]
    for p in event.explicit_fingerprint:
        if p.strip() in _DEFAULT_MARKERS:
            parts.extend(default_parts(event))
        else:
            parts.append(p)
    return parts


def hash_parts(parts: Iterable[str]) -> int:
    """An unsigned 64-bit hash of the parts (unambiguous: each is length-prefixed)."""
    h = hashlib.blake2b(digest_size=8)
    for p in parts:
        b = p.encode("utf-8", "surrogatepass")
        h.update(len(b).to_bytes(4, "big"))
        h.update(b)
    return int.from_bytes(h.digest(), "big")


def fingerprint(event: ErrorEvent) -> int:
    """The issue key of an event (unsigned 64-bit)."""
    return hash_parts(fingerprint_parts(event))


def display_type(name: str) -> str:
    """An exception type as people write it: ``PaymentDeclined``, not
    ``__main__.PaymentDeclined``; ``KeyError``, not ``builtins.KeyError``. For showing
    only: grouping keeps the type as reported."""
    for prefix in _BARE_MODULES:
        if name.startswith(prefix):
            return name[len(prefix) :]
    return name


def title(event: ErrorEvent) -> str:
    """``Type: message`` (first line of the message), or the message alone; truncated."""
    first_line = event.message.strip().split("\n", 1)[0]
    if event.exc_type:
        kind = display_type(event.exc_type)
        text = f"{kind}: {first_line}" if first_line else kind
    else:
        text = first_line or "(no message)"
    return text if len(text) <= MAX_TITLE_CHARS else text[: MAX_TITLE_CHARS - 1] + "…"


def culprit(event: ErrorEvent) -> str:
    """Where it happened: ``module in function`` of the innermost in-app frame of the
    raised exception, else the transaction (endpoint), else ''."""
    if event.exceptions:
        frames = grouping_frames(event.exceptions[-1].get("frames") or [])
        if frames:
            f = frames[-1]
            module = f.get("module")
            if not module or module == "__main__":  # a script: its file says more
                module = f.get("filename") or module or "?"
            return f"{module} in {f.get('function') or '?'}"
    return event.transaction or ""


def assign(event: ErrorEvent) -> ErrorEvent:
    """Set the event's issue fingerprint and culprit (when the sender gave none)."""
    event.issue_fingerprint = fingerprint(event)
    if not event.culprit:
        event.culprit = culprit(event)
    return event
