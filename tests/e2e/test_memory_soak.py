"""Memory soak: a real ``heron serve`` ingests for minutes and stays under its memory limit.

Runs ``bench/memory_soak.py`` (real HTTP, realistic 512-span OTLP requests, RSS sampled
every 0.5 s), which keeps watching the server after ingest stops, while the analysis
job runs over the spans just ingested. ``HERON_SOAK_SECONDS`` sets the ingest time
(default 120 s; longer runs make a better soak) and ``HERON_SOAK_LIMIT_MB`` the
server's ``memory_limit_mb`` (default 768).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
SECONDS = float(os.environ.get("HERON_SOAK_SECONDS", "120"))
LIMIT_MB = int(os.environ.get("HERON_SOAK_LIMIT_MB", "768"))
AFTER_S = 35  # three analysis runs (every 10 s) after the last request


@pytest.mark.timeout(SECONDS + AFTER_S + 600)
def test_rss_stays_under_the_memory_limit_during_and_after_ingest(tmp_path: Path) -> None:
    out = tmp_path / "soak.json"
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "memory_soak.py"),
            f"--duration={SECONDS}",
            f"--after={AFTER_S}",
            f"--memory-limit-mb={LIMIT_MB}",
            f"--json={out}",
        ],
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
        capture_output=True,
        text=True,
        timeout=SECONDS + AFTER_S + 540,
    )
    assert out.exists(), done.stdout + done.stderr
    result = json.loads(out.read_text())
    limit = LIMIT_MB * 2**20
    peaks = (result["peak_rss_ingest"], result["peak_rss_after"])
    assert max(peaks) < limit, (peaks, done.stdout)
    assert done.returncode == 0, done.stdout + done.stderr
    # It was a soak: spans kept arriving and RSS was sampled throughout, both phases.
    assert result["acked_spans"] >= 500 * SECONDS, result["acked_spans"]
    phases = [phase for _, phase, _ in result["samples"]]
    assert phases.count("ingest") >= SECONDS and phases.count("after") >= AFTER_S
    # The analysis ran after ingest stopped: its query statistics count every database
    # span acknowledged, the last ones included.
    assert result["analysed_db_calls"] == result["acked_db_spans"] > 0, result
