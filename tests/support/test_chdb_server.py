"""``chdb_server`` speaks ClickHouse's HTTP interface: raw requests, the answers a
ClickHouse server gives. (clickhouse-connect over it: tests/server/test_backend_conformance.py.)"""

from __future__ import annotations

import gzip
import json
import uuid
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest


class Ch:
    """Raw HTTP requests to the server, with its credentials."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.base = f"http://{parts.hostname}:{parts.port}"
        self.auth = (parts.username or "", parts.password or "")

    def post(self, body: bytes | str = b"", auth: Any = True, **kw: Any) -> httpx.Response:
        params = kw.pop("params", {})
        return httpx.post(
            f"{self.base}/",
            params=params,
            content=body,
            auth=self.auth if auth is True else auth,
            timeout=30,
            **kw,
        )

    def sql(self, body: str, **params: str) -> str:
        r = self.post(body, params=params)
        assert r.status_code == 200, r.text
        return r.text


@pytest.fixture(scope="module")
def ch(chdb_http_url: str) -> Ch:
    return Ch(chdb_http_url)


@pytest.fixture(scope="module")
def db(ch: Ch) -> str:
    """A database of this module's own, with a table ``t``."""
    db = f"shim_{uuid.uuid4().hex[:8]}"
    ch.sql(f"CREATE DATABASE {db}")
    ch.sql(f"CREATE TABLE {db}.t (a UInt64, b String) ENGINE = MergeTree ORDER BY a")
    return db


def test_ping_root_and_unknown_paths(ch: Ch) -> None:
    assert httpx.get(f"{ch.base}/ping").text == "Ok.\n"
    assert httpx.get(f"{ch.base}/", auth=ch.auth).text == "Ok.\n"
    assert httpx.get(f"{ch.base}/play").status_code == 404


def test_wrong_credentials_are_refused_like_clickhouse(ch: Ch) -> None:
    r = ch.post("SELECT 1", auth=("heron", "wrong"))
    assert r.status_code == 401
    assert r.headers["X-ClickHouse-Exception-Code"] == "516"
    assert r.text.startswith("Code: 516. DB::Exception: heron: Authentication failed")
    assert "(AUTHENTICATION_FAILED)" in r.text
    headers = {"X-ClickHouse-User": ch.auth[0], "X-ClickHouse-Key": ch.auth[1]}
    assert ch.post("SELECT 1", auth=None, headers=headers).text == "1\n"


def test_query_in_url_body_and_parameters(ch: Ch) -> None:
    r = ch.post(params={"query": "SELECT {x:UInt8} + 1", "param_x": "41"})
    assert (r.text, r.headers["X-ClickHouse-Format"]) == ("42\n", "TabSeparated")
    # The URL's part, a newline, then the body's: one statement.
    assert ch.sql("{s:String}, 2", query="SELECT", param_s="a\\tb") == "a\\tb\t2\n"
    assert ch.sql("SELECT 1 AS n", default_format="JSONEachRow") == '{"n":1}\n'
    assert ch.sql("SELECT 1 AS n FORMAT CSVWithNames") == '"n"\n1\n'
    native = ch.post("SELECT 1 AS check FORMAT Native")
    assert native.content == b"\x01\x01\x05check\x05UInt8\x01"
    assert "X-ClickHouse-Query-Id" in native.headers
    assert native.headers["X-ClickHouse-Timezone"]


def test_statements_without_a_result_send_no_format(ch: Ch, db: str) -> None:
    r = ch.post(f"ALTER TABLE {db}.t MODIFY COMMENT 'x'")
    assert (r.status_code, r.text) == (200, "")
    assert "X-ClickHouse-Format" not in r.headers
    empty = ch.post("SELECT a FROM {d:Identifier}.t WHERE a = 12345", params={"param_d": db})
    assert (empty.text, empty.headers["X-ClickHouse-Format"]) == ("", "TabSeparated")


def test_errors_carry_clickhouse_codes(ch: Ch) -> None:
    r = ch.post("SELEC 1")
    assert (r.status_code, r.headers["X-ClickHouse-Exception-Code"]) == (400, "62")
    assert r.text.startswith("Code: 62. DB::Exception: Syntax error")
    assert "(SYNTAX_ERROR) (version " in r.text
    missing = ch.post("SELECT * FROM system.no_such_table")
    assert (missing.status_code, missing.headers["X-ClickHouse-Exception-Code"]) == (404, "60")
    r = ch.post("SELECT 1", params={"compress": "1"})
    assert (r.status_code, r.headers["X-ClickHouse-Exception-Code"]) == (501, "48")
    assert ch.sql("SELECT 1") == "1\n", "an error leaves the server serving"


def test_inserts_with_data_in_the_body(ch: Ch, db: str) -> None:
    ch.sql("1\tone\n2\ttwo\n", query=f"INSERT INTO {db}.t FORMAT TabSeparated")
    ch.sql(f'INSERT INTO {db}.t (a, b) FORMAT JSONEachRow\n{{"a": 3, "b": "three"}}\n')
    zipped = gzip.compress(f"INSERT INTO {db}.t FORMAT CSV\n4,four\n".encode())
    r = ch.post(zipped, headers={"Content-Encoding": "gzip"})
    assert r.status_code == 200, r.text
    assert json.loads(r.headers["X-ClickHouse-Summary"])["written_rows"] == "1"
    assert ch.sql("SELECT a, b FROM {d:Identifier}.t WHERE a <= 4 ORDER BY a", param_d=db) == (
        "1\tone\n2\ttwo\n3\tthree\n4\tfour\n"
    )
    bad = ch.post("x,y\n", params={"query": f"INSERT INTO {db}.t FORMAT CSV"})
    assert bad.status_code == 500
    assert bad.text.startswith(f"Code: {bad.headers['X-ClickHouse-Exception-Code']}. DB::")


def test_settings_hold_for_their_request_only(ch: Ch) -> None:
    ask = "SELECT getSetting('max_execution_time')"
    assert ch.sql(ask, max_execution_time="7") == "7\n"
    assert ch.sql(ask) == "0\n"
    r = ch.post("SELECT 1", params={"no_such_setting": "1"})
    assert r.headers["X-ClickHouse-Exception-Code"] == "115"
    assert ch.sql("SELECT 1") == "1\n"


def test_response_compression_when_asked(ch: Ch) -> None:
    r = ch.post(
        "SELECT number FROM numbers(3)",
        params={"enable_http_compression": "1"},
        headers={"Accept-Encoding": "x-unknown, gzip"},
    )
    assert (r.headers["Content-Encoding"], r.text) == ("gzip", "0\n1\n2\n")
    plain = ch.post("SELECT 1", headers={"Accept-Encoding": "gzip"})
    assert "Content-Encoding" not in plain.headers


def test_form_encoded_query_and_parameters(ch: Ch) -> None:
    fields = {"query": (None, "SELECT {x:Array(UInt16)}"), "param_x": (None, "[1,2]")}
    r = httpx.post(f"{ch.base}/", files=fields, auth=ch.auth)
    assert r.text == "[1,2]\n"
    external = {"data": ("data.tsv", b"1\n")}
    r = httpx.post(f"{ch.base}/", params={"query": "SELECT 1"}, files=external, auth=ch.auth)
    assert (r.status_code, r.headers["X-ClickHouse-Exception-Code"]) == (501, "48")
