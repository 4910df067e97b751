"""SQL text for database spans: literals out, operation and table named, reads told from writes.

- :func:`obfuscate` replaces every literal (strings in every quoting style the database
  knows, numbers, hex and bit strings, ``TRUE``/``FALSE``) with ``?`` and drops comments
  (sqlcommenter tags and hand-written notes can hold data). Placeholders (``%s``,
  ``%(name)s``, ``$1``, ``?``, ``:name``), identifiers and structure stay, so a
  parameterized ``IN (%s, %s)`` keeps its placeholders and a literal ``IN (1, 2)``
  becomes ``IN (?, ?)``. Whitespace runs become one space.
- :func:`parse` adds what the span needs: the operation (``SELECT``; the main statement
  after ``WITH``), the statement's own table (the first outside parentheses), and whether
  EXPLAIN may plan it (a lone ``SELECT`` with no data-modifying CTE and no ``INTO``).

Quoting follows the database (``db.system.name``): MySQL and MariaDB strings take
backslash escapes and ``"…"`` is a string there; PostgreSQL has ``E'…'`` and
``$tag$…$tag$``; SQLite and SQL Server quote identifiers with ``[…]``; an unknown database
gets backslash escapes, the choice that can only hide more. It must never let a literal
through: an unterminated quote or comment runs to the end of the text and is replaced
whole. It never raises. Results are cached, since apps repeat their statements.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["MAX_QUERY_CHARS", "Statement", "obfuscate", "parse", "span_name"]

#: Longer statements are cut before anything else (Heron's server keeps 16 KiB of a value).
MAX_QUERY_CHARS = 16_384

_MYSQL = frozenset({"mysql", "mariadb", "tidb", "singlestore"})
_POSTGRES = frozenset({"postgresql", "cockroachdb", "redshift", "yugabytedb"})
_BRACKETS = frozenset({"sqlite", "microsoft.sql_server", "mssql"})
_KNOWN = _MYSQL | _POSTGRES | _BRACKETS | {"oracle.db", "other_sql"}

_NUMBER = (
    r"(?<![\w$:.?])"  # not inside an identifier, a $1 / :1 / ?1 placeholder, a dotted name
    r"(?:0[xX][0-9a-fA-F]+|0[bB][01]+|(?:\d[\d_]*(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)"
    r"(?![\w$])"
)
_PLACEHOLDER = r"\$\d+|%\(\w+\)s|%s|\?\d*|(?<![:\w]):(?:[A-Za-z_]\w*|\d+)"
# A whole word at once (the scan's speed), unless it is TRUE/FALSE or a string's prefix
# (N'…', E'…', U&'…', _utf8mb4'…'): possessive, so it never gives back part of itself.
_WORD = r"(?P<word>(?!(?:true|false)\b)[A-Za-z_][\w$]*+(?!['&]))"


def _lexer(system: str) -> re.Pattern[str]:
    mysql = system in _MYSQL
    escapes = mysql or system not in _KNOWN
    comment = r"--[^\n]*|/\*[\s\S]*?(?:\*/|\Z)" + (r"|\#[^\n]*" if mysql else "")
    if escapes:
        sq = r"'(?:[^'\\]|\\[\s\S]?|'')*(?:'|\Z)"
        dq = r'"(?:[^"\\]|\\[\s\S]?|"")*(?:"|\Z)'
    else:
        sq = r"'(?:[^']|'')*(?:'|\Z)"
        dq = r'"(?:[^"]|"")*(?:"|\Z)'
    strings = [
        r"(?<![\w$])[eE]'(?:[^'\\]|\\[\s\S]?|'')*(?:'|\Z)",  # E'…' takes escapes everywhere
        r"(?:(?<![\w$])(?:[nNbBxX]|[uU]&|_[A-Za-z0-9]+))?" + sq,  # N'…' X'…' _utf8mb4'…'
    ]
    idents = [r"`(?:[^`]|``)*(?:`|\Z)"]
    (strings if mysql else idents).append(dq)
    if system in _BRACKETS:
        idents.append(r"\[[^\]]*(?:\]|\Z)")
    if system in _POSTGRES or system not in _KNOWN:
        strings.insert(0, r"(?<![\w$])\$(?P<tag>[A-Za-z_]\w*|)\$[\s\S]*?(?:\$(?P=tag)\$|\Z)")
    parts = [
        _WORD,
        f"(?P<comment>{comment})",
        f"(?P<keep>{'|'.join(idents)}|{_PLACEHOLDER})",
        f"(?P<literal>{'|'.join(strings)}|{_NUMBER}|\\b(?:true|false)\\b)",
    ]
    return re.compile("|".join(parts), re.IGNORECASE)


_LEXERS: dict[str, re.Pattern[str]] = {}


def _replace(m: re.Match[str]) -> str:
    kind = m.lastgroup
    if kind == "word" or kind == "keep":
        return m.group()
    return " " if kind == "comment" else "?"


def obfuscate(sql: str, system: str | None = None) -> str:
    """``sql`` with literals replaced by ``?``, comments removed and whitespace collapsed."""
    key = system if system in _KNOWN else ""
    lexer = _LEXERS.get(key)
    if lexer is None:
        lexer = _LEXERS[key] = _lexer(key)
    return " ".join(lexer.sub(_replace, sql[:MAX_QUERY_CHARS]).split())


# ------------------------------------------------------------------ what the span needs

_TOKEN = re.compile(
    r'(?P<name>(?:"(?:[^"]|"")*"|`(?:[^`]|``)*`|\[[^\]]*\]|[A-Za-z_][\w$]*)'
    r'(?:\s*\.\s*(?:"(?:[^"]|"")*"|`(?:[^`]|``)*`|\[[^\]]*\]|[A-Za-z_][\w$]*))*)'
    r"|(?P<punct>[();])"
)
_DML = frozenset({"SELECT", "INSERT", "UPDATE", "DELETE", "MERGE"})
_WRITES = frozenset({"INSERT", "UPDATE", "DELETE", "MERGE"})
_DDL = frozenset({"CREATE", "DROP", "ALTER", "TRUNCATE"})
# Words between a statement's verb and its table: INSERT IGNORE INTO, DELETE FROM ONLY, ...
_SKIP = frozenset(
    {
        "ONLY",
        "LOW_PRIORITY",
        "HIGH_PRIORITY",
        "DELAYED",
        "IGNORE",
        "QUICK",
        "OR",
        "REPLACE",
        "ROLLBACK",
        "ABORT",
        "FAIL",
        "IF",
        "NOT",
        "EXISTS",
        "TEMP",
        "TEMPORARY",
        "UNLOGGED",
        "GLOBAL",
        "LOCAL",
        "TABLE",
    }
)
_TARGET_WORD = {
    "SELECT": "FROM",
    "DELETE": "FROM",
    "INSERT": "INTO",
    "REPLACE": "INTO",
    "MERGE": "INTO",
}


@dataclass(frozen=True, slots=True)
class Statement:
    """One statement as a span shows it."""

    text: str  # obfuscated
    operation: str | None  # SELECT, INSERT, ... (upper case)
    collection: str | None  # the statement's own table, as written, without quotes
    read_only: bool  # a plain SELECT: EXPLAIN may plan it


def _tokens(text: str) -> list[tuple[str, int]]:
    """(token, parenthesis depth) pairs; names keep their case and quotes."""
    out: list[tuple[str, int]] = []
    depth = 0
    for m in _TOKEN.finditer(text):
        tok = m.group()
        if tok == "(":
            depth += 1
        elif tok == ")":
            depth = max(depth - 1, 0)
        out.append((tok, depth))
    return out


def _unquote(name: str) -> str:
    parts = re.split(r"\s*\.\s*", name)
    return ".".join(p[1:-1] if p[:1] in '"`[' and len(p) > 1 else p for p in parts)


def _operation(tokens: list[tuple[str, int]]) -> tuple[str | None, int]:
    """The statement's operation and the index of its keyword (-1 if none)."""
    for i, (tok, _) in enumerate(tokens):
        if tok[0] in "();":
            continue
        word = tok.upper()
        if word != "WITH":
            return (word if tok.isidentifier() else None), i
        depth = tokens[i][1]
        for j in range(i + 1, len(tokens)):
            if tokens[j][1] == depth and tokens[j][0].upper() in _DML:
                return tokens[j][0].upper(), j
        return "WITH", i
    return None, -1


def _collection(tokens: list[tuple[str, int]], op: str, at: int) -> str | None:
    depth = tokens[at][1]
    start = at + 1
    if op in _TARGET_WORD:
        marker = _TARGET_WORD[op]
        for j in range(at + 1, len(tokens)):
            tok, d = tokens[j]
            if d < depth or tok == ";":
                return None
            if d == depth and tok.upper() == marker:
                start = j + 1
                break
        else:
            return None
    elif op in _DDL:  # CREATE [TEMP] TABLE t, DROP TABLE IF EXISTS t, TRUNCATE [TABLE] t
        words = [t.upper() for t, _ in tokens[at + 1 : at + 5]]
        if "TABLE" in words:
            start = at + 2 + words.index("TABLE")
        elif op != "TRUNCATE":
            return None
    elif op != "UPDATE":
        return None
    for tok, d in tokens[start:]:
        if d != depth or tok[0] in "();":
            return None
        if tok.upper() not in _SKIP:
            return _unquote(tok)
    return None


def _read_only(tokens: list[tuple[str, int]], op: str | None, at: int) -> bool:
    if op != "SELECT":
        return False
    depth = tokens[at][1]
    previous = ""
    for j, (tok, d) in enumerate(tokens):
        word = tok.upper()
        if word in _WRITES and previous not in ("FOR", "KEY"):  # FOR [NO KEY] UPDATE reads
            return False
        if j > at and d == depth and word == "INTO":  # SELECT ... INTO table / OUTFILE
            return False
        if tok == ";" and any(t[0] != ";" for t in tokens[j + 1 :]):  # more statements
            return False
        previous = word
    return True


_CACHE: dict[tuple[str | None, str], Statement] = {}  # statement text -> Statement
_SHAPES: dict[tuple[str | None, str], Statement] = {}  # obfuscated text -> Statement
_CACHE_MAX_ENTRIES = 4096
_CACHE_MAX_CHARS = 4096  # long statements are rarely repeated verbatim


def _remember(
    cache: dict[tuple[str | None, str], Statement],
    key: tuple[str | None, str],
    statement: Statement,
) -> None:
    if len(key[1]) <= _CACHE_MAX_CHARS:
        if len(cache) >= _CACHE_MAX_ENTRIES:
            cache.clear()
        cache[key] = statement


def _parse(sql: str, system: str | None) -> Statement:
    text = obfuscate(sql, system)
    # Statements that differ only in their literals share one Statement (and one span shape).
    statement = _SHAPES.get((system, text))
    if statement is None:
        tokens = _tokens(text)
        op, at = _operation(tokens)
        collection = _collection(tokens, op, at) if op else None
        statement = Statement(text, op, collection, _read_only(tokens, op, at))
        _remember(_SHAPES, (system, text), statement)
    return statement


def parse(sql: str, system: str | None = None) -> Statement:
    """The obfuscated text, operation, table and read-only flag of ``sql`` (cached)."""
    key = (system, sql)
    hit = _CACHE.get(key)
    if hit is not None:
        return hit
    statement = _parse(sql, system)
    _remember(_CACHE, key, statement)
    return statement


def span_name(operation: str | None, target: str | None, system: str) -> str:
    """The semantic conventions' ``{db.operation.name} {target}``, with their fallbacks."""
    if not operation:
        return system
    return f"{operation} {target}" if target else operation
