"""SQL fingerprints: literals out, one stable 64-bit id and a readable form per query shape.

Three views of one statement, all regex passes over the text. No parser: sqlparse is
~200x slower on ``bench/fingerprint.py``'s corpus, and a parser fails on dialects and
fragments it does not know, while a statement that does not parse must still be
obfuscated:

- :func:`obfuscate_sql` — what is stored: every literal (strings of every quoting style,
  numbers, booleans, ``NULL`` values) becomes ``?``; comments go (sqlcommenter tags and
  hand-written notes can hold data); placeholders and identifiers stay. Idempotent.
- :func:`fingerprint_sql` — a 64-bit id that ignores literal values, placeholder styles
  (``$1`` ``%s`` ``%(x)s`` ``?`` ``:name`` ``@p1``), IN/VALUES/ARRAY list lengths,
  whitespace, comments, keyword and identifier case and identifier quoting.
- :func:`display_sql` — the obfuscated text with lists collapsed and keywords upper-cased.

Quoting rules follow the database (``db.system.name``): MySQL strings take backslash
escapes and ``"…"`` is a string, PostgreSQL has ``E'…'`` and ``$tag$…$tag$``, SQL Server
and SQLite quote identifiers with ``[…]``. A statement cut short (the decoder clips long
values) ends inside its literal or comment, which then runs to the end: an unterminated
quote never turns the rest of a statement into identifiers that would be kept.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass

__all__ = [
    "SqlInfo",
    "clear_cache",
    "display_sql",
    "fingerprint_sql",
    "fingerprint_text",
    "http_fingerprint",
    "obfuscate_sql",
    "scrub_plan",
    "sql_info",
    "url_template",
]


@dataclass(frozen=True, slots=True)
class _Dialect:
    backslash_escapes: bool = False  # '…\'…' is one string (MySQL, ClickHouse, BigQuery)
    double_quoted_strings: bool = False  # "…" is a string, not an identifier (MySQL)
    hash_comments: bool = False  # '# …' to end of line (MySQL)
    bracket_identifiers: bool = False  # [name] (SQL Server, SQLite)
    dollar_quotes: bool = False  # $tag$…$tag$ (PostgreSQL)
    document: bool = False  # JSON-ish queries (MongoDB, Elasticsearch): keys stay
    command: bool = False  # key-value commands (Redis): only the command name stays


_STANDARD = _Dialect()
# An unknown database: backslash escapes, as the agent assumes too, so both ends agree.
_GENERIC = _Dialect(backslash_escapes=True)
_POSTGRES = _Dialect(dollar_quotes=True)
_MYSQL = _Dialect(backslash_escapes=True, double_quoted_strings=True, hash_comments=True)
_SQLITE = _Dialect(bracket_identifiers=True)
_MSSQL = _Dialect(bracket_identifiers=True)
_CLICKHOUSE = _Dialect(backslash_escapes=True)
_DOCUMENT = _Dialect(backslash_escapes=True, document=True)
_COMMAND = _Dialect(command=True)

_DIALECTS: dict[str, _Dialect] = {
    **dict.fromkeys(
        ("postgresql", "postgres", "cockroachdb", "redshift", "yugabytedb", "greenplum"),
        _POSTGRES,
    ),
    **dict.fromkeys(
        ("mysql", "mariadb", "tidb", "singlestore", "memsql", "spanner", "bigquery"),
        _MYSQL,
    ),
    "sqlite": _SQLITE,
    **dict.fromkeys(("mssql", "microsoft.sql_server", "sqlserver"), _MSSQL),
    **dict.fromkeys(
        ("clickhouse", "snowflake", "hive", "spark", "databricks", "trino", "presto"),
        _CLICKHOUSE,
    ),
    **dict.fromkeys(
        (
            "oracle",
            "oracle.db",
            "db2",
            "ibm.db2",
            "h2",
            "hsqldb",
            "derby",
            "cassandra",
            "vertica",
            "teradata",
            "firebird",
            "informix",
            "sap.hana",
            "hanadb",
        ),
        _STANDARD,
    ),
    **dict.fromkeys(
        ("mongodb", "elasticsearch", "opensearch", "couchdb", "dynamodb", "aws.dynamodb"),
        _DOCUMENT,
    ),
    **dict.fromkeys(("redis", "valkey", "memcached", "aerospike"), _COMMAND),
}


def _dialect(db_system: str | None) -> _Dialect:
    return _DIALECTS.get((db_system or "").lower(), _GENERIC)


# ------------------------------------------------------------------------- the lexer
#
# Speed matters (ingest runs this on every statement it has not seen), and Python's
# regex engine is fast only when it can skip ahead to a match: every alternative of a
# pattern scanned over whole statements starts with a literal character or a character
# class, so the engine searches for those in C. A condition on the character before a
# match is a lookbehind placed *after* the first character.

_PLACEHOLDER = (
    r"\$\d+"  # $1 (PostgreSQL)
    r"|%\(\w+\)s|%s"  # %s, %(name)s (psycopg, mysqlclient)
    r"|\?\d*"  # ?, ?1 (JDBC, SQLite)
    r"|:(?<![:\w]:)(?:[A-Za-z_]\w*|\d+)"  # :name, :1 (Oracle, SQLAlchemy); not ::cast
    r"|@@?[A-Za-z_]\w*"  # @p1, @name (SQL Server), @var (MySQL)
)
# A number not inside a name or a placeholder ($1, ?1, :1, @p1, t1, 1x all stay).
_NUMBER = re.compile(
    r"[0-9.](?<![\w$.?:@][0-9.])"
    r"(?:(?<=0)[xX][0-9a-fA-F]+"
    r"|(?<=[0-9])[0-9]*(?:\.[0-9]*)?(?:[eE][+-]?[0-9]+)?"
    r"|(?<=\.)[0-9]+(?:[eE][+-]?[0-9]+)?)"
    r"(?![\w$])"
)
# TRUE, FALSE and NULL values; IS [NOT] NULL and NOT NULL are structure.
_BOOL_NULL = re.compile(
    r"[tTfFnN](?<![\w$][tTfFnN])"
    r"(?:(?<=[tT])(?i:rue)|(?<=[fF])(?i:alse)"
    r"|(?<=[nN])(?<![iI][sS] [nN])(?<![nN][oO][tT] [nN])(?i:ull))"
    r"(?![\w$])"
)
# What is left of a prefixed string (E'…', N'…', X'…', B'…', U&'…') once its quoted part
# became "?": the prefix goes too.
_PREFIX_HINT = re.compile(r"[eEnNbBxX&]'")
_PREFIX_LEFT = re.compile(r"(?<![\w$])(?:[eEnNbBxX]|[uU]&)\?")


def _starts(d: _Dialect) -> tuple[str, ...]:
    """Text that starts a comment or a string: without any, the lexer changes nothing
    (quoted names matter only to tell what is inside them from what is not)."""
    starts: tuple[str, ...] = ("'", "--", "/*")
    if d.hash_comments:
        starts += ("#",)
    if d.double_quoted_strings or d.document:
        starts += ('"',)
    return starts


_DOLLAR_QUOTE = re.compile(r"\$(?:[A-Za-z_]\w*)?\$")


def _lexer(d: _Dialect) -> re.Pattern[str]:
    """Comments, quoted strings and quoted names: what must be found before anything else."""
    parts = [r"--[^\n]*", r"/\*[\s\S]*?(?:\*/|\Z)"]
    if d.hash_comments:
        parts.append(r"\#[^\n]*")
    if d.backslash_escapes:
        parts.append(r"'(?:[^'\\]|\\[\s\S]|'')*(?:'|\Z)")
        parts.append(r'"(?:[^"\\]|\\[\s\S]|"")*(?:"|\Z)')
    else:
        # Standard strings, except E'…' (PostgreSQL), which takes backslash escapes.
        parts.append(r"'(?:(?<=[eE]')(?<![\w$][eE]')(?:[^'\\]|\\[\s\S]|'')*|(?:[^']|'')*)(?:'|\Z)")
        parts.append(r'"(?:[^"]|"")*(?:"|\Z)')
    parts.append(r"`(?:[^`]|``)*(?:`|\Z)")
    if d.bracket_identifiers:
        parts.append(r"\[[^\]]*(?:\]|\Z)")
    if d.dollar_quotes:
        parts.append(r"\$(?P<tag>[A-Za-z_]\w*|)\$[\s\S]*?(?:\$(?P=tag)\$|\Z)")
    return re.compile("|".join(parts))


_COLON_AHEAD = re.compile(r"\s*:")


def _replacer(d: _Dialect) -> Callable[[re.Match[str]], str]:
    """What each lexer match becomes: comments a space, literals "?", names themselves."""

    def replace(m: re.Match[str]) -> str:
        first = m.string[m.start()]
        if first == "'" or first == "$":
            return "?"
        if first == '"':
            if d.document:  # a JSON key stays, a JSON string value goes
                return m.group() if _COLON_AHEAD.match(m.string, m.end()) else "?"
            return "?" if d.double_quoted_strings else m.group()
        if first == "`" or first == "[":
            return m.group()
        return " "  # a comment

    return replace


_Lexer = tuple[re.Pattern[str], Callable[[re.Match[str]], str], tuple[str, ...]]
_LEXERS: dict[_Dialect, _Lexer] = {}


def _lexer_for(d: _Dialect) -> _Lexer:
    lexer = _LEXERS.get(d)
    if lexer is None:
        lexer = _LEXERS[d] = (_lexer(d), _replacer(d), _starts(d))
    return lexer


_COMMAND_ARG = re.compile(r"\s+\S+")


def obfuscate_sql(statement: str, db_system: str | None = None) -> str:
    """The statement with every literal replaced by ``?`` and comments removed.

    Whitespace runs become one space; placeholders, identifiers and structure stay.
    """
    d = _dialect(db_system)
    if d.command:
        cmd, _, rest = statement.strip().partition(" ")
        return cmd + _COMMAND_ARG.sub(" ?", " " + rest) if rest.strip() else cmd
    lexer, replace, starts = _lexer_for(d)
    # Parameterized statements usually quote nothing but names: skip the lexer then.
    if any(s in statement for s in starts) or (
        d.dollar_quotes and "$" in statement and _DOLLAR_QUOTE.search(statement)
    ):
        text = lexer.sub(replace, statement)
    else:
        text = statement
    if _PREFIX_HINT.search(statement):
        text = _PREFIX_LEFT.sub("?", text)
    text = _NUMBER.sub("?", " ".join(text.split()))
    low = text.lower()
    if "true" in low or "false" in low or "null" in low:
        text = _BOOL_NULL.sub("?", text)
    return text


# -------------------------------------------------------------------- fingerprint form
#
# The canonical text is lower-case with identifier quotes dropped and no space next to
# punctuation ("select a,b from t where id=?"); list rules then see one spelling only.

_FP_PLACEHOLDER = re.compile(_PLACEHOLDER)
_TIGHT = re.compile(r" (?:(?<=[^\w$] )|(?=[^\w$]))")  # a space next to punctuation
_SIGN_CONTEXT = (
    r"select|where|and|or|not|when|then|else|between|in|values|set|return|returning|"
    r"limit|offset|by|case|like|is|on|having|as|distinct|all|any|some|array|interval"
)
_UNARY = re.compile(r"([(,=<>!+\-*/%^|&~\[]|\b(?:" + _SIGN_CONTEXT + r"))[-+]\?")
_ITEM = r"\?(?:::[\w\[\]]+)?"
_TUPLE = rf"\({_ITEM}(?:,{_ITEM})*\)"
_IN_LIST = re.compile(rf"in(?<![\w$]in)\((?:{_ITEM}|{_TUPLE})(?:,(?:{_ITEM}|{_TUPLE}))*\)")
_ARRAY_LIST = re.compile(rf"array(?<![\w$]array)\[{_ITEM}(?:,{_ITEM})*\]")
_ROW = r"\((?:[^()]|\((?:[^()]|\([^()]*\))*\))*\)"
_VALUES_ROWS = re.compile(rf"(values(?<![\w$]values)({_ROW}))(?:,\2)+")
_SAVEPOINT = re.compile(
    r"(savepoint|release savepoint|release|rollback to savepoint|rollback to) [\w$]+"
)
_SAVEPOINT_STARTS = ("savepoint ", "release ", "rollback to ")


def fingerprint_text(obfuscated: str, db_system: str | None = None) -> str:
    """The canonical text a fingerprint hashes, from :func:`obfuscate_sql`'s output."""
    d = _dialect(db_system)
    if d.command:
        return obfuscated.partition(" ")[0].lower()
    t = _FP_PLACEHOLDER.sub("?", obfuscated).lower()
    if '"' in t or "`" in t:
        t = t.replace('"', "").replace("`", "")
    if d.bracket_identifiers and "[" in t:
        t = t.replace("[", "").replace("]", "")
    if t.startswith(_SAVEPOINT_STARTS):
        t = _SAVEPOINT.sub(r"\1 ?", t, count=1)
    t = _TIGHT.sub("", t)
    if "-?" in t or "+?" in t:
        t = _UNARY.sub(r"\1?", t)
    if "in(" in t:
        t = _IN_LIST.sub("in(...)", t)
    if "array[" in t:
        t = _ARRAY_LIST.sub("array[...]", t)
    if "values(" in t:
        t = _VALUES_ROWS.sub(r"\1", t)
    return t.rstrip(";")


def _hash64(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


def fingerprint_sql(statement: str, db_system: str | None = None) -> int:
    """A stable unsigned 64-bit id of the statement's shape (see the module docstring)."""
    return _hash64(fingerprint_text(obfuscate_sql(statement, db_system), db_system))


# ------------------------------------------------------------------------ display form

_KEYWORDS = (
    "select|from|where|and|or|not|in|is|null|like|ilike|between|exists|join|inner|left|"
    "right|full|outer|cross|lateral|on|using|group|by|order|having|limit|offset|fetch|"
    "union|intersect|except|all|distinct|as|asc|desc|nulls|insert|into|values|update|set|"
    "delete|returning|conflict|do|nothing|merge|matched|then|when|else|case|end|with|"
    "recursive|create|table|drop|alter|begin|commit|rollback|savepoint|to|for|share|"
    "nowait|skip|locked|cast|any|some|array|default|true|false|explain|pragma|over|"
    "partition|within|escape|collate|interval|truncate"
)
_KEYWORD_SET = frozenset(_KEYWORDS.split("|"))
_WORD = re.compile(r"[A-Za-z_][\w$]*")
_COMMA = re.compile(r"\s*,\s*")
_OPEN = re.compile(r"\(\s+")
_CLOSE = re.compile(r"\s+\)")
_ITEM_D = r"\?(?:::[\w\[\]]+)?"
_TUPLE_D = rf"\({_ITEM_D}(?:, {_ITEM_D})*\)"
_IN_LIST_D = re.compile(
    rf"\b(IN) ?\((?:{_ITEM_D}|{_TUPLE_D})(?:, (?:{_ITEM_D}|{_TUPLE_D}))*\)", re.IGNORECASE
)
_ARRAY_LIST_D = re.compile(rf"\b(ARRAY) ?\[{_ITEM_D}(?:, {_ITEM_D})*\]", re.IGNORECASE)
_VALUES_ROWS_D = re.compile(rf"\b(VALUES ?({_ROW}))(?:, \2)+", re.IGNORECASE)


def _upper(m: re.Match[str]) -> str:
    """A keyword upper-case; names (after a dot, inside quotes) as written."""
    word, text, start, end = m.group(), m.string, m.start(), m.end()
    if word.lower() not in _KEYWORD_SET:
        return word
    if start and text[start - 1] in '."`[$':
        return word
    if end < len(text) and text[end] in '"`]':
        return word
    return word.upper()


def display_sql(statement: str, db_system: str | None = None) -> str:
    """A readable form of the statement's shape: obfuscated, lists collapsed to ``(...)``
    (IN) or one row (VALUES), keywords upper-case, identifiers as written."""
    t = obfuscate_sql(statement, db_system)
    if _dialect(db_system).command:
        return t
    t = _CLOSE.sub(")", _OPEN.sub("(", _COMMA.sub(", ", t)))
    t = _WORD.sub(_upper, t)
    t = _IN_LIST_D.sub(r"\1 (...)", t)
    t = _ARRAY_LIST_D.sub(r"\1[...]", t)
    t = _VALUES_ROWS_D.sub(r"\1", t)
    return t.rstrip("; ")


# ------------------------------------------------------------------- the ingest helper


@dataclass(frozen=True, slots=True)
class SqlInfo:
    """What ingest stores for one statement: its fingerprint and obfuscated text."""

    fingerprint: int
    statement: str


_CACHE: dict[str | None, dict[str, SqlInfo]] = {}  # per db.system.name, by statement
# Bounds of the whole cache, not of each system's (db.system.name is client input):
# at most 16,384 statements of at most 4,096 characters, kept with their obfuscated
# text, so about 128 MiB at the very worst and a few MiB for a typical fleet.
_CACHE_MAX_ENTRIES = 16_384
_CACHE_MAX_SYSTEMS = 32
_CACHE_MAX_CHARS = 4_096  # long statements are rarely repeated verbatim


def sql_info(statement: str, db_system: str | None = None) -> SqlInfo:
    """Fingerprint and obfuscated text, cached by statement text (apps repeat statements)."""
    cache = _CACHE.get(db_system)
    if cache is None:
        if len(_CACHE) >= _CACHE_MAX_SYSTEMS:
            _CACHE.clear()
        cache = _CACHE.setdefault(db_system, {})
    hit = cache.get(statement)
    if hit is not None:
        return hit
    obfuscated = obfuscate_sql(statement, db_system)
    if obfuscated == statement:
        obfuscated = statement  # callers test "is" to skip rewriting unchanged rows
    info = SqlInfo(_hash64(fingerprint_text(obfuscated, db_system)), obfuscated)
    if len(statement) <= _CACHE_MAX_CHARS:
        if sum(map(len, _CACHE.values())) >= _CACHE_MAX_ENTRIES:  # only on a miss
            for system_cache in _CACHE.values():
                system_cache.clear()
        cache[statement] = info
    return info


def clear_cache() -> None:
    """Forget cached statements (benchmarks measure the uncached cost with it)."""
    _CACHE.clear()


# ------------------------------------------------------------------------------ plans

# Values in an EXPLAIN plan sit in conditions: quoted ('x'::text) or after a spaced
# comparison operator ("(id = 42)"); statistics are unspaced (rows=10, cost=0.00..1.00).
_PLAN_STRING = re.compile(r"'(?:[^']|'')*(?:'|\Z)")
_PLAN_NUMBER = re.compile(
    r"((?:\s(?:=|<>|!=|<=|>=|<|>)|\b(?:IN|LIKE|BETWEEN|AND|ANY)|[(,])\s*)(-?\d[\d.eE+-]*)\b"
)


def _scrub_plan_text(text: str) -> str:
    # Inside a condition's parentheses, numbers after an operator or in a list are data.
    return _PLAN_NUMBER.sub(r"\1?", _PLAN_STRING.sub("'?'", text))


def scrub_plan(plan: object) -> object:
    """An EXPLAIN plan (text, or JSON already parsed) with the literal values removed."""
    return _walk(plan, _scrub_plan_text)


def _walk(v: object, fn: Callable[[str], str]) -> object:
    if isinstance(v, str):
        return fn(v)
    if isinstance(v, list):
        return [_walk(x, fn) for x in v]
    if isinstance(v, dict):
        return {k: _walk(x, fn) for k, x in v.items()}
    return v


# ------------------------------------------------------------------- outgoing HTTP calls

_URL = re.compile(r"^(?:([A-Za-z][A-Za-z0-9+.-]*):)?(?://(?:[^@/?#]*@)?([^/?#]*))?([^?#]*)")
_ID_SEGMENT = re.compile(
    r"\d+|[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}"
    r"|(?=[^/]*\d)[0-9a-fA-F]{12,}|(?=[^/]*\d)(?=[^/]*[A-Za-z])[\w-]{20,}"
)
_LONG_NUMBER = re.compile(r"\d{4,}")


def _template_segment(segment: str) -> str:
    if _ID_SEGMENT.fullmatch(segment):
        return "{id}"
    return _LONG_NUMBER.sub("{id}", segment)


def url_template(url: str) -> str:
    """A URL as a low-cardinality template: ids in the path become ``{id}``.

    Whole numeric, UUID, long hex and long token segments are ids, and so are runs of
    four or more digits inside a segment (``INV-2024-0001``); the query string, fragment
    and any ``user:password@`` are dropped.
    """
    m = _URL.match(url.strip())
    scheme, host, path = (m.group(1), m.group(2), m.group(3)) if m else (None, None, url)
    path = "/".join(_template_segment(s) for s in path.split("/"))
    prefix = f"{scheme.lower()}://" if scheme and host is not None else ""
    return f"{prefix}{host.lower() if host else ''}{path}"


def http_fingerprint(method: str, template: str) -> int:
    """The fingerprint of outgoing calls ``METHOD template`` (same id space as SQL)."""
    return _hash64(f"http {method.upper()} {template}")
