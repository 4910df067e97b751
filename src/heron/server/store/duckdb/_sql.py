"""What a DuckDB subject reader needs from the store: parameter-bound reads under the
store's time limit, and writes run on the writer thread."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

import pyarrow as pa


class SqlReads(Protocol):
    def read(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...

    def read_dicts(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]: ...

    def read_arrow(self, sql: str, params: Sequence[Any] = ()) -> pa.Table: ...

    def write(self, fn: Callable[[Any], Any], timeout: float | None = 30.0) -> Any: ...
