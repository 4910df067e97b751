"""The analysis report as a file: Markdown (for people and CI summaries) and standalone
HTML (the /analysis page's template), from the JSON API's shape (``report_dict``)."""

from __future__ import annotations

from typing import Any

from heron.server.ui._render import Renderer


def to_html(report: dict[str, Any], base_url: str = "") -> str:
    """One self-contained page; telemetry strings autoescaped, links under ``base_url``."""
    env = Renderer().env
    return env.get_template("analysis_export.html").render(r=report, base=base_url.rstrip("/"))


def _md(text: object) -> str:
    """A value safe inside a Markdown table cell or line (no HTML, no pipes)."""
    s = str(text).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")
    return s.replace("<", "&lt;").replace(">", "&gt;").replace("`", "'")


def _ms(v: float | None) -> str:
    return "–" if v is None else f"{v:,.0f} ms"


def _pct(v: float | None) -> str:
    return "–" if v is None else f"{v:.1f} %"


def to_markdown(report: dict[str, Any], base_url: str = "") -> str:
    base = base_url.rstrip("/")
    grade = report.get("grade") or "–"
    score = report.get("score")
    lines = [
        f"# Heron performance analysis: grade {grade}"
        + (f" ({score:.1f}/10)" if score is not None else " (no requests)"),
        "",
        f"{report['from']} – {report['to']}"
        + (f", service {_md(report['service'])}" if report.get("service") else ""),
        "",
        "## Services",
        "",
        "| Grade | Service | Score | Requests | Why |",
        "|---|---|---|---|---|",
    ]
    for s in report["services"]:
        g = s["graded"]
        sc = f"{g['score']:.1f}" if g["score"] is not None else "–"
        lines.append(
            f"| {g['grade'] or '–'} | {_md(s['service'])} | {sc} | {s['requests']} | "
            f"{_md(g['reason'])} |"
        )
    for s in report["services"]:
        lines += ["", f"### {_md(s['service'])}", ""]
        lines += [f"- {_md(a['reason'])}" for a in s["graded"]["areas"]]
        worst = [e for e in s["endpoints"] if e["grade"] not in (None, "A")]
        if worst:
            lines += ["", "| Grade | Endpoint | Score | Why |", "|---|---|---|---|"]
            for e in worst:
                why = "; ".join(_md(a["reason"]) for a in e["areas"] if a["level"] != "good")
                lines.append(f"| {e['grade']} | {_md(e['name'])} | {e['score']:.1f} | {why} |")
    lines += ["", f"## Findings ({len(report['findings'])})", ""]
    for i, f in enumerate(report["findings"], 1):
        impact = f["impact_ms_per_min"]
        cost = f", {impact:,.0f} ms of user time per minute" if impact is not None else ""
        lines.append(f"{i}. **{f['severity']}**: {_md(f['title'])}{cost}")
        where = _md(f["service"]) + (f" · {_md(f['endpoint'])}" if f["endpoint"] else "")
        evidence = ", ".join(f"{k} {_md(v)}" for k, v in f["evidence"].items() if v is not None)
        lines.append(f"   - where: {where}; evidence: {evidence}")
        lines.append(f"   - fix: {_md(f['recommendation'])}")
        lines.append(f"   - link: {base}{f['link']}")
    if report.get("comparison") is not None:
        lines += [
            "",
            f"## Compared with {report['baseline_from']} – {report['baseline_to']}",
            "",
            "| Verdict | Service | Endpoint | p95 baseline → now | Change | Errors baseline → now |",
            "|---|---|---|---|---|---|",
        ]
        for c in report["comparison"]:
            if c["verdict"] == "unchanged":
                continue
            change = f"{c['p95_change_pct']:+.1f} %" if c["p95_change_pct"] is not None else "–"
            lines.append(
                f"| {c['verdict']} | {_md(c['service'])} | {_md(c['endpoint'])} | "
                f"{_ms(c['baseline_p95_ms'])} → {_ms(c['p95_ms'])} | {change} | "
                f"{_pct(c['baseline_error_rate_pct'])} → {_pct(c['error_rate_pct'])} |"
            )
        same = sum(1 for c in report["comparison"] if c["verdict"] == "unchanged")
        lines += ["", f"{same} endpoints unchanged."]
    if report.get("not_covered"):
        lines += ["", "## Not checked", ""] + [f"- {_md(n)}" for n in report["not_covered"]]
    return "\n".join(lines) + "\n"
