"""The ``request`` part of an event, from a WSGI environ or an ASGI scope (not scrubbed yet).

The URL is kept without its query string (which goes, scrubbed, in ``query_string``);
bodies are included only when small and already at hand (form or JSON), capped at
:data:`MAX_BODY` bytes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl

MAX_BODY = 10 * 1024


def wsgi_request(environ: Mapping[str, Any]) -> dict[str, Any]:
    scheme = environ.get("wsgi.url_scheme", "http")
    host = environ.get("HTTP_HOST") or environ.get("SERVER_NAME", "")
    path = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
    headers = {
        key[5:].replace("_", "-").title(): str(value)
        for key, value in environ.items()
        if key.startswith("HTTP_")
    }
    for key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
        if environ.get(key):
            headers[key.replace("_", "-").title()] = str(environ[key])
    return {
        "method": environ.get("REQUEST_METHOD", ""),
        "url": f"{scheme}://{host}{path}",
        "query_string": environ.get("QUERY_STRING", ""),
        "headers": headers,
    }


def asgi_request(scope: Mapping[str, Any], body: bytes = b"") -> dict[str, Any]:
    headers: dict[str, str] = {}
    for name, value in scope.get("headers") or ():
        key = name.decode("latin-1").title()
        text = value.decode("latin-1")
        headers[key] = f"{headers[key]}, {text}" if key in headers else text
    host = headers.get("Host") or _server(scope)
    path = scope.get("root_path", "") + scope.get("path", "")
    out = {
        "method": scope.get("method", ""),
        "url": f"{scope.get('scheme', 'http')}://{host}{path}",
        "query_string": (scope.get("query_string") or b"").decode("latin-1"),
        "headers": headers,
    }
    data = parse_body(headers.get("Content-Type", ""), body)
    if data is not None:
        out["data"] = data
    return out


def _server(scope: Mapping[str, Any]) -> str:
    server = scope.get("server")
    return f"{server[0]}:{server[1]}" if server else ""


def parse_body(content_type: str, body: bytes) -> Any:
    """Form fields or a JSON document of a small body; None when there is nothing to show."""
    if not body or len(body) > MAX_BODY:
        return None
    kind = content_type.split(";")[0].strip().lower()
    text = body.decode("utf-8", "replace")
    if kind == "application/x-www-form-urlencoded":
        return dict(parse_qsl(text, keep_blank_values=True))
    if kind == "application/json" or kind.endswith("+json"):
        try:
            return json.loads(text)
        except ValueError:
            return text
    return None
