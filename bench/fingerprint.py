"""SQL fingerprinting throughput: statements/s on one core, on a realistic corpus.

The corpus is what ORMs and hand-written code send, in four dialects: Django-style
fully quoted SELECTs with joins, SQLAlchemy-style ``%(name)s`` parameters, ``$n``
placeholders, MySQL with backticks and ``%s``, SQLite with ``?``; literals inlined (so
every statement text is new) in a third of them; IN lists and multi-row INSERTs of 1-200
items; sqlcommenter comments; a few long reporting queries. Measured per statement:

* ``ingest, uncached``: what ingest runs for a statement text it has not seen —
  obfuscate + canonical text + 64-bit hash (``sql_info`` with its cache cleared);
* ``ingest, cached``: ``sql_info`` on a stream in which 97% of statements repeat (apps
  reuse parameterized statements; the hit rate in a real fleet is usually higher);
* ``obfuscate`` and ``fingerprint`` alone, and ``display`` (run once per new fingerprint);
* when importable, ``sqlparse`` and ``sqlglot`` doing a comparable job (parse or
  tokenize, then normalize) on the same corpus, for scale.

    python bench/fingerprint.py [--statements 20000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common as c

from heron.server.analyze import fingerprint as fp

# ------------------------------------------------------------------------- the corpus

# Each table has its model's columns, as an ORM selects them: query shapes are few,
# literal values and list lengths many.
MODELS = {
    "orders": ["id", "user_id", "status", "total_cents", "created_at", "updated_at"],
    "order_items": ["id", "order_id", "sku", "qty", "price_cents"],
    "users": ["id", "email", "name", "is_active", "date_joined", "last_login"],
    "products": ["id", "sku", "name", "category", "price_cents", "stock"],
    "payments": ["id", "order_id", "amount_cents", "status", "provider", "created_at"],
    "sessions": ["session_key", "session_data", "expire_date"],
}
TABLES = list(MODELS)


def sql(*parts: str) -> str:
    """Join statement pieces with spaces (statements here are text, never run)."""
    return " ".join(parts)


def _lit(rng: random.Random) -> str:
    r = rng.random()
    if r < 0.4:
        return str(rng.randint(1, 10**7))
    if r < 0.7:
        return "'user" + str(rng.randint(1, 10**6)) + "@example.com'"
    if r < 0.8:
        return str(round(rng.uniform(0, 1000), 2))
    if r < 0.9:
        return "'2024-05-01 12:00:00'"
    return rng.choice(("TRUE", "FALSE", "NULL"))


def django(rng: random.Random, inline: bool) -> tuple[str, str]:
    """A Django queryset: every name quoted, %s parameters, an IN list of any length."""
    t, u = rng.sample(TABLES, 2)
    cols = ", ".join('"' + t + '"."' + col + '"' for col in MODELS[t])
    n = rng.choice((1, 1, 3, 10, 50, 200))
    items = ", ".join(_lit(rng) if inline else "%s" for _ in range(n))
    key = '"' + u + '"."id"'
    first = '"' + t + '"."' + MODELS[t][1] + '"'
    return "postgresql", sql(
        "SELECT",
        cols,
        'FROM "' + t + '" INNER JOIN "' + u + '" ON (' + first,
        "=",
        key + ")",
        "WHERE (" + first,
        "=",
        _lit(rng) if inline else "%s",
        "AND",
        key,
        "IN (" + items + "))",
        'ORDER BY "' + t + '"."id" DESC LIMIT 21',
    )


def sqlalchemy(rng: random.Random, inline: bool) -> tuple[str, str]:
    """SQLAlchemy Core: %(name)s parameters, multi-row INSERTs, UPDATE by primary key."""
    t = rng.choice(TABLES)
    cols = MODELS[t][1:]
    if rng.random() < 0.5:
        rows = rng.choice((1, 1, 5, 50))
        values = ", ".join(
            "("
            + ", ".join(_lit(rng) if inline else "%(" + c + "_m" + str(i) + ")s" for c in cols)
            + ")"
            for i in range(rows)
        )
        return "postgresql", sql(
            "INSERT INTO", t, "(" + ", ".join(cols) + ")", "VALUES", values, "RETURNING", t + ".id"
        )
    sets = ", ".join(c + "=" + (_lit(rng) if inline else "%(" + c + ")s") for c in cols[:2])
    return "postgresql", sql(
        "UPDATE", t, "SET", sets, "WHERE", t + ".id =", _lit(rng) if inline else "%(id_1)s"
    )


COMMENT = "/*controller='orders',route='%2Forders',traceparent='00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'*/"


def asyncpg(rng: random.Random, inline: bool) -> tuple[str, str]:
    """$n parameters, = ANY(array), a sqlcommenter comment on some."""
    t = rng.choice(TABLES)
    array = "ARRAY[" + ", ".join(_lit(rng) for _ in range(rng.randint(1, 8))) + "]"
    text = sql(
        "SELECT count(*) FROM",
        t,
        "WHERE created_at >",
        _lit(rng) if inline else "$1",
        "AND status = ANY(" + (array if inline else "$2") + ")",
    )
    return "postgresql", (COMMENT + " " + text if rng.random() < 0.3 else text)


def mysql(rng: random.Random, inline: bool) -> tuple[str, str]:
    """MySQL: backticks, %s, double-quoted strings when inlined."""
    t = rng.choice(TABLES)
    col = MODELS[t][1]

    def lit() -> str:
        return _lit(rng).replace("'", '"') if inline else "%s"

    q = "`" + t + "`"
    return "mysql", sql(
        "SELECT",
        q + ".`id`,",
        q + ".`" + col + "`",
        "FROM",
        q,
        "WHERE",
        q + ".`" + col + "` =",
        lit(),
        "AND",
        q + ".`id` >",
        lit(),
        "LIMIT",
        str(rng.randint(1, 100)),
    )


def sqlite(rng: random.Random, inline: bool) -> tuple[str, str]:
    t = rng.choice(TABLES)
    return "sqlite", sql(
        "SELECT * FROM", t, "WHERE", MODELS[t][1], "=", _lit(rng) if inline else "?"
    )


REPORT = """
WITH recent AS (
    SELECT o.user_id, sum(o.total_cents) AS spent, count(*) AS n
    FROM orders o WHERE o.created_at >= <SINCE> AND o.status NOT IN ('cancelled', 'refunded')
    GROUP BY o.user_id HAVING count(*) > <MIN>
)
SELECT u.id, u.email, r.spent, r.n,
       (SELECT max(p.created_at) FROM payments p WHERE p.order_id = u.id) AS last_payment
FROM users u JOIN recent r ON r.user_id = u.id
WHERE u.email NOT LIKE '%@example.org'   -- internal accounts
ORDER BY r.spent DESC NULLS LAST LIMIT 100 OFFSET <OFFSET>
"""


def report(rng: random.Random, inline: bool) -> tuple[str, str]:
    """A hand-written reporting query: CTE, subquery, comment, 700 characters."""
    return "postgresql", (
        REPORT.replace("<SINCE>", _lit(rng) if inline else "$1")
        .replace("<MIN>", str(rng.randint(1, 5)))
        .replace("<OFFSET>", str(rng.randint(0, 10) * 100))
    )


SHAPES: list[tuple[float, Callable[[random.Random, bool], tuple[str, str]]]] = [
    (0.30, django),
    (0.20, sqlalchemy),
    (0.15, asyncpg),
    (0.15, mysql),
    (0.15, sqlite),
    (0.05, report),
]


def corpus(n: int, seed: int = 1) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    weights = [w for w, _ in SHAPES]
    makers = [m for _, m in SHAPES]
    return [rng.choices(makers, weights)[0](rng, rng.random() < 1 / 3) for _ in range(n)]


# ------------------------------------------------------------------------ measuring


def rate(fn: Callable[[str, str], Any], items: list[tuple[str, str]], repeat: int) -> float:
    """Best-of-``repeat`` statements per second of ``fn(system, sql)`` over ``items``."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        for system, sql in items:
            fn(system, sql)
        best = min(best, time.perf_counter() - t0)
    return len(items) / best


def uncached(system: str, sql: str) -> Any:
    fp.clear_cache()
    return fp.sql_info(sql, system)


def cached_stream(items: list[tuple[str, str]], n: int, seed: int = 2) -> list[tuple[str, str]]:
    """A stream where 97% of statements repeat one of a few hundred parameterized ones."""
    rng = random.Random(seed)
    hot = corpus(300, seed=3)
    return [rng.choice(hot) if rng.random() < 0.97 else rng.choice(items) for _ in range(n)]


def optional_libraries(items: list[tuple[str, str]], repeat: int) -> list[list[Any]]:
    rows: list[list[Any]] = []
    sample = items[: max(len(items) // 10, 200)]
    try:
        import sqlparse

        def with_sqlparse(system: str, sql: str) -> Any:
            # Strip comments, then walk tokens replacing literals: sqlparse's fastest path.
            tokens = sqlparse.parse(sqlparse.format(sql, strip_comments=True))[0].flatten()
            return "".join("?" if t.ttype in sqlparse.tokens.Literal else t.value for t in tokens)

        rows.append(["sqlparse parse + literal walk", rate(with_sqlparse, sample, 1)])
    except ImportError:
        rows.append(["sqlparse parse + literal walk", "not installed"])
    try:
        import sqlglot

        dialects = {"postgresql": "postgres", "mysql": "mysql", "sqlite": "sqlite"}

        def with_sqlglot(system: str, sql: str) -> Any:
            return [t.token_type for t in sqlglot.tokenize(sql, read=dialects[system])]

        def with_sqlglot_parse(system: str, sql: str) -> Any:
            return sqlglot.parse_one(sql, read=dialects[system]).sql()

        rows.append(["sqlglot tokenize only", rate(with_sqlglot, sample, 1)])
        rows.append(["sqlglot parse + generate", rate(with_sqlglot_parse, sample, 1)])
    except ImportError:
        rows.append(["sqlglot", "not installed"])
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--statements", type=int, default=20_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)
    items = corpus(args.statements)
    m = c.machine()
    print(f"Machine: {c.machine_line(m)}")
    mean_chars = sum(len(s) for _, s in items) / len(items)
    print(f"Corpus: {len(items):,} statements, mean {mean_chars:.0f} characters")

    stream = cached_stream(items, args.statements)
    fp.clear_cache()
    results = {
        "ingest, uncached (obfuscate + fingerprint)": rate(uncached, items, args.repeat),
        "ingest, cached (97% repeats)": rate(lambda s, q: fp.sql_info(q, s), stream, args.repeat),
        "obfuscate only": rate(lambda s, q: fp.obfuscate_sql(q, s), items, args.repeat),
        "fingerprint only (obfuscate + canonical + hash)": rate(
            lambda s, q: fp.fingerprint_sql(q, s), items, args.repeat
        ),
        "display form": rate(lambda s, q: fp.display_sql(q, s), items, args.repeat),
    }
    per_dialect = {}
    for system in ("postgresql", "mysql", "sqlite"):
        subset = [it for it in items if it[0] == system]
        per_dialect[system] = rate(uncached, subset, args.repeat)
    distinct = len({fp.fingerprint_sql(q, s) for s, q in items})

    rows = [[k, v, 1e6 / v] for k, v in results.items()]
    c.print_table("Fingerprinting, one core", ["what", "statements/s", "µs/statement"], rows)
    c.print_table(
        "Uncached, per dialect",
        ["db.system.name", "statements/s", "µs/statement"],
        [[k, v, 1e6 / v] for k, v in per_dialect.items()],
    )
    others = optional_libraries(items, args.repeat)
    c.print_table(
        "Parser libraries on the same corpus (for scale)", ["what", "statements/s"], others
    )
    print(f"\n{distinct:,} distinct fingerprints in {len(items):,} statements")
    c.write_json(
        "fingerprint",
        {
            "machine": m,
            "statements": len(items),
            "mean_chars": mean_chars,
            "distinct_fingerprints": distinct,
            "statements_per_s": results,
            "uncached_per_dialect": per_dialect,
            "libraries": {r[0]: r[1] for r in others},
        },
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
