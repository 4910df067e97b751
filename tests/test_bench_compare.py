"""bench/compare.py: its arguments, and a tiny real old-vs-new run of this tree against HEAD.

The run is real (two ``heron serve``, two agent processes and plain OpenTelemetry, a git
worktree of HEAD); only its structure is checked (both sides ran, every ratio is there),
never the figures, which are noise at these sizes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
sys.path.insert(0, str(BENCH))

import compare  # noqa: E402


def test_defaults_and_choices() -> None:
    args = compare.parse_args(["--old", "abc123"])
    assert args.only == ["ingest", "agent"] and args.new is None and args.rounds == 3
    assert compare.parse_args(["--old", "x", "--only", "agent"]).only == ["agent"]


@pytest.mark.parametrize(
    "argv",
    [
        [],  # --old is required
        ["--old", "x", "--only", "ingest,query"],
        ["--old", "x", "--only", ","],
        ["--old", "x", "--rounds", "0"],
        ["--old", "x", "--fail-below", "0"],
    ],
)
def test_bad_arguments_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        compare.parse_args(argv)
    assert exc.value.code == 2
    assert "error" in capsys.readouterr().err


def test_gain_turns_costs_round() -> None:
    assert compare.gain("spans/s", 0.8) == 0.8
    assert compare.gain("agent CPU µs/span", 1.25) == pytest.approx(0.8)


@pytest.mark.e2e
def test_tiny_real_comparison_against_head(tmp_path: Path) -> None:
    """HEAD's worktree vs this tree; --fail-below 1000 cannot be met, so exit 1."""
    out = "compare-test-" + str(os.getpid())
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HERON_", "OTEL_"))}
    env["PYTHONPATH"] = str(ROOT / "src")
    done = subprocess.run(
        [
            sys.executable,
            str(BENCH / "compare.py"),
            "--old",
            "HEAD",
            "--rounds",
            "2",
            "--clients",
            "1",
            "--duration",
            "0.5",
            "--spans",
            "16",
            "--bodies",
            "1",
            "--agent-spans",
            "200",
            "--work-dir",
            str(tmp_path),
            "--out",
            out,
            "--fail-below",
            "1000",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    path = BENCH / "out" / f"{out}.json"
    doc = json.loads(path.read_text())
    path.unlink()
    assert doc["old"]["rev"] == "HEAD" and doc["new"]["rev"] == "tree"
    assert [r["round"] for r in doc["rounds"]] == [1, 2]
    assert [r["order"] for r in doc["rounds"]] == [["old", "new"], ["new", "old"]]
    for r in doc["rounds"]:
        assert r["ingest"]["old"]["spans/s"] > 0 and r["ingest"]["new"]["spans/s"] > 0
        assert r["agent"]["old"]["agent CPU µs/span"] > 0
        assert r["agent"]["new"]["agent CPU µs/span"] > 0
        assert r["agent"]["otel"]["agent CPU µs/span"] > 0
    metrics = {b: [row["metric"] for row in rows] for b, rows in doc["summary"].items()}
    assert metrics == {
        "ingest": ["spans/s", "server CPU µs/span"],
        "agent": ["agent CPU µs/span"],
    }
    for rows in doc["summary"].values():
        for row in rows:
            assert len(row["rounds"]) == 2 and row["ratio"] > 0
    assert len(doc["failing"]) == 3
    assert "| metric" in done.stdout and "new/old" in done.stdout
    assert not list(tmp_path.glob("heron-old-*")), "the worktree is removed"
