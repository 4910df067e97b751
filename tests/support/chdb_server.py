"""A ClickHouse HTTP server for tests: ClickHouse's HTTP interface in front of the real
ClickHouse engine that chdb embeds.

    python -m tests.support.chdb_server --port 8123 --path /tmp/ch [--user U --password P]

Why: multi-process tests need one ClickHouse that several processes reach over HTTP, and
no ClickHouse server can be installed here, while chdb opens one data directory per
process. This process owns the data directory and serves it to any number of
clickhouse-connect clients, which talk to it exactly as to a ClickHouse server. It is
test support only: nothing under ``src/`` may import it.

What of https://clickhouse.com/docs/interfaces/http is implemented:

- ``GET /ping`` and ``GET /`` (no query) answer ``Ok.``; other paths answer 404.
- ``GET``/``POST /`` with the query in the ``query`` URL parameter, in the body, or both
  (the body then follows the parameter's text after a newline, as the server does), or in
  a ``multipart/form-data`` body (fields ``query`` and ``param_*``).
- Server-side parameters ``param_<name>`` (``{name:Type}`` in the query), in the URL or
  the form, in ClickHouse's escaped text format.
- Settings as URL parameters (``max_execution_time=…``): applied with ``SET`` for that
  request only, then put back, so one client's settings never leak into another's.
- ``database`` (the request's current database; ``default`` when absent) and
  ``default_format`` (``TabSeparated`` when absent). An explicit ``FORMAT`` at the end of
  the query wins; the output is the engine's own bytes for that format (Native,
  RowBinary, JSON, …). ``X-ClickHouse-Format`` is sent for statements that produce a
  result set (so clickhouse-connect's ``command()`` tells ``""`` from a summary).
- ``INSERT INTO table [(columns)] FORMAT <fmt>`` followed by data (in the body, or the
  statement in ``query`` and the data in the body), fed to chdb's streaming insert; any
  input format chdb reads. Other INSERTs (``VALUES``, ``SELECT``) run as plain statements.
- Request bodies compressed with ``Content-Encoding`` gzip, deflate, zstd, lz4 (frame)
  or br; responses compressed likewise when the request sets
  ``enable_http_compression=1`` and sends ``Accept-Encoding``.
- Errors as ClickHouse sends them: ``X-ClickHouse-Exception-Code: N`` and the body
  ``Code: N. DB::Exception: … (NAME) (version V)``; status 400 for syntax errors, 404
  for an unknown table or database, 401 for failed authentication, 501 for what this
  server does not implement, else 500.
- Authentication: HTTP Basic, ``X-ClickHouse-User``/``X-ClickHouse-Key`` or the
  ``user``/``password`` parameters, checked against ``--user``/``--password`` when given
  (any credentials are accepted otherwise).
- Response headers ``X-ClickHouse-Query-Id`` (``query_id`` or a fresh UUID),
  ``X-ClickHouse-Timezone``, ``X-ClickHouse-Format`` and ``X-ClickHouse-Summary``
  (read/written rows and bytes, elapsed time).

What is not:

- Sessions: ``session_id`` is ignored and every request runs in the one chdb session,
  so a ``SET`` statement sent as a query stays in effect for all later requests
  (settings given as URL parameters do not).
- ``client_protocol_version`` is ignored, so clickhouse-connect's probe finds protocol 0
  and reads Native without block info (as with its own chdb backend).
- External data (form file parts), ClickHouse's own block compression
  (``compress=1``/``decompress=1``) and the ``readonly`` setting: answered 501.
- Progress headers (``send_progress_in_http_headers`` is accepted and ignored), streaming:
  the request body is read whole and the response built whole before it is sent.
- ``INSERT … SETTINGS … FORMAT`` with data, ``INSERT INTO FUNCTION`` with data, more than
  one statement per request, ``readonly`` for GET requests, cancelling a query when the
  client goes away, the ``/play``, ``/replicas_status`` and predefined-query handlers,
  TLS; HTTP statuses other than those above (ClickHouse maps more codes).
- Concurrency: requests are served by threads but run one at a time under one lock.
"""

from __future__ import annotations

import argparse
import base64
import gzip
import importlib
import json
import re
import signal
import sys
import threading
import uuid
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import chdb

# URL parameters that steer the HTTP layer; every other non-``param_`` one is a setting.
TRANSPORT_PARAMS = frozenset(
    {
        "query",
        "database",
        "default_format",
        "user",
        "password",
        "query_id",
        "session_id",
        "session_timeout",
        "session_check",
        "quota_key",
        "role",
        "buffer_size",
        "wait_end_of_query",
        "client_protocol_version",
        "send_progress_in_http_headers",
        "http_headers_progress_interval_ms",
        "enable_http_compression",
        "http_zlib_compression_level",
        "compress",
        "decompress",
    }
)
_SETTING_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# ``INSERT INTO t [(cols)] FORMAT F``, then one optional newline, then the data.
_INSERT_WITH_DATA = re.compile(
    rb"\s*(INSERT\s+INTO\s+(?:TABLE\s+)?[^\s(]+\s*(?:\([^)]*\))?)\s*FORMAT\s+(\w+)[ \t]*\r?\n?",
    re.IGNORECASE,
)
_USE = re.compile(rb"\s*USE\b", re.IGNORECASE)
_TRAILING_FORMAT = re.compile(rb"\bFORMAT\s+(\w+)\s*;?\s*$", re.IGNORECASE)
_ERROR_CODE = re.compile(r"Code: (\d+)\.")
_HTTP_STATUS = {62: 400, 60: 404, 81: 404, 516: 401, 48: 501}  # by ClickHouse error code
_CONTENT_TYPES = {
    "TabSeparated": "text/tab-separated-values; charset=UTF-8",
    "TSV": "text/tab-separated-values; charset=UTF-8",
    "JSON": "application/json; charset=UTF-8",
    "JSONEachRow": "application/x-ndjson; charset=UTF-8",
    "CSV": "text/csv; charset=UTF-8; header=absent",
}


class ServerError(Exception):
    """An error answered the way ClickHouse answers it (``code`` is ClickHouse's)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    @classmethod
    def from_engine(cls, err: Exception) -> ServerError:
        text = str(err)
        start = text.find("Code: ")
        if start < 0:
            text = f"Code: 1001. DB::Exception: {type(err).__name__}: {text} (STD_EXCEPTION)"
        text = text[max(start, 0) :]
        found = _ERROR_CODE.match(text)
        return cls(int(found.group(1)) if found else 1001, text.strip())

    @classmethod
    def not_implemented(cls, what: str) -> ServerError:
        return cls(48, f"Code: 48. DB::Exception: {what} (NOT_IMPLEMENTED)")


def _codecs() -> dict[str, tuple[Callable[[bytes], bytes], Callable[[bytes], bytes]]]:
    """``Content-Encoding`` name -> (compress, decompress), for the libraries installed."""
    table: dict[str, tuple[Callable[[bytes], bytes], Callable[[bytes], bytes]]] = {
        "gzip": (gzip.compress, gzip.decompress),
        "deflate": (zlib.compress, zlib.decompress),
    }
    for name, modules in (
        ("lz4", ("lz4.frame",)),
        ("zstd", ("compression.zstd", "backports.zstd", "zstandard")),
        ("br", ("brotli",)),
    ):
        for module_name in modules:
            try:
                module: Any = importlib.import_module(module_name)
            except ImportError:
                continue
            table[name] = (module.compress, module.decompress)
            break
    return table


CODECS = _codecs()


@dataclass
class Request:
    """One statement to run: SQL, insert data, parameters and settings."""

    sql: bytes
    params: dict[str, str] = field(default_factory=dict)  # bare names, text-format values
    settings: dict[str, str] = field(default_factory=dict)
    database: str = "default"
    default_format: str = "TabSeparated"
    insert_data: bytes | None = None  # set for INSERT … FORMAT with data after it
    insert_format: str = ""


@dataclass
class Answer:
    body: bytes
    format: str | None  # None: the statement has no result set
    summary: dict[str, str]


class Engine:
    """The one chdb connection; requests run one at a time under ``lock``."""

    def __init__(self, path: str) -> None:
        self.conn = chdb.connect(path)
        self.lock = threading.Lock()
        version, timezone = self.conn.query("SELECT version(), timezone()", "TSV").bytes().split()
        self.version, self.timezone = version.decode(), timezone.decode()
        self._database = "default"
        self._applied: dict[str, str] = {}  # settings SET now, by name
        self._originals: dict[str, tuple[str, bool]] = {}  # value and ``changed`` before

    def run(self, req: Request) -> Answer:
        with self.lock:
            try:
                self._use(req.database)
                self._apply(req.settings)
                if req.insert_data is not None:
                    return self._insert(req)
                return self._query(req)
            except ServerError:
                raise
            except Exception as err:
                raise ServerError.from_engine(err) from err

    def close(self) -> None:
        with self.lock:
            self.conn.close()

    def _use(self, database: str) -> None:
        if database != self._database:
            self.conn.query(f"USE {_quote_ident(database)}", "TSV")
            self._database = database

    def _apply(self, settings: dict[str, str]) -> None:
        """Make the session's settings exactly those of the request (and the defaults)."""
        for name in [n for n in self._applied if n not in settings]:
            value, changed = self._originals[name]
            self.conn.query(f"SET {name} = {_quote(value) if changed else 'DEFAULT'}", "TSV")
            del self._applied[name]
        for name, value in settings.items():
            if self._applied.get(name) == value:
                continue
            if not _SETTING_NAME.fullmatch(name):
                raise ServerError(
                    115, f"Code: 115. DB::Exception: Unknown setting '{name}'. (UNKNOWN_SETTING)"
                )
            if name not in self._originals:
                self._originals[name] = self._current(name)
            self.conn.query(f"SET {name} = {_quote(value)}", "TSV")
            self._applied[name] = value

    def _current(self, name: str) -> tuple[str, bool]:
        got = self.conn.query(
            "SELECT value, changed FROM system.settings WHERE name = {n:String} FORMAT JSONEachRow",
            "JSONEachRow",
            params={"n": name},
        ).bytes()
        row = json.loads(got) if got.strip() else {"value": "", "changed": 0}
        return str(row["value"]), bool(row["changed"])

    def _query(self, req: Request) -> Answer:
        explicit = _TRAILING_FORMAT.search(req.sql)
        fmt = explicit.group(1).decode() if explicit else req.default_format
        sql = _text(req.sql)
        if _USE.match(req.sql):
            self._database = ""  # the statement switched it: the next request switches back
        if explicit or fmt not in ("TabSeparated", "TSV"):
            result = self.conn.query(sql, fmt, params=req.params)
            return Answer(result.bytes() or b"", fmt, _summary(result))
        # chdb does not say whether a statement has a result set; with names, one that
        # has always prints its header line, and DDL prints nothing.
        result = self.conn.query(sql, "TabSeparatedWithNames", params=req.params)
        body = result.bytes() or b""
        if not body:
            return Answer(b"", None, _summary(result))
        return Answer(body[body.find(b"\n") + 1 :], fmt, _summary(result))

    def _insert(self, req: Request) -> Answer:
        assert req.insert_data is not None
        inserter = self.conn.send_insert(_text(req.sql), req.insert_format)
        with inserter:
            if req.insert_data:
                inserter.append(req.insert_data)
            done = inserter.finish()
        written = {"written_rows": done.rows_written, "written_bytes": done.bytes_written}
        summary = {k: str(v) for k, v in written.items()}
        summary["elapsed_ns"] = str(int(done.elapsed * 1e9))
        return Answer(b"", None, summary)


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _quote_ident(name: str) -> str:
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


def _text(sql: bytes) -> str | bytes:
    """chdb takes str or bytes; bytes only when the SQL holds non-UTF-8 (binary binds)."""
    try:
        return sql.decode()
    except UnicodeDecodeError:
        return sql


def _summary(result: Any) -> dict[str, str]:
    return {
        "read_rows": str(result.rows_read()),
        "read_bytes": str(result.bytes_read()),
        "elapsed_ns": str(int(result.elapsed() * 1e9)),
    }


def parse_request(url_params: dict[str, str], body: bytes, content_type: str) -> Request:
    """The statement of one HTTP request, from its URL parameters and (decoded) body."""
    params = dict(url_params)
    sql = params.get("query", "").encode()
    if content_type.startswith("multipart/form-data"):
        fields = _form_fields(body, content_type)
        params.update(fields)
        sql = fields.get("query", params.get("query", "")).encode()
    elif sql and body:
        sql = sql + b"\n" + body
    elif body:
        sql = body
    for flag in ("compress", "decompress"):
        if params.get(flag, "0") not in ("0", ""):
            raise ServerError.not_implemented(f"{flag}=1 (ClickHouse block compression)")
    if "readonly" in params:  # would also forbid putting the session's settings back
        raise ServerError.not_implemented("the readonly setting")
    req = Request(
        sql=sql,
        params={k[len("param_") :]: v for k, v in params.items() if k.startswith("param_")},
        settings={
            k: v
            for k, v in params.items()
            if k not in TRANSPORT_PARAMS and not k.startswith("param_")
        },
        database=params.get("database") or "default",
        default_format=params.get("default_format") or "TabSeparated",
    )
    insert = _INSERT_WITH_DATA.match(sql)
    if insert:
        req.sql = insert.group(1)
        req.insert_format = insert.group(2).decode()
        req.insert_data = sql[insert.end() :]
    return req


def _form_fields(body: bytes, content_type: str) -> dict[str, str]:
    message = BytesParser(policy=HTTP).parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body
    )
    assert isinstance(message, EmailMessage)
    fields: dict[str, str] = {}
    for part in message.iter_parts():
        assert isinstance(part, EmailMessage)
        if part.get_filename() is not None:
            raise ServerError.not_implemented("external data (file parts of a form)")
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if isinstance(name, str) and isinstance(payload, bytes):
            fields[name] = payload.decode()
    return fields


class Handler(BaseHTTPRequestHandler):
    """Answers one connection's requests (HTTP/1.1 keep-alive, as urllib3 expects)."""

    protocol_version = "HTTP/1.1"
    server: ChdbHttpServer

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.verbose:
            super().log_message(format, *args)

    def _serve(self) -> None:
        url = urlsplit(self.path)
        body = self._read_body()
        if url.path == "/ping":
            return self._send(200, b"Ok.\n", {"Content-Type": "text/plain; charset=UTF-8"})
        if url.path != "/":
            return self._send(404, f"There is no handle {url.path}\n".encode(), {})
        params = dict(parse_qsl(url.query, keep_blank_values=True))
        query_id = params.get("query_id") or str(uuid.uuid4())
        headers = {
            "X-ClickHouse-Query-Id": query_id,
            "X-ClickHouse-Timezone": self.server.engine.timezone,
        }
        try:
            self._authenticate(params)
            body = self._decode(body)
            if not body and not params.get("query"):
                return self._send(200, b"Ok.\n", headers)
            req = parse_request(params, body, self.headers.get("Content-Type", ""))
            answer = self.server.engine.run(req)
        except ServerError as err:
            return self._send_error(err, headers)
        except Exception as err:  # a request this server cannot read: answer, keep serving
            return self._send_error(ServerError.from_engine(err), headers)
        headers["X-ClickHouse-Summary"] = json.dumps(answer.summary)
        if answer.format is not None:
            headers["X-ClickHouse-Format"] = answer.format
            headers["Content-Type"] = _CONTENT_TYPES.get(answer.format, "application/octet-stream")
        self._send(200, self._encode(answer.body, params, headers), headers)

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailer headers
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _authenticate(self, params: dict[str, str]) -> None:
        user, password = params.get("user", "default"), params.get("password", "")
        if "X-ClickHouse-User" in self.headers:
            user = self.headers["X-ClickHouse-User"]
            password = self.headers.get("X-ClickHouse-Key", "")
        auth = self.headers.get("Authorization", "")
        if auth.startswith("Basic "):
            user, _, password = base64.b64decode(auth[6:]).decode().partition(":")
        wanted = self.server.credentials
        if wanted is not None and (user, password) != wanted:
            raise ServerError(
                516,
                f"Code: 516. DB::Exception: {user}: Authentication failed: password is "
                "incorrect, or there is no user with such name. (AUTHENTICATION_FAILED)",
            )

    def _decode(self, body: bytes) -> bytes:
        encoding = self.headers.get("Content-Encoding", "identity").strip().lower()
        if encoding in ("", "identity") or not body:
            return body
        if encoding not in CODECS:
            raise ServerError.not_implemented(f"Content-Encoding {encoding!r}")
        return CODECS[encoding][1](body)

    def _encode(self, body: bytes, params: dict[str, str], headers: dict[str, str]) -> bytes:
        if params.get("enable_http_compression") != "1" or not body:
            return body
        accepted = [
            e.split(";")[0].strip().lower()
            for e in self.headers.get("Accept-Encoding", "").split(",")
        ]
        for encoding in accepted:
            if encoding in CODECS:
                headers["Content-Encoding"] = encoding
                return CODECS[encoding][0](body)
        return body

    def _send_error(self, err: ServerError, headers: dict[str, str]) -> None:
        headers["X-ClickHouse-Exception-Code"] = str(err.code)
        headers["Content-Type"] = "text/plain; charset=UTF-8"
        text = f"{err.message} (version {self.server.engine.version})\n"
        self._send(_HTTP_STATUS.get(err.code, 500), text.encode(), headers)

    def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class ChdbHttpServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self,
        address: tuple[str, int],
        engine: Engine,
        credentials: tuple[str, str] | None = None,
        verbose: bool = False,
    ) -> None:
        super().__init__(address, Handler)
        self.engine = engine
        self.credentials = credentials
        self.verbose = verbose


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", required=True, help="chdb data directory")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--user", help="require this user (with --password)")
    parser.add_argument("--password", default="")
    parser.add_argument("--verbose", action="store_true", help="log every request")
    args = parser.parse_args(argv)
    engine = Engine(args.path)
    credentials = (args.user, args.password) if args.user else None
    server = ChdbHttpServer((args.host, args.port), engine, credentials, args.verbose)

    def stop(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    print(f"chdb_server: ClickHouse {engine.version} on http://{args.host}:{args.port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        engine.close()
        sys.stdout.flush()


if __name__ == "__main__":
    main()
