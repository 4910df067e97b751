"""Notification channels as the API and UI see them: validated, checked against SSRF,
secrets masked on the way out and kept when the mask comes back."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from heron.server.alerting._common import ChannelInUse, ReadOnly
from heron.server.alerting.notify.deliver import send_test
from heron.server.alerting.notify.ssrf import UnsafeUrl, check_host, check_url
from heron.server.config import Config
from heron.server.model.alerting import (
    SECRET_FIELDS,
    ChannelSpec,
    EmailChannel,
    RuleSpec,
    SloSpec,
    SpecError,
    parse_channel,
)
from heron.server.store.alerting import ConfigRow, NotificationRow
from heron.server.store.base import Store

EDITABLE = ("api", "starter")
MASK = "••••"
"""What a secret reads as; sent back unchanged, it keeps the stored value."""


@dataclass(frozen=True, slots=True)
class Channel:
    """A channel with its secrets masked (``config`` as in ChannelSpec, by alias)."""

    id: int
    name: str
    type: str
    config: dict[str, Any]
    version: int
    created_ns: int
    updated_ns: int
    source: str = "api"


def masked_config(spec: ChannelSpec) -> dict[str, Any]:
    """The channel's config with each non-empty secret replaced by :data:`MASK`
    (every header value of a webhook)."""
    cfg = spec.config.model_dump(by_alias=True)
    for key in SECRET_FIELDS.get(cfg["type"], ()):
        value = cfg.get(key)
        if isinstance(value, dict):
            cfg[key] = {k: MASK for k in value}
        elif value:
            cfg[key] = MASK
    return cfg


def _channel(row: ConfigRow) -> Channel:
    spec = ChannelSpec.model_validate_json(row.spec)
    return Channel(
        row.id,
        row.name,
        spec.config.type,
        masked_config(spec),
        row.version,
        row.created_ns,
        row.updated_ns,
        row.source,
    )


def _unmask(data: Any, stored: ChannelSpec) -> Any:
    """``data`` with each masked secret replaced by the stored one (same channel type)."""
    if not isinstance(data, dict) or not isinstance(data.get("config"), dict):
        return data
    cfg = dict(data["config"])
    old = stored.config.model_dump(by_alias=True)
    if cfg.get("type") != old["type"]:
        return data
    for key in SECRET_FIELDS.get(old["type"], ()):
        value = cfg.get(key)
        if isinstance(value, dict) and isinstance(old.get(key), dict):
            cfg[key] = {k: old[key].get(k, v) if v == MASK else v for k, v in value.items()}
        elif value == MASK:
            cfg[key] = old.get(key)
    return {**data, "config": cfg}


def check_channel_urls(spec: ChannelSpec, allowed_hosts: str) -> None:
    """Refuse a URL (or SMTP host) at a loopback, link-local or metadata address unless
    allowed (SpecError naming ``config.url`` or ``config.host``)."""
    cfg = spec.config
    try:
        if isinstance(cfg, EmailChannel):
            check_host(cfg.host, cfg.port, allowed_hosts)
        elif (url := getattr(cfg, "url", None)) is not None:
            check_url(url, allowed_hosts)
    except UnsafeUrl as err:
        where = "host" if isinstance(cfg, EmailChannel) else "url"
        raise SpecError(f"invalid channel: config.{where}: {err}") from None


def list_channels(store: Store, project_id: int) -> list[Channel]:
    return [_channel(r) for r in store.state.list_alert_config(project_id, "channel")]


def get_channel(store: Store, project_id: int, channel_id: int) -> Channel | None:
    row = store.state.get_alert_config(project_id, "channel", channel_id)
    return None if row is None else _channel(row)


def create_channel(
    store: Store, project_id: int, data: Any, now_ns: int, *, allowed_hosts: str = ""
) -> Channel:
    """Validate (SSRF included) and store a channel. Raises SpecError, NameTaken."""
    spec = parse_channel(data)
    check_channel_urls(spec, allowed_hosts)
    row = store.state.create_alert_config(
        project_id, "channel", spec.name, spec.to_json(), "api", now_ns
    )
    return _channel(row)


def update_channel(
    store: Store,
    project_id: int,
    channel_id: int,
    data: Any,
    now_ns: int,
    expected_version: int | None = None,
    *,
    allowed_hosts: str = "",
) -> Channel | None:
    """Replace a channel, keeping secrets sent back masked. Raises SpecError, NameTaken,
    VersionConflict, ReadOnly (a file's channel) and ChannelInUse (renaming one in use)."""
    row = store.state.get_alert_config(project_id, "channel", channel_id)
    if row is None:
        return None
    if row.source not in EDITABLE:
        raise ReadOnly(f"channel {row.name!r} comes from {row.source!r}: change it there")
    spec = parse_channel(_unmask(data, ChannelSpec.model_validate_json(row.spec)))
    check_channel_urls(spec, allowed_hosts)
    if spec.name != row.name and (users := channel_users(store, project_id, row.name)):
        raise ChannelInUse(
            f"channel {row.name!r} is used by {', '.join(users)}: "
            "point them at another channel before renaming it"
        )
    new = store.state.update_alert_config(
        project_id, "channel", channel_id, spec.name, spec.to_json(), now_ns, expected_version
    )
    return None if new is None else _channel(new)


def delete_channel(store: Store, project_id: int, channel_id: int) -> bool:
    """Delete a channel no rule or SLO names (ChannelInUse otherwise)."""
    row = store.state.get_alert_config(project_id, "channel", channel_id)
    if row is None:
        return False
    if row.source not in EDITABLE:
        raise ReadOnly(f"channel {row.name!r} comes from {row.source!r}: change it there")
    if users := channel_users(store, project_id, row.name):
        raise ChannelInUse(
            f"channel {row.name!r} is used by {', '.join(users)}: "
            "remove it from them before deleting it"
        )
    return store.state.delete_alert_config(project_id, "channel", channel_id)


def channel_users(store: Store, project_id: int, name: str) -> list[str]:
    """``rule 'x'`` / ``SLO 'y'`` for each rule (not generated by an SLO) and SLO that
    notifies the channel ``name``."""
    users = []
    for row in store.state.list_alert_config(project_id, "rule"):
        if row.source.startswith("slo:"):
            continue  # its SLO is listed instead
        spec = RuleSpec.model_validate_json(row.spec)
        if name in spec.channels or name in spec.escalate_to:
            users.append(f"rule {row.name!r}")
    for row in store.state.list_alert_config(project_id, "slo"):
        if name in SloSpec.model_validate_json(row.spec).channels:
            users.append(f"SLO {row.name!r}")
    return users


def test_channel(
    store: Store, project_id: int, channel_id: int, now_ns: int, *, config: Config
) -> NotificationRow | None:
    """Send a test notification through the channel now (logged as kind ``test``);
    None: no such channel."""
    row = store.state.get_alert_config(project_id, "channel", channel_id)
    if row is None:
        return None
    return send_test(store, project_id, row, now_ns, config=config)
