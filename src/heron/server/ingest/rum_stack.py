"""JavaScript ``Error.stack`` strings → frames in the ErrorEvent's shape.

Two formats cover the engines that matter:

- V8 (Chrome, Edge, Node): ``    at fn (https://x/app.js:10:5)``, ``    at https://x/app.js:10:5``,
  ``    at async fn (…)``, ``    at new Cls (…)``, ``    at fn (eval at …, <anonymous>:1:2)``;
- SpiderMonkey and JavaScriptCore (Firefox, Safari): ``fn@https://x/app.js:10:5``,
  ``@https://x/app.js:10:5``, ``global code@…``, ``fn/<@…`` (Firefox's nested names).

Stacks list the callee first; frames are returned caller → callee, as ErrorEvent
documents (``model.event``). A frame is ``in_app`` when its URL is on the page's origin.
Lines that match neither format (the ``TypeError: x`` header, ``[native code]``) are
skipped. Bounded: at most :data:`MAX_FRAMES` frames from the first :data:`MAX_STACK_CHARS`.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

MAX_FRAMES = 100
MAX_STACK_CHARS = 16 * 1024

# "at [async ][new ]fn (location)" or "at location"
_V8 = re.compile(r"^\s*at (?:async )?(?:(?P<fn>.+?) \((?P<loc>.+)\)|(?P<bare>\S+))\s*$")
# "fn@location" (fn may be empty)
_GECKO = re.compile(r"^\s*(?P<fn>[^@]*)@(?P<loc>.+?)\s*$")
# location = url:line:col (url may contain colons: take the last two numbers)
_LOC = re.compile(r"^(?P<url>.*?)(?::(?P<line>\d+))?(?::(?P<col>\d+))?$")
# A bundler's content hash in a file name ("app.3f2a1b9c.js", "chunk-5e1d2c3b.js"):
# left out of the frame's module, so an issue survives the next deploy.
_BUILD_HASH = re.compile(r"[.-][0-9a-f]{6,}(?=\.|$)", re.I)


def parse_stack(stack: str, page_origin: str = "") -> list[dict[str, Any]]:
    """The frames of ``stack``, caller first (empty when nothing is recognised)."""
    frames: list[dict[str, Any]] = []
    for line in stack[:MAX_STACK_CHARS].splitlines():
        frame = _frame(line, page_origin)
        if frame is not None:
            frames.append(frame)
            if len(frames) >= MAX_FRAMES:
                break
    frames.reverse()
    return frames


def _frame(line: str, page_origin: str) -> dict[str, Any] | None:
    m = _V8.match(line)
    if m is not None:
        fn = m.group("fn") or ""
        loc = m.group("loc") or m.group("bare") or ""
        if loc.startswith("eval at "):  # "eval at f (url:1:2), <anonymous>:3:4"
            loc = loc.rpartition(", ")[2]
        fn = fn.removeprefix("new ").strip()
    else:
        m = _GECKO.match(line)
        if m is None or "://" not in m.group("loc") and ":" not in m.group("loc"):
            return None
        fn, loc = m.group("fn").strip(), m.group("loc")
    return _with_location(fn, loc, page_origin)


def _with_location(fn: str, loc: str, page_origin: str) -> dict[str, Any]:
    m = _LOC.match(loc)
    url = m.group("url") if m else loc
    filename = _filename(url)
    frame: dict[str, Any] = {
        "function": fn or "?",
        "module": _module(filename),
        "abs_path": url,
        "filename": filename,
        "in_app": bool(page_origin) and _origin(url) == page_origin,
    }
    if m and m.group("line"):
        frame["lineno"] = int(m.group("line"))
    if m and m.group("col"):
        frame["colno"] = int(m.group("col"))
    return frame


def _filename(url: str) -> str:
    """The URL's path (what groups frames across hosts and cache-busting queries)."""
    if "://" not in url:
        return url
    return urlsplit(url).path or url


def _module(path: str) -> str:
    """The file's name without directory, extension and build hash: what groups frames
    (``analyze.grouping`` keys frames by module and function)."""
    name = path.rsplit("/", 1)[-1]
    name = _BUILD_HASH.sub("", name)
    return name.rsplit(".", 1)[0] if "." in name else name


def _origin(url: str) -> str:
    if "://" not in url:
        return ""
    try:
        parts = urlsplit(url)
    except ValueError:
        return ""
    return f"{parts.scheme}://{parts.netloc}".lower()
