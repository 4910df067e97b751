"""The server's memory budget: DuckDB's settings from ``memory_limit_mb``, and handing
memory back to the operating system after the background jobs' peaks.

Left alone, DuckDB may use 80% of the machine's RAM and one thread per core, each with
its own hash tables, and the analysis job's queries grow with the spans of its window.
glibc's malloc (Python's objects, Arrow buffers, decoded requests) also keeps the pages
a finished job freed, so the process's RSS stays at its highest peak. Both are bounded
here: DuckDB by ``memory_limit`` (beyond it, its operators spill to ``temp_directory``)
and fewer threads on a small budget, malloc by ``malloc_trim`` after each background
job. DuckDB's own allocator keeps some freed memory too, within its limit.

Left alone, pyarrow also imports pandas (~30 MiB and ~300 modules) into a server that
never uses it: see ``keep_pandas_unloaded``.
"""

from __future__ import annotations

import ctypes
import functools
import os
import sys
import weakref
from collections.abc import Callable, Sequence
from importlib.abc import MetaPathFinder
from importlib.machinery import ModuleSpec
from pathlib import Path
from types import ModuleType
from typing import Protocol

DUCKDB_SHARE = 0.5  # the rest is the Python side's: code, requests, write queue, caches
MIB_PER_THREAD = 128


def duckdb_config(memory_limit_mb: int, db_path: Path) -> dict[str, str]:
    """DuckDB's settings for a server whose budget is ``memory_limit_mb``; it spills to
    ``<db_path>.tmp`` (DuckDB's own default place, made explicit)."""
    duckdb_mb = int(memory_limit_mb * DUCKDB_SHARE)
    threads = max(1, min(os.cpu_count() or 1, duckdb_mb // MIB_PER_THREAD))
    return {
        "memory_limit": f"{duckdb_mb}MiB",
        "threads": str(threads),
        "temp_directory": f"{db_path}.tmp",
    }


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc (musl, say): nothing to do
        return None


class Releaser(Protocol):
    def release_memory(self) -> None:
        """Hand memory that is cached but free back (to malloc or the OS); never raise."""


# Open DuckDB files (store.duckdb_connection), weakly: a closed store drops out by itself.
_releasers: weakref.WeakSet[Releaser] = weakref.WeakSet()


def release_on_trim(owner: Releaser) -> None:
    """Have ``release_free_memory`` call ``owner.release_memory()`` first."""
    _releasers.add(owner)


def release_free_memory() -> None:
    """Have each open DuckDB file hand back the memory its allocator keeps (after a
    10M-span read it kept ~150 MiB free), then return the pages malloc holds free to
    the OS (glibc only)."""
    for owner in list(_releasers):
        owner.release_memory()
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


def keep_pandas_unloaded() -> None:
    """Stop pyarrow from importing pandas when nothing needs it.

    The first time pyarrow converts a Python list it imports pandas, when installed (the
    ClickHouse extra's chdb depends on it), only to ask whether the list is a pandas
    object; the DuckDB store converts lists at every write. Heron never hands pyarrow a
    pandas object, so this makes that first check run while pandas cannot be imported:
    pyarrow then remembers "no pandas" for such checks, and still imports pandas when a
    conversion needs it (``Table.to_pandas``). Call it once, early, before other threads
    start; it does nothing when pandas is already loaded or pyarrow already looked.
    """
    if "pandas" in sys.modules:
        return
    import pyarrow as pa

    hook = _PandasBlocker()
    sys.meta_path.insert(0, hook)
    try:
        pa.array([0])
    finally:
        sys.meta_path.remove(hook)


class _PandasBlocker(MetaPathFinder):
    """An import hook under which ``import pandas`` fails even when pandas is installed."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if fullname == "pandas" or fullname.startswith("pandas."):
            raise ImportError("pandas is not loaded in the server until something needs it")
        return None
