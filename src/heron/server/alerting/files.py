"""Rule files (TOML) and the starter rule set.

``alert_rules_path`` names a TOML file or a directory of ``*.toml`` files, each holding
``[[rule]]`` tables (the rule JSON of docs/alerting.md) and optionally ``[[channel]]``
tables. Each file is its own source (``file:<file name>``): loading makes the stored
rules and channels of that file exactly what it says, so a rule deleted from a file goes
away, and a file that does not parse changes nothing (its previous rules stay, the error
is logged and returned). Rules from files are read-only in the API and UI.

The starter set (``alert_starter_rules``) mirrors the checks Heron replaces: p95 response
time over 2 s, error rate over 5 %, host CPU over 80 %, memory over 90 %, disk over 85 %,
notified to a ``server log`` channel. It is created once per project (source
``starter``), disabled unless the switch says ``enabled``; later starts never re-create
or re-enable it.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

from heron.server.alerting._channels import check_channel_urls
from heron.server.config import Config
from heron.server.model.alerting import (
    ChannelSpec,
    RuleSpec,
    SpecError,
    parse_channel,
    parse_rule,
)
from heron.server.query.runtime import (
    CPU_MODE,
    FILESYSTEM_STATE,
    HOST,
    MEMORY_STATE,
    MOUNTPOINT,
    SYSTEM_CPU,
    SYSTEM_FILESYSTEM,
    SYSTEM_MEMORY,
)
from heron.server.store.alerting import ConfigKind, ConfigRow, NameTaken
from heron.server.store.base import Store

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

logger = logging.getLogger("heron.alerts")

FILE_SOURCE = "file:"
STARTER_SOURCE = "starter"
STARTER_CHANNEL = "server log"
STARTER_MODES = ("off", "disabled", "enabled")


# ------------------------------------------------------------------------- files
def rule_files(path: str) -> list[Path]:
    """The TOML files ``alert_rules_path`` names (none when empty); OSError when it
    does not exist."""
    if not path:
        return []
    p = Path(path)
    if p.is_dir():
        return sorted(f for f in p.glob("*.toml") if f.is_file())
    if not p.is_file():
        raise FileNotFoundError(f"alert_rules_path {path!r}: no such file or directory")
    return [p]


def parse_rule_file(text: str) -> tuple[list[ChannelSpec], list[RuleSpec]]:
    """A file's channels and rules. Raises SpecError naming the table and field."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise SpecError(f"not valid TOML: {err}") from None
    unknown = sorted(set(doc) - {"rule", "channel"})
    if unknown:
        raise SpecError(f"unknown table {unknown[0]!r}: use [[rule]] and [[channel]]")
    channels = [_parsed(parse_channel, "channel", i, t) for i, t in _tables(doc, "channel")]
    rules = [_parsed(parse_rule, "rule", i, t) for i, t in _tables(doc, "rule")]
    for what, names in (("channel", [c.name for c in channels]), ("rule", [r.name for r in rules])):
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise SpecError(f"two {what}s are named {dupes[0]!r}")
    return channels, rules


def _tables(doc: dict[str, Any], key: str) -> list[tuple[int, Any]]:
    value = doc.get(key, [])
    if not isinstance(value, list):
        raise SpecError(f"{key} must be an array of tables: write [[{key}]]")
    return list(enumerate(value))


def _parsed(parse: Any, what: str, index: int, table: Any) -> Any:
    try:
        return parse(table)
    except SpecError as err:
        raise SpecError(f"{what} {index + 1} ({_name_of(table)}): {err}") from None


def _name_of(table: Any) -> str:
    name = table.get("name") if isinstance(table, dict) else None
    return repr(name) if isinstance(name, str) else "unnamed"


def load_rule_files(store: Store, project_id: int, config: Config, now_ns: int) -> list[str]:
    """Create the starter set (once), then load every rule file into the project; returns
    the errors and warnings (also logged). A bad file keeps its previously loaded rules;
    files no longer there (or every file, when ``alert_rules_path`` is empty) lose theirs."""
    ensure_starter_rules(store, project_id, config.alert_starter_rules, now_ns)
    try:
        files = rule_files(config.alert_rules_path)
    except OSError as err:
        logger.error("alert rule files not loaded: %s", err)
        return [str(err)]
    problems: list[str] = []
    loaded = set()
    for f in files:
        source = FILE_SOURCE + f.name
        loaded.add(source)
        problems += _load_file(store, project_id, f, source, config, now_ns)
    _forget_missing_files(store, project_id, loaded, now_ns)
    for p in problems:
        logger.error("alert rule file %s", p)
    return problems


def _load_file(
    store: Store, project_id: int, path: Path, source: str, config: Config, now_ns: int
) -> list[str]:
    try:
        channels, rules = parse_rule_file(path.read_text(encoding="utf-8"))
        for c in channels:
            check_channel_urls(c, config.alert_allowed_hosts)
    except (OSError, UnicodeDecodeError, SpecError) as err:
        return [f"{path.name}: {err} (its previous rules are kept)"]
    try:
        store.state.replace_alert_config_source(
            project_id, "channel", source, [(c.name, c.to_json()) for c in channels], now_ns
        )
        store.state.replace_alert_config_source(
            project_id, "rule", source, [(r.name, r.to_json()) for r in rules], now_ns
        )
    except NameTaken as err:
        return [f"{path.name}: {err}, not from this file (its previous rules are kept)"]
    return _missing_channels(store, project_id, path.name, rules)


def _missing_channels(
    store: Store, project_id: int, file_name: str, rules: list[RuleSpec]
) -> list[str]:
    names = {c.name for c in store.state.list_alert_config(project_id, "channel")}
    return [
        f"{file_name}: rule {r.name!r}: no channel named {n!r} (loaded; it notifies nobody there)"
        for r in rules
        for n in dict.fromkeys([*r.channels, *r.escalate_to])
        if n not in names
    ]


def _forget_missing_files(store: Store, project_id: int, loaded: set[str], now_ns: int) -> None:
    kinds: tuple[ConfigKind, ...] = ("rule", "channel")
    for kind in kinds:
        rows: list[ConfigRow] = store.state.list_alert_config(project_id, kind)
        gone = {r.source for r in rows if r.source.startswith(FILE_SOURCE)} - loaded
        for source in sorted(gone):
            store.state.replace_alert_config_source(project_id, kind, source, [], now_ns)


# ------------------------------------------------------------------------ starter set
def starter_rules(enabled: bool, channel: str = STARTER_CHANNEL) -> list[RuleSpec]:
    """The seed's checks as rules (thresholds as the seed had them)."""
    common: dict[str, Any] = {"enabled": enabled, "channels": [channel], "for": "5m"}
    host = {"by": [HOST]}

    def rule(name: str, severity: str, condition: dict[str, Any], summary: str) -> RuleSpec:
        annotations = {"summary": summary, "description": f"Starter rule: {name}."}
        return parse_rule(
            {**common, "name": name, "severity": severity, "condition": condition,
             "annotations": annotations}
        )  # fmt: skip

    return [
        rule(
            "Slow responses (p95 > 2 s)",
            "warning",
            {"kind": "red", "figure": "p95_ms", "op": ">", "threshold": 2000, "min_requests": 10},
            "{{ labels.service }}: p95 response time {{ value | round | int }} ms (over 2 s)",
        ),
        rule(
            "High error rate (> 5 %)",
            "critical",
            {"kind": "red", "figure": "error_rate", "op": ">", "threshold": 5, "min_requests": 20},
            "{{ labels.service }}: {{ value | round(1) }} % of requests fail (over 5 %)",
        ),
        rule(
            "High CPU (> 80 %)",
            "warning",
            {
                "kind": "metric",
                "metric": SYSTEM_CPU,
                "agg": "avg",
                **host,
                "filter": {CPU_MODE: "idle"},
                "op": "<",
                "threshold": 0.2,
            },
            "{{ labels['host.name'] }}: CPU {{ ((1 - value) * 100) | round | int }} % busy",
        ),  # fmt: skip
        rule(
            "High memory use (> 90 %)",
            "warning",
            {
                "kind": "metric",
                "metric": SYSTEM_MEMORY,
                "agg": "avg",
                **host,
                "filter": {MEMORY_STATE: "used"},
                "op": ">",
                "threshold": 0.9,
            },
            "{{ labels['host.name'] }}: memory {{ (value * 100) | round | int }} % used",
        ),  # fmt: skip
        rule(
            "Disk filling up (> 85 %)",
            "warning",
            {
                "kind": "metric",
                "metric": SYSTEM_FILESYSTEM,
                "agg": "last",
                "by": [HOST, MOUNTPOINT],
                "filter": {FILESYSTEM_STATE: "used"},
                "op": ">",
                "threshold": 0.85,
            },
            "{{ labels['host.name'] }} {{ labels['system.filesystem.mountpoint'] }}: "
            "disk {{ (value * 100) | round | int }} % full",
        ),  # fmt: skip
        rule(
            "Slow page loads (LCP p75 > 4 s)",
            "warning",
            {
                "kind": "rum",
                "vital": "LCP",
                "figure": "p75",
                "by": "page",
                "window": "15m",
                "op": ">",
                "threshold": 4000,
                "min_samples": 20,
            },
            "{{ labels.page }}: real users' LCP p75 {{ value | round | int }} ms (over 4 s)",
        ),  # fmt: skip
    ]


def ensure_starter_rules(store: Store, project_id: int, mode: str, now_ns: int) -> list[ConfigRow]:
    """Create the starter set unless ``mode`` is ``off`` or the project has had it (its
    rules cannot be deleted, only disabled, so their presence is the record). A rule
    name already taken by the user's own rule is skipped. Returns the rules created."""
    if mode == "off":
        return []
    rules = store.state.list_alert_config(project_id, "rule")
    if any(r.source == STARTER_SOURCE for r in rules):
        return []
    channels = store.state.list_alert_config(project_id, "channel")
    if not any(c.name == STARTER_CHANNEL for c in channels):
        log = ChannelSpec.model_validate({"name": STARTER_CHANNEL, "config": {"type": "log"}})
        store.state.replace_alert_config_source(
            project_id, "channel", STARTER_SOURCE, [(log.name, log.to_json())], now_ns
        )
    taken = {r.name for r in rules}
    items = [(r.name, r.to_json()) for r in starter_rules(mode == "enabled") if r.name not in taken]
    created = store.state.replace_alert_config_source(
        project_id, "rule", STARTER_SOURCE, items, now_ns
    )
    logger.info("created %d starter alert rules (%s)", len(created), mode)
    return created
