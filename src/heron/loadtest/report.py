"""The gate's outputs: console tables, Markdown, JUnit XML and JSON of a comparison.

Pure functions of the API's JSON (``Comparison`` and ``RunJSON`` + ``summary``, see
docs/api.md), so they are unit-tested without a server. Endpoint and service names are
telemetry: escaped in Markdown (no HTML, no table breaking) and carried by ElementTree's
attribute escaping in JUnit XML.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from typing import Any

Json = dict[str, Any]

COMPARED = ("regression", "improvement", "unchanged", "insufficient-data")
"""Endpoint statuses that are a test case in JUnit (``new``/``gone`` have no pair)."""


# ------------------------------------------------------------------ formatting
def _md(text: object) -> str:
    """A value safe inside a Markdown table cell or line (no HTML, no pipes)."""
    s = str(text).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")
    return s.replace("<", "&lt;").replace(">", "&gt;").replace("`", "'")


def _ms(v: float | None) -> str:
    return "–" if v is None else f"{v:,.1f} ms"


def _pct(v: float | None) -> str:
    return "–" if v is None else f"{v:+.1f} %"


def _p(v: float | None) -> str:
    if v is None:
        return "–"
    return f"{v:.2g}" if v >= 0.001 else f"{v:.1e}"


def _fig(side: Json | None, key: str) -> float | None:
    return None if not side else side.get(key)


def _where(e: Json, services: set[str]) -> str:
    return e["endpoint"] if len(services) <= 1 else f"{e['service']} · {e['endpoint']}"


def _slower(c: Json, e: Json) -> bool:
    change = e.get("p95_change_pct")
    return change is not None and change >= float(c.get("threshold_pct") or 0)


def headline(c: Json) -> str:
    """``Regression: 2 endpoints slower`` / ``No regression`` / ``Insufficient data``."""
    regressed = [e for e in c.get("endpoints", []) if e["status"] == "regression"]
    if regressed:
        slower = sum(1 for e in regressed if _slower(c, e))
        parts = []
        if slower:
            parts.append(f"{slower} endpoint{'s' if slower != 1 else ''} slower")
        if len(regressed) - slower:
            n = len(regressed) - slower
            parts.append(f"{n} endpoint{'s' if n != 1 else ''} with more errors")
        return "Regression: " + ", ".join(parts)
    if c.get("verdict") == "insufficient-data":
        return "Insufficient data: no endpoint had enough requests in both runs"
    return "No regression"


def compare_link(base_url: str, c: Json) -> str:
    return f"{base_url}/loadtests/{c['run']['id']}/compare?baseline={c['baseline']['id']}"


# ------------------------------------------------------------------ console
def _table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    out = []
    for n, r in enumerate(rows):
        out.append("  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip())
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def summary_text(run: Json) -> str:
    """One run alone: its window and per-endpoint figures."""
    eps = (run.get("summary") or {}).get("endpoints") or []
    head = (
        f"run {run['id']} {run['name']!r}: {run['status']}, {run.get('duration_s') or 0:.1f} s, "
        f"{sum(e.get('requests') or 0 for e in eps)} requests"
    )
    if not eps:
        return head + "\n(no requests seen in the window: is the app instrumented?)"
    services = {e["service"] for e in eps}
    rows = [["endpoint", "requests", "req/s", "p50", "p95", "p99", "errors"]]
    for e in eps:
        rows.append(
            [
                _where(e, services),
                str(e.get("requests") or 0),
                "–" if e.get("throughput_rps") is None else f"{e['throughput_rps']:.1f}",
                _ms(e.get("p50_ms")),
                _ms(e.get("p95_ms")),
                _ms(e.get("p99_ms")),
                "–" if e.get("error_rate") is None else f"{100 * e['error_rate']:.1f} %",
            ]
        )
    return head + "\n" + _table(rows)


def comparison_text(c: Json) -> str:
    """The comparison as a console table, headline first."""
    eps = c.get("endpoints") or []
    lines = [
        f"{headline(c)} (run {c['run']['id']} vs baseline {c['baseline']['id']} "
        f"{c['baseline']['name']!r}; threshold {c.get('threshold_pct')} %, alpha {c.get('alpha')})"
    ]
    if eps:
        services = {e["service"] for e in eps}
        rows = [["endpoint", "baseline p95", "run p95", "change", "p-value", "status"]]
        for e in eps:
            rows.append(
                [
                    _where(e, services),
                    _ms(_fig(e.get("baseline"), "p95_ms")),
                    _ms(_fig(e.get("run"), "p95_ms")),
                    _pct(e.get("p95_change_pct")),
                    _p(e.get("p_value")),
                    e["status"],
                ]
            )
        lines.append(_table(rows))
    for r in c.get("recommendations") or []:
        lines.append(f"- {r.get('title')}: {r.get('recommendation')}")
    return "\n".join(lines)


# ------------------------------------------------------------------ Markdown
def _service_rows(c: Json) -> list[str]:
    rows = []
    for s in c.get("services") or []:
        run, base = s.get("run") or {}, s.get("baseline") or {}

        def pair(key: str, unit: str, run: Json = run, base: Json = base) -> str:
            b, r = base.get(key), run.get(key)
            f = lambda v: "–" if v is None else f"{v:,.1f}{unit}"  # noqa: E731
            return f"{f(b)} → {f(r)}"

        rows.append(
            f"| {_md(s['service'])} | {pair('cpu_pct', ' %')} | {pair('memory_mb', ' MB')} "
            f"| {pair('memory_pct', ' %')} | {pair('loop_lag_ms', ' ms')} |"
        )
    return rows


def to_markdown(c: Json, base_url: str) -> str:
    """The comparison for a PR comment or ``$GITHUB_STEP_SUMMARY``."""
    run, base = c["run"], c["baseline"]
    lines = [
        f"## {_md(headline(c))}",
        "",
        f"Load test **{_md(run['name'])}** run {run['id']} vs baseline "
        f"**{_md(base['name'])}** run {base['id']} — threshold {c.get('threshold_pct')} % "
        f"on p95, alpha {c.get('alpha')}. "
        f"[Open the comparison]({compare_link(base_url, c)})",
        "",
    ]
    eps = c.get("endpoints") or []
    if eps:
        lines += [
            "| Endpoint | Service | Baseline p95 | Run p95 | Change | p-value | Status |",
            "|---|---|---:|---:|---:|---:|---|",
        ]
        for e in eps:
            status = e["status"]
            if status == "regression":
                status = "**regression**"
            lines.append(
                f"| {_md(e['endpoint'])} | {_md(e['service'])} "
                f"| {_ms(_fig(e.get('baseline'), 'p95_ms'))} | {_ms(_fig(e.get('run'), 'p95_ms'))} "
                f"| {_pct(e.get('p95_change_pct'))} | {_p(e.get('p_value'))} | {status} |"
            )
        reasons = [(e, r) for e in eps if e["status"] == "regression" for r in e.get("reasons", [])]
        if reasons:
            lines += ["", "Why:", ""]
            lines += [f"- {_md(e['endpoint'])}: {_md(r)}" for e, r in reasons]
    else:
        lines.append("No endpoint was seen in either run.")
    service_rows = _service_rows(c)
    if service_rows:
        lines += [
            "",
            "### Services (baseline → run)",
            "",
            "| Service | CPU | Memory | System memory | Event-loop lag |",
            "|---|---:|---:|---:|---:|",
            *service_rows,
        ]
    recs = c.get("recommendations") or []
    findings = c.get("findings") or []
    if recs or findings:
        lines += ["", "### Recommendations", ""]
        for r in recs:
            link = f" ([details]({base_url}{r['link']}))" if r.get("link") else ""
            lines.append(
                f"- **{_md(r.get('title', ''))}** ({_md(r.get('severity', ''))}): "
                f"{_md(r.get('recommendation', ''))}{link}"
            )
        for f in findings[:5]:
            where = _md(f.get("service", "")) + (
                f" · {_md(f['endpoint'])}" if f.get("endpoint") else ""
            )
            lines.append(
                f"- {_md(f.get('title', ''))} ({where}): {_md(f.get('recommendation', ''))}"
            )
    if c.get("method"):
        lines += ["", f"<sub>Method: {_md(c['method'])}</sub>"]
    return "\n".join(lines) + "\n"


def summary_markdown(run: Json, base_url: str) -> str:
    """A run without a baseline: its figures (no verdict)."""
    eps = (run.get("summary") or {}).get("endpoints") or []
    lines = [
        f"## Load test {_md(run['name'])}: run {run['id']} ({_md(run['status'])})",
        "",
        f"No baseline to compare with. [Open the run]({base_url}/loadtests/{run['id']})",
        "",
    ]
    if eps:
        lines += [
            "| Endpoint | Service | Requests | p50 | p95 | p99 | Errors |",
            "|---|---|---:|---:|---:|---:|---:|",
        ]
        for e in eps:
            err = "–" if e.get("error_rate") is None else f"{100 * e['error_rate']:.1f} %"
            lines.append(
                f"| {_md(e['endpoint'])} | {_md(e['service'])} | {e.get('requests') or 0} "
                f"| {_ms(e.get('p50_ms'))} | {_ms(e.get('p95_ms'))} | {_ms(e.get('p99_ms'))} "
                f"| {err} |"
            )
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------ JUnit XML
def _figures_text(e: Json) -> str:
    lines = []
    for side in ("baseline", "run"):
        f = e.get(side) or {}
        lines.append(
            f"{side}: {f.get('requests')} requests, p50 {_ms(f.get('p50_ms'))}, "
            f"p95 {_ms(f.get('p95_ms'))}, p99 {_ms(f.get('p99_ms'))}, "
            f"errors {f.get('error_rate')}"
        )
    ci = e.get("p95_ratio_ci")
    lines.append(
        f"p95 change {_pct(e.get('p95_change_pct'))}, p-value {_p(e.get('p_value'))}, "
        f"95 % CI of the p95 ratio {ci}, error rate change {e.get('error_rate_change_pp')} pp"
    )
    lines += e.get("reasons") or []
    return "\n".join(lines)


def to_junit(c: Json | None, name: str) -> str:
    """One ``<testsuite>`` (inside ``<testsuites>``), one ``<testcase>`` per compared
    endpoint: ``<failure>`` for a regression, ``<skipped>`` for too few requests.
    ``c`` None (no baseline): an empty suite, so a CI step that expects the file finds it.
    """
    eps = [e for e in (c or {}).get("endpoints", []) if e["status"] in COMPARED]
    failures = sum(1 for e in eps if e["status"] == "regression")
    skipped = sum(1 for e in eps if e["status"] == "insufficient-data")
    duration = ((c or {}).get("run") or {}).get("duration_s") or 0
    attrs = {
        "name": f"heron loadtest {name}",
        "tests": str(len(eps)),
        "failures": str(failures),
        "errors": "0",
        "skipped": str(skipped),
        "time": f"{duration:.3f}",
    }
    root = ET.Element("testsuites", {k: attrs[k] for k in ("tests", "failures", "errors")})
    suite = ET.SubElement(root, "testsuite", attrs)
    for e in eps:
        case = ET.SubElement(
            suite, "testcase", {"classname": e["service"], "name": e["endpoint"], "time": "0"}
        )
        if e["status"] == "regression":
            f = ET.SubElement(
                case,
                "failure",
                {
                    "message": (
                        f"p95 {_ms(_fig(e.get('baseline'), 'p95_ms'))} -> "
                        f"{_ms(_fig(e.get('run'), 'p95_ms'))} ({_pct(e.get('p95_change_pct'))}), "
                        f"p-value {_p(e.get('p_value'))}"
                    ),
                    "type": "regression",
                },
            )
            f.text = _figures_text(e)
        elif e["status"] == "insufficient-data":
            ET.SubElement(
                case,
                "skipped",
                {"message": "too few requests in one of the runs to compare"},
            )
        else:
            out = ET.SubElement(case, "system-out")
            out.text = _figures_text(e)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, "unicode") + "\n"


def to_json(obj: Json) -> str:
    return json.dumps(obj, indent=2, ensure_ascii=False) + "\n"
