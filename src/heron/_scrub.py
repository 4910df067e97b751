"""Secret scrubbing shared by the agent (before anything leaves the process) and the server
(before anything is stored, whatever the sender did).

Two kinds of rules:

- **By key.** A value under a sensitive key (``password``, ``api_key``, ``Authorization``,
  ``session``...) is replaced by :data:`FILTERED`, whatever it is. Keys match by
  substring after normalization (case-insensitive, ``-`` equals ``_``), so
  ``X-Api-Key``, ``csrf_token`` and ``user_password`` are all caught.
- **By shape, in free text.** ``key=value`` / ``key: value`` pairs with a sensitive key,
  ``Bearer``/``Basic`` credentials, passwords in URLs (``scheme://user:pass@host``),
  sensitive query parameters inside URLs, and credit card numbers (13-19 digits that pass
  the Luhn check, with optional spaces or dashes).

Pure Python, no dependencies: ``import heron`` stays light.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import parse_qsl, quote_plus, unquote_plus, urlsplit, urlunsplit

__all__ = ["DEFAULT_DENY_KEYS", "FILTERED", "Scrubber"]

FILTERED = "[Filtered]"
DEFAULT_DENY_KEYS: tuple[str, ...] = (
    "password",
    "passwd",
    "pwd",
    "secret",
    "token",
    "api_key",
    "apikey",
    "authorization",
    "auth",
    "cookie",
    "session",
    "csrf",
    "xsrf",
    "credit_card",
    "card_number",
    "cvv",
    "private_key",
    "access_key",
    "dsn",
    "x_heron_key",
    "x_sentry_auth",
    "sentry_key",
)
MAX_DEPTH = 10
# Values under sensitive keys at least this long are also removed wherever else they appear
# in the same event (a password passed on as a function argument named ``card``...).
MIN_SECRET_CHARS = 6
_SECRET_PARTS = re.compile(r"[;&,]")
# Scrubbed text is memoized for strings up to this long, this many at a time.
_CACHED_CHARS = 512
_CACHE_ENTRIES = 16_384
# Each default deny key contains one of these (checked in tests/test_scrub.py).
_DEFAULT_NEEDLES = (
    "pass", "pwd", "secret", "token", "key", "auth", "cookie", "session", "csrf", "xsrf",
    "card", "cvv", "dsn",
)  # fmt: skip

# Bearer/Basic/Token credentials, wherever they appear (headers quoted in messages...).
_CREDENTIALS = re.compile(r"\b(Bearer|Basic|Token|Digest)(\s+)[A-Za-z0-9._~+/=\-]{6,}", re.I)
# scheme://user:password@host: the password goes.
_URL_USERINFO = re.compile(r"([a-z][a-z0-9+.\-]*://[^\s:/@]*):[^\s/@]*@", re.I)
# 13-19 digits, optionally grouped by single spaces or dashes (checked with Luhn).
_CARD = re.compile(r"(?<![\d.])(?:\d[ \-]?){12,18}\d(?![\d.])")
# A card number is 13+ digits once its single spaces/dashes are gone: digits become "0",
# everything else "x", spaces and dashes vanish, and 13 zeros in a row are looked for.
_DIGIT_MAP = bytes(0x30 if 0x30 <= b <= 0x39 else 0x78 for b in range(256))
_CARD_RUN = b"0" * 13
# key=value, key: value, "key": "value", key => value; the key is a word (with . - _).
# Also matches inside URLs (?access_token=...&). A value already filtered is matched
# whole, so text() is idempotent.
_KEY = re.compile(r"""(?<![\w.\-])(?P<key>["']?[A-Za-z_][\w.\-]*["']?)(?P<sep>\s*(?:=>|[=:])\s*)""")
_VALUE = re.compile(r"""\[Filtered\]|"[^"]*"|'[^']*'|[^\s,;&"'}\]]+""")


def _normalize(key: str) -> str:
    return key.strip().strip("\"'").lower().replace("-", "_")


def _may_hold_card(s: str) -> bool:
    """A cheap test that is never False where :data:`_CARD` would match (bytes.translate
    runs in C; the regex costs ~0.1 µs per character)."""
    return _CARD_RUN in s.encode("ascii", "ignore").translate(_DIGIT_MAP, b" -")


def _luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


class Scrubber:
    """Scrubs secrets out of keys/values, text, URLs, query strings and headers.

    ``deny_keys`` adds to the default list (or replaces it, with ``use_defaults=False``).
    """

    def __init__(self, deny_keys: Iterable[str] = (), *, use_defaults: bool = True) -> None:
        keys = list(DEFAULT_DENY_KEYS) if use_defaults else []
        keys += [k for k in (_normalize(k) for k in deny_keys) if k]
        self.deny_keys: tuple[str, ...] = tuple(dict.fromkeys(keys))
        self._cache: dict[str, bool] = {}
        self._texts: dict[str, str] = {}
        self._compact_keys = tuple(k.replace("_", "") for k in self.deny_keys)
        # Substrings of lowercased text (with - as _) without which no pair can be
        # sensitive: a pre-check, so fewer and shorter is faster ("key" covers "api_key").
        extra = [k for k in self.deny_keys if k not in DEFAULT_DENY_KEYS]
        needles = list(_DEFAULT_NEEDLES) if use_defaults else []
        needles += extra + [k.replace("_", "") for k in extra]
        self._needles = tuple(dict.fromkeys(needles))

    # ------------------------------------------------------------------------ keys

    def sensitive_key(self, key: str) -> bool:
        """True when ``key`` names a secret (normalized substring match)."""
        hit = self._cache.get(key)
        if hit is None:
            compact = _normalize(key).replace("_", "")  # api_key = api-key = apikey
            hit = any(d in compact for d in self._compact_keys)
            if len(self._cache) < 4096:
                self._cache[key] = hit
        return hit

    # ------------------------------------------------------------------------ text

    def text(self, s: str) -> str:
        """``s`` with the secrets it quotes replaced by :data:`FILTERED`."""
        if not s:
            return s
        if len(s) <= _CACHED_CHARS:  # source lines, headers, messages: they repeat
            hit = self._texts.get(s)
            if hit is None:
                if len(self._texts) >= _CACHE_ENTRIES:
                    self._texts.clear()
                hit = self._texts[s] = self._text(s)
            return hit
        return self._text(s)

    def _text(self, s: str) -> str:
        # Cheap substring checks first: most text holds no secret and costs ~2-5 µs.
        out = s
        low = s.lower()
        if "://" in out:
            out = _URL_USERINFO.sub(lambda m: f"{m.group(1)}:{FILTERED}@", out)
        if "bearer" in low or "basic" in low or "token" in low or "digest" in low:
            out = _CREDENTIALS.sub(lambda m: f"{m.group(1)}{m.group(2)}{FILTERED}", out)
        if ("=" in out or ":" in out) and self._may_hold_pairs(low):
            out = self._pairs(out)
        if _may_hold_card(out):
            out = _CARD.sub(self._card, out)
        return out

    def _may_hold_pairs(self, low: str) -> bool:
        if "-" in low:
            low = low.replace("-", "_")
        return any(n in low for n in self._needles)

    def _pairs(self, s: str) -> str:
        """Values of ``key=value``-like pairs with a sensitive key filtered. Only the value
        after a sensitive key is consumed, so "error: password=x" still finds password."""
        out: list[str] = []
        pos = 0
        for m in _KEY.finditer(s):
            if m.start() < pos or not self.sensitive_key(m.group("key")):
                continue
            value = _VALUE.match(s, m.end())
            if value is None:
                continue
            text = value.group(0)
            quote = text[0] if text[0] in ("'", '"') else ""
            out.append(s[pos : m.end()])
            out.append(f"{quote}{FILTERED}{quote}")
            pos = value.end()
        if not out:
            return s
        out.append(s[pos:])
        return "".join(out)

    @staticmethod
    def _card(m: re.Match[str]) -> str:
        digits = re.sub(r"[ \-]", "", m.group(0))
        if 13 <= len(digits) <= 19 and _luhn(digits):
            return FILTERED
        return m.group(0)

    # --------------------------------------------------------------- urls, headers

    def query_string(self, qs: str) -> str:
        """Values of sensitive parameters filtered, the others scrubbed as text; what is
        not a secret is kept byte for byte (no re-encoding)."""
        if not qs:
            return qs
        return "&".join(self._query_param(p) for p in qs.lstrip("?").split("&"))

    def _query_param(self, param: str) -> str:
        name, eq, value = param.partition("=")
        if eq and self.sensitive_key(unquote_plus(name)):
            return f"{name}={FILTERED}"
        if "%" in value or "+" in value:  # a secret may hide behind percent-encoding
            plain = unquote_plus(value)
            scrubbed = self.text(plain)
            if scrubbed != plain:
                return f"{self.text(name)}={quote_plus(scrubbed, safe='[]', errors='replace')}"
        return self.text(param)

    def url(self, url: str) -> str:
        """``url`` without its userinfo, with sensitive query values filtered."""
        if not url:
            return url
        try:
            parts = urlsplit(url)
        except ValueError:
            return self.text(url)
        netloc = parts.netloc.rpartition("@")[2] if "@" in parts.netloc else parts.netloc
        query = self.query_string(parts.query) if parts.query else ""
        return urlunsplit(
            (parts.scheme, netloc, self.text(parts.path), query, self.text(parts.fragment))
        )

    def headers(self, headers: Mapping[str, Any] | Iterable[tuple[str, Any]]) -> dict[str, str]:
        """Header values of sensitive names filtered, the others scrubbed as text."""
        items = headers.items() if isinstance(headers, Mapping) else headers
        out: dict[str, str] = {}
        for k, v in items:
            key = str(k)
            out[key] = FILTERED if self.sensitive_key(key) else self.text(str(v))
        return out

    # ------------------------------------------------------------------ structures

    def value(self, obj: Any, key: str | None = None, *, depth: int = 0) -> Any:
        """``obj`` scrubbed recursively: dicts, lists and tuples are copied, values under
        sensitive keys become :data:`FILTERED`, strings go through :meth:`text`. Beyond
        the depth cap, containers are replaced by :data:`FILTERED`."""
        if key is not None and self.sensitive_key(key):
            return FILTERED if obj not in (None, "") else obj
        if isinstance(obj, str):
            return self.text(obj)
        if isinstance(obj, Mapping):
            if depth >= MAX_DEPTH:
                return FILTERED
            return {str(k): self.value(v, str(k), depth=depth + 1) for k, v in obj.items()}
        if isinstance(obj, list | tuple):
            if depth >= MAX_DEPTH:
                return FILTERED
            return [self.value(v, depth=depth + 1) for v in obj]
        return obj

    # ---------------------------------------------------------- secrets, by value

    def secrets(self, obj: Any, key: str | None = None, *, depth: int = 0) -> set[str]:
        """The values ``obj`` holds under sensitive keys (and their parts: the token of
        ``Bearer <token>``, each ``name=value``'s value), to redact elsewhere with
        :meth:`redact`. Only values of at least :data:`MIN_SECRET_CHARS` characters."""
        out: set[str] = set()
        if depth > MAX_DEPTH:
            return out
        if key is not None and self.sensitive_key(key):
            _leaves(obj, out, depth)
        elif isinstance(obj, Mapping):
            for k, v in obj.items():
                out |= self.secrets(v, str(k), depth=depth + 1)
        elif isinstance(obj, list | tuple):
            if len(obj) == 2 and isinstance(obj[0], str) and not isinstance(obj[1], list | dict):
                return self.secrets(obj[1], obj[0], depth=depth + 1)  # a (name, value) pair
            for v in obj:
                out |= self.secrets(v, depth=depth + 1)
        return out

    def query_secrets(self, qs: str) -> set[str]:
        """The values of a query string's sensitive parameters."""
        try:
            pairs = parse_qsl(qs.lstrip("?"), keep_blank_values=True)
        except ValueError:
            return set()
        return self.secrets(pairs)

    @staticmethod
    def redact(obj: Any, secrets: Iterable[str], *, depth: int = 0) -> Any:
        """``obj`` with every occurrence of each of ``secrets`` in its strings replaced by
        :data:`FILTERED` (a copy; keys are kept)."""
        found = sorted({x for x in secrets if len(x) >= MIN_SECRET_CHARS}, key=len, reverse=True)
        if not found:
            return obj
        pattern = re.compile("|".join(re.escape(x) for x in found))
        return _redact(obj, pattern, depth)


def _leaves(obj: Any, out: set[str], depth: int) -> None:
    if depth > MAX_DEPTH or obj is None or isinstance(obj, bool):
        return
    if isinstance(obj, Mapping):
        for v in obj.values():
            _leaves(v, out, depth + 1)
    elif isinstance(obj, list | tuple):
        for v in obj:
            _leaves(v, out, depth + 1)
    else:
        text = str(obj).strip()
        if text == FILTERED:
            return
        candidates = [text]
        for part in _SECRET_PARTS.split(text):  # cookies, query strings
            candidates.append(part.partition("=")[2].strip() if "=" in part else part.strip())
        scheme, _, token = text.partition(" ")  # "Bearer <token>", "Basic <b64>"
        if token and scheme.isalpha():
            candidates.append(token.strip())
        out.update(c for c in candidates if len(c) >= MIN_SECRET_CHARS and c != FILTERED)


def _redact(obj: Any, pattern: re.Pattern[str], depth: int) -> Any:
    if isinstance(obj, str):
        return pattern.sub(FILTERED, obj)
    if depth >= MAX_DEPTH:
        return obj
    if isinstance(obj, Mapping):
        return {k: _redact(v, pattern, depth + 1) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_redact(v, pattern, depth + 1) for v in obj]
    return obj
