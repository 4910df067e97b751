"""What ingest does to every span before it is stored: no secret survives, whichever SDK
sent it (Heron's agent, any OpenTelemetry SDK, sentry-sdk transactions).

Built on the shared :class:`heron._scrub.Scrubber`, so spans, error events and logs agree
on what is a secret (the server's ``scrub_keys`` included). For every span:

- **Name and ``http.route``**: each URL or absolute path in them loses its query string,
  fragment and userinfo (``GET /cb?token=x`` → ``GET /cb``) before they become endpoints,
  rollups and page titles; the rest of a name is scrubbed as text. Names of database
  spans are left to SQL obfuscation (``analyze.scrub``), which runs first.
- **Attributes** of the span, its resource, its events (``exception.message``,
  ``exception.stacktrace``...) and its links: a string under a sensitive key (header
  attributes such as ``http.request.header.authorization``, ``…cookie``, ``…x-api-key``;
  ``password``, ``token``...) becomes ``[Filtered]``; URL attributes (``url.full``,
  ``url.original``, ``http.url``, ``http.target``, and any value that is one URL) lose
  their userinfo and the values of sensitive query parameters, as does ``url.query``;
  every other string is scrubbed as text (``key=value`` pairs, ``Bearer`` credentials,
  passwords in URLs, card numbers). Numbers and booleans are kept (a count such as
  ``gen_ai.usage.input_tokens`` is not a secret).
- **Status message**: scrubbed as text.

It runs on every batch, so it must be cheap (``bench/ingest.py`` measures it): it works
column by column on the batch's distinct values, and a batch repeats its names, resource
and most attribute texts; values seen before to need nothing cost one set lookup. A text
not seen before is parsed (faster than scanning it for every secret's shape) and its
(key, value) pairs are remembered. Nothing here may let an unscrubbed value through on
an error: it raises, and the batch fails whole.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from functools import partial
from operator import itemgetter
from typing import Any

import orjson

from heron._scrub import FILTERED, MAX_DEPTH, Scrubber
from heron.server.model import Span
from heron.server.model.span import COL, SpanBatch

__all__ = ["QUERY_KEYS", "URL_KEYS", "SpanScrubber", "strip_query"]

URL_KEYS = frozenset(("url.full", "url.original", "http.url", "http.target"))
QUERY_KEYS = frozenset(("url.query",))
# Keys Heron itself sets whose names look sensitive but whose values are ids, not
# secrets: the RUM tab session id of browser spans (ingest/rum, docs/rum.md).
NOT_SECRET_KEYS = frozenset(("heron.rum.session",))
# Keys whose values are ids Heron sets (ingest/rum): kept verbatim when they have the
# id's form, since text scrubbing would filter an id's long digit runs as a card number
# (the trace view needs them whole); any other value is scrubbed as text.
ID_KEYS = {
    "heron.rum.session": re.compile(r"[A-Za-z0-9_-]{8,64}\Z"),
    "heron.rum.document_span": re.compile(r"[0-9a-fA-F]{16}\Z"),
}
# Texts up to this long are remembered, this many per column (a few MiB at most).
_CACHED_CHARS = 2_048
_CACHE_ENTRIES = 4_096

# A URL (scheme://...) or an absolute path, as one whitespace-separated token.
_URL_IN_TEXT = re.compile(r"(?<!\S)(?:[a-z][a-z0-9+.\-]*://\S*|/\S*)", re.I)
_USERINFO = re.compile(r"^([a-z][a-z0-9+.\-]*://)[^/?#@\s]*@", re.I)
_ONE_URL = re.compile(r"[a-z][a-z0-9+.\-]*://\S*\Z", re.I)
_MAX_NOT_CARD = 10**12 - 1  # card numbers have 13 to 19 digits

_NAME = COL["name"]
_STATUS_MESSAGE = COL["status_message"]
_ROUTE = COL["http_route"]
_STATEMENT = COL["db_statement"]
_ATTRIBUTES = COL["attributes"]
_RESOURCE = COL["resource"]
_EVENTS = COL["events"]
_LINKS = COL["links"]
_COLUMNS = (_NAME, _ROUTE, _STATUS_MESSAGE, _ATTRIBUTES, _RESOURCE, _EVENTS, _LINKS)
# Events and links are rare and each one's JSON is unique (times, ids): never remembered.
_REPEATING = frozenset((_NAME, _ROUTE, _STATUS_MESSAGE, _ATTRIBUTES, _RESOURCE))


def _cut(m: re.Match[str]) -> str:
    url = m.group(0)
    for mark in ("?", "#"):
        url = url.partition(mark)[0]
    return _USERINFO.sub(r"\1", url) if "@" in url else url


def strip_query(name: str) -> str:
    """``name`` with the query string, fragment and userinfo cut from each URL or absolute
    path in it: ``GET /cb?token=x`` → ``GET /cb``. SQL placeholders (``= ?``) stay."""
    if "?" not in name and "#" not in name and "@" not in name:
        return name
    return _URL_IN_TEXT.sub(_cut, name)


def _remember(cache: dict[Any, Any], key: Any, value: Any) -> None:
    if len(cache) >= _CACHE_ENTRIES:
        cache.clear()
    cache[key] = value


class SpanScrubber:
    """Scrub spans (see the module docstring); ``extra_keys`` extends the deny list."""

    def __init__(self, extra_keys: Iterable[str] = ()) -> None:
        self.scrubber = Scrubber(extra_keys)
        self._strings: dict[tuple[str, str], str] = {}
        # Per column, the values seen to scrub to themselves (None always does).
        self._clean: dict[int, set[Any]] = {col: {None} for col in _COLUMNS}
        self._rules: tuple[tuple[int, Callable[[Any], Any]], ...] = (
            (_NAME, self.name),
            (_ROUTE, strip_query),
            (_STATUS_MESSAGE, self.scrubber.text),
            (_ATTRIBUTES, self._map_json),
            (_RESOURCE, self._map_json),
            (_EVENTS, partial(self._list_json, scrub=self._event)),
            (_LINKS, partial(self._list_json, scrub=self._link)),
        )

    def spans(self, spans: Sequence[Span]) -> SpanBatch:
        """The spans scrubbed, as a :class:`SpanBatch` (the same one if nothing changed).

        Works column by column on distinct values: a batch repeats its names, resource
        and most attribute texts, and a value seen clean before costs one set lookup."""
        batch = spans if isinstance(spans, SpanBatch) else SpanBatch.from_spans(spans)
        changes = {}
        for col, scrub in self._rules:
            changed = self._column(batch.rows, col, scrub)
            if changed:
                changes[col] = changed
        if not changes:
            return batch
        return SpanBatch([_apply(row, changes) for row in batch.rows])

    def _column(
        self, rows: list[tuple[Any, ...]], col: int, scrub: Callable[[Any], Any]
    ) -> dict[Any, Any]:
        """The column's distinct values that scrub to something else, and what they become."""
        clean = self._clean[col]
        changed = {}
        for value in set(map(itemgetter(col), rows)).difference(clean):
            new = scrub(value)
            if new != value:
                changed[value] = new
            elif col in _REPEATING and len(value) <= _CACHED_CHARS:
                if len(clean) >= _CACHE_ENTRIES:
                    clean.clear()
                    clean.add(None)
                clean.add(value)
        return changed

    # ---------------------------------------------------------------- names

    def name(self, name: str) -> str:
        """A span name as it may become an endpoint: URLs cut to their path, secrets out."""
        return self.scrubber.text(strip_query(name))

    # ----------------------------------------------------------- attributes

    def attributes(self, attrs: dict[str, Any], depth: int = 0) -> dict[str, Any]:
        """A copy of an attribute map with its secrets filtered."""
        out = {}
        seen = self._strings
        for k, v in attrs.items():
            if type(v) is str:  # most values: one lookup when the pair was seen before
                hit = seen.get((k, v))
                if hit is None:
                    hit = self._string(k, v)
                    if len(v) <= _CACHED_CHARS:
                        _remember(seen, (k, v), hit)
                out[k] = hit
            else:
                out[k] = self._value(k, v, depth + 1)
        return out

    def _string(self, key: str, v: str) -> str:
        s = self.scrubber
        if not v:
            return v
        if s.sensitive_key(key) and key not in NOT_SECRET_KEYS:
            return FILTERED
        id_form = ID_KEYS.get(key)
        if id_form is not None and id_form.match(v):
            return v
        if key in QUERY_KEYS:
            return s.query_string(v)
        if key in URL_KEYS or ("://" in v and _ONE_URL.match(v)):
            return s.url(v)
        return s.text(v)

    def _value(self, key: str, v: Any, depth: int) -> Any:
        s = self.scrubber
        if isinstance(v, str):
            return self._string(key, v)
        if isinstance(v, list | dict) and depth >= MAX_DEPTH:
            return FILTERED
        if isinstance(v, list):
            return [self._value(key, x, depth + 1) for x in v]
        if isinstance(v, dict):  # a kvlist value: its own keys decide
            return self.attributes(v, depth)
        if isinstance(v, int) and v > _MAX_NOT_CARD and s.sensitive_key(key):
            return FILTERED if s.text(str(v)) != str(v) else v  # a card number sent as int
        return v

    def _map_json(self, text: str) -> str:
        """Attributes stored as JSON text, scrubbed."""
        doc = orjson.loads(text)
        scrubbed = self.attributes(doc) if isinstance(doc, dict) else doc
        return orjson.dumps(scrubbed).decode() if scrubbed != doc else text

    # ------------------------------------------------------- events, links

    def _list_json(self, text: str, scrub: Callable[[dict[str, Any]], dict[str, Any]]) -> str:
        """Events or links stored as JSON text, each scrubbed."""
        doc = orjson.loads(text)
        if not isinstance(doc, list):
            return text
        scrubbed = [scrub(x) if isinstance(x, dict) else x for x in doc]
        return orjson.dumps(scrubbed).decode() if scrubbed != doc else text

    def _event(self, event: dict[str, Any]) -> dict[str, Any]:
        out = dict(event)
        if isinstance(out.get("name"), str):
            out["name"] = self.scrubber.text(out["name"])
        if isinstance(out.get("attributes"), dict):
            out["attributes"] = self.attributes(out["attributes"])
        return out

    def _link(self, link: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(link.get("attributes"), dict):
            return link
        return {**link, "attributes": self.attributes(link["attributes"])}


def _apply(row: tuple[Any, ...], changes: dict[int, dict[Any, Any]]) -> tuple[Any, ...]:
    """The row with its changed values replaced. A database span's name only loses a URL's
    query (SQL obfuscation has already dealt with its literals)."""
    new: list[Any] | None = None
    for col, changed in changes.items():
        value = row[col]
        if value in changed:
            if new is None:
                new = list(row)
            new[col] = (
                changed[value] if col != _NAME or row[_STATEMENT] is None else strip_query(value)
            )
    return row if new is None else tuple(new)
