"""``store.memory.keep_pandas_unloaded``: pyarrow works without importing pandas, and
still imports it when a conversion needs it. Each case runs in a fresh interpreter,
because pyarrow decides about pandas once per process. pandas is installed with the dev
extra (chdb depends on it)."""

from __future__ import annotations

import subprocess
import sys

_WRITE = """
import sys
import duckdb
import pyarrow as pa
from heron.server.store.memory import keep_pandas_unloaded
if {keep}:
    keep_pandas_unloaded()
con = duckdb.connect()
con.register("t", pa.table({{"a": [1, 2, 3], "b": ["x", "y", None]}}))
assert con.execute("SELECT sum(a), count(b) FROM t").fetchall() == [(6, 2)]
print("pandas" in sys.modules)
"""


def _run(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_pyarrow_imports_pandas_unless_kept_from_it() -> None:
    assert _run(_WRITE.format(keep=False)) == "True"  # what the server avoids
    assert _run(_WRITE.format(keep=True)) == "False"


def test_a_conversion_that_needs_pandas_still_gets_it() -> None:
    code = _WRITE.format(keep=True) + (
        "df = pa.table({'a': [1, 2]}).to_pandas()\n"
        "print(type(df).__name__, pa.Table.from_pandas(df).num_rows)\n"
    )
    assert _run(code).splitlines() == ["False", "DataFrame 2"]
