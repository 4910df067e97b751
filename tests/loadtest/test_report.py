"""The gate's outputs from a comparison as the API returns it (docs/api.md's contract):
JUnit XML parses and counts right, Markdown says the verdict and escapes telemetry."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

from heron.loadtest import report

URL = "http://heron.example:4318"


def figures(p95: float, requests: int = 500, error_rate: float = 0.0) -> dict[str, Any]:
    return {
        "requests": requests,
        "throughput_rps": requests / 10,
        "p50_ms": p95 / 2,
        "p95_ms": p95,
        "p99_ms": p95 * 1.3,
        "mean_ms": p95 / 1.8,
        "error_rate": error_rate,
        "db_ms_per_request": None,
        "queries_per_request": None,
    }


def endpoint(name: str, status: str, base: float | None, run: float | None, **kw: Any) -> Any:
    change = None if base is None or run is None else 100 * (run / base - 1)
    return {
        "service": kw.pop("service", "shop"),
        "endpoint": name,
        "status": status,
        "reasons": kw.pop("reasons", []),
        "run": None if run is None else figures(run, **kw),
        "baseline": None if base is None else figures(base, **kw),
        "p95_change_pct": change,
        "p95_ratio_ci": None if change is None else [1.3, 1.5],
        "p_value": None if change is None else 1e-12,
        "error_rate_change_pp": 0.0,
        "error_p_value": 1.0,
        "throughput_change_pct": 0.0,
        "links": {"endpoint": "/endpoint?x", "traces": "/traces?x"},
    }


def comparison(endpoints: list[Any], verdict: str) -> dict[str, Any]:
    run = {"id": 7, "name": "checkout-50u", "duration_s": 12.5}
    return {
        "run": run,
        "baseline": {"id": 3, "name": "checkout-50u", "duration_s": 12.0},
        "verdict": verdict,
        "threshold_pct": 20.0,
        "alpha": 0.01,
        "error_threshold_pp": 1.0,
        "min_requests": 30,
        "method": "Mann-Whitney U, one-sided",
        "regressions": sum(e["status"] == "regression" for e in endpoints),
        "improvements": sum(e["status"] == "improvement" for e in endpoints),
        "endpoints": endpoints,
        "services": [
            {
                "service": "shop",
                "run": {
                    "cpu_pct": 91.0,
                    "memory_mb": 120.0,
                    "memory_pct": 40.0,
                    "loop_lag_ms": None,
                },
                "baseline": {
                    "cpu_pct": 60.0,
                    "memory_mb": 118.0,
                    "memory_pct": 39.0,
                    "loop_lag_ms": None,
                },
            }
        ],
        "recommendations": [
            {
                "severity": "warning",
                "title": "CPU above 80 % in shop",
                "recommendation": "scale out / profile CPU",
                "evidence": {"cpu_pct": 91.0},
                "link": "/services/shop",
            }
        ],
        "findings": [],
    }


MIXED = comparison(
    [
        endpoint("GET /a", "regression", 40.0, 58.0, reasons=["p95 +45 %"]),
        endpoint("POST /pay|<script>", "regression", 10.0, 10.5, error_rate=0.05),
        endpoint("GET /b", "unchanged", 25.0, 25.5),
        endpoint("GET /c", "improvement", 25.0, 15.0),
        endpoint("GET /rare", "insufficient-data", 5.0, 5.0, requests=3),
        endpoint("GET /new", "new", None, 5.0),
        endpoint("GET /old", "gone", 5.0, None),
    ],
    "regression",
)


def test_junit_counts_failures_and_skips() -> None:
    root = ET.fromstring(report.to_junit(MIXED, "checkout-50u"))
    assert root.tag == "testsuites"
    (suite,) = root.findall("testsuite")
    assert suite.get("name") == "heron loadtest checkout-50u"
    cases = suite.findall("testcase")
    # new and gone endpoints have no pair: not test cases
    assert [c.get("name") for c in cases] == [
        "GET /a", "POST /pay|<script>", "GET /b", "GET /c", "GET /rare",
    ]  # fmt: skip
    assert {c.get("classname") for c in cases} == {"shop"}
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("5", "2", "1")
    assert suite.get("errors") == "0" and root.get("failures") == "2"
    failed = [c for c in cases if c.find("failure") is not None]
    assert [c.get("name") for c in failed] == ["GET /a", "POST /pay|<script>"]
    message = failed[0].find("failure").get("message")  # type: ignore[union-attr]
    assert "40.0 ms -> 58.0 ms" in message and "+45.0 %" in message
    assert "p95 +45 %" in (failed[0].find("failure").text or "")  # type: ignore[union-attr]
    skipped = [c.get("name") for c in cases if c.find("skipped") is not None]
    assert skipped == ["GET /rare"]


def test_junit_without_comparison_is_an_empty_suite() -> None:
    suite = ET.fromstring(report.to_junit(None, "smoke")).find("testsuite")
    assert suite is not None and suite.get("tests") == "0" and not list(suite)


def test_markdown_headline_and_escaping() -> None:
    md = report.to_markdown(MIXED, URL)
    assert md.startswith("## Regression: 1 endpoint slower, 1 endpoint with more errors\n")
    assert f"({URL}/loadtests/7/compare?baseline=3)" in md
    assert "| GET /a | shop | 40.0 ms | 58.0 ms | +45.0 % | 1.0e-12 | **regression** |" in md
    assert "<script>" not in md and "POST /pay\\|&lt;script&gt;" in md
    assert "scale out / profile CPU" in md and f"({URL}/services/shop)" in md
    assert "| shop | 60.0 % → 91.0 % |" in md


def test_headlines() -> None:
    ok = comparison([endpoint("GET /b", "unchanged", 25.0, 25.5)], "pass")
    assert report.headline(ok) == "No regression"
    assert report.to_markdown(ok, URL).startswith("## No regression\n")
    two = comparison(
        [endpoint(p, "regression", 10.0, 20.0) for p in ("GET /x", "GET /y")], "regression"
    )
    assert report.headline(two) == "Regression: 2 endpoints slower"
    few = comparison([endpoint("GET /b", "insufficient-data", 1.0, 1.0)], "insufficient-data")
    assert report.headline(few).startswith("Insufficient data")


def test_console_table() -> None:
    text = report.comparison_text(MIXED)
    first, header, rule, *rows = text.splitlines()
    assert first.startswith("Regression: 1 endpoint slower") and "baseline 3" in first
    assert header.split() == [
        "endpoint",
        "baseline",
        "p95",
        "run",
        "p95",
        "change",
        "p-value",
        "status",
    ]
    assert rows[0].split()[:2] == ["GET", "/a"] and rows[0].endswith("regression")


def test_summary_of_a_run_alone() -> None:
    run = {
        "id": 4,
        "name": "smoke",
        "status": "finished",
        "duration_s": 9.5,
        "summary": {"endpoints": [{"service": "shop", "endpoint": "GET /a", **figures(40.0)}]},
    }
    text = report.summary_text(run)
    assert text.splitlines()[0] == "run 4 'smoke': finished, 9.5 s, 500 requests"
    md = report.summary_markdown(run, URL)
    assert "| GET /a | shop | 500 | 20.0 ms | 40.0 ms | 52.0 ms | 0.0 % |" in md
    empty = report.summary_text({**run, "summary": {"endpoints": []}})
    assert "no requests seen" in empty
