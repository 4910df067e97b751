"""Annotations: a rule's summary, description and runbook URL rendered per instance.

Templates are Jinja in a sandbox (no attribute access to internals, no imports), since
anyone who may edit rules writes them; the output is plain text (never HTML: channels
escape it for their format). A template that does not compile or render raises
:class:`TemplateError` naming the field, and the evaluator marks the rule broken.
"""

from __future__ import annotations

import functools
from typing import Any

from jinja2 import TemplateError as JinjaError
from jinja2.sandbox import SandboxedEnvironment

from heron.server.model.alerting import Annotations, RuleSpec

MAX_OUTPUT = 4000


class TemplateError(ValueError):
    """An annotation template failed; the message names the field."""


@functools.lru_cache(maxsize=1)
def _env() -> SandboxedEnvironment:
    return SandboxedEnvironment(autoescape=False)


@functools.lru_cache(maxsize=2048)
def _compile(source: str) -> Any:
    return _env().from_string(source)


def render_annotations(
    rule: RuleSpec,
    *,
    value: float | None,
    labels: dict[str, str],
    link: str,
) -> dict[str, str]:
    """summary, description, runbook_url rendered with ``value``, ``threshold``,
    ``labels``, ``link`` and ``rule`` (name, severity, labels); plus ``link`` itself."""
    cond = rule.condition
    context = {
        "value": value,
        "threshold": getattr(cond, "threshold", None),
        "labels": labels,
        "link": link,
        "rule": {"name": rule.name, "severity": rule.severity, "labels": dict(rule.labels)},
    }
    out = {name: _render(name, text, context) for name, text in _fields(rule.annotations)}
    out["link"] = link
    return out


def _fields(a: Annotations) -> list[tuple[str, str]]:
    return [("summary", a.summary), ("description", a.description), ("runbook_url", a.runbook_url)]


def _render(name: str, source: str, context: dict[str, Any]) -> str:
    if "{" not in source:
        return source
    try:
        return str(_compile(source).render(context))[:MAX_OUTPUT]
    except JinjaError as err:
        raise TemplateError(f"annotations.{name}: {err.message or err}") from None
    except Exception as err:  # a sandboxed call raising (e.g. a bad format string)
        raise TemplateError(f"annotations.{name}: {type(err).__name__}: {err}") from None
