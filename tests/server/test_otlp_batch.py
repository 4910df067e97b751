"""The ingest fast path (raw-bytes batch decoder) stores exactly what the reference
decoder would, for realistic, awkward and wire-mutated requests (bench/check_decoder.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_batch_decoder_matches_reference(seed: int, capsys: pytest.CaptureFixture[str]) -> None:
    sys.path.insert(0, str(BENCH))
    try:
        import check_decoder
    finally:
        sys.path.remove(str(BENCH))
    rc = check_decoder.main(["--requests", "60", "--seed", str(seed)])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "180 passed, 0 failed" in out
