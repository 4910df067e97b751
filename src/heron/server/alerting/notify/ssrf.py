"""Outgoing-URL checks: a channel must not make Heron call itself, the machine's other
local services or a cloud metadata endpoint (server-side request forgery).

Checked when a channel is saved (:func:`check_url`) and again at every send
(:func:`resolve_safe`), because a name can resolve elsewhere later; senders connect to
the addresses this module checked, not to a second resolution. Private networks
(10/8, 192.168/16, ...) are allowed: webhooks inside a company network are normal.
``alert_allowed_hosts`` (host names, addresses or networks) lifts the check.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# Cloud metadata services outside the link-local range (AWS IPv6, Alibaba).
_METADATA = frozenset(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200")
)


class UnsafeUrl(ValueError):
    """An outgoing URL is malformed or points at an address Heron refuses to call."""


def _allowed_entries(allowed: str) -> list[str]:
    return [e.strip().lower() for e in allowed.split(",") if e.strip()]


def _host_allowed(host: str, allowed: str) -> bool:
    return host.lower().strip("[]") in _allowed_entries(allowed)


def _ip_allowed(ip: IPAddress, allowed: str) -> bool:
    for entry in _allowed_entries(allowed):
        try:
            if ip in ipaddress.ip_network(entry, strict=False):
                return True
        except ValueError:
            continue  # a host name entry
    return False


def refused_reason(ip: IPAddress) -> str | None:
    """Why Heron does not call ``ip`` (None: it may)."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip in _METADATA:
        return "a cloud metadata address"
    for attr, why in (
        ("is_loopback", "a loopback address"),
        ("is_link_local", "a link-local address"),
        ("is_unspecified", "the unspecified address"),
        ("is_multicast", "a multicast address"),
    ):
        if getattr(ip, attr):
            return why
    return None


def _check_ip(host: str, ip: IPAddress, allowed: str) -> None:
    why = refused_reason(ip)
    if why and not _ip_allowed(ip, allowed):
        raise UnsafeUrl(f"host {host!r} is {why} ({ip}); add it to alert_allowed_hosts to allow it")


def split_url(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of an http(s) URL; UnsafeUrl when it is not one."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as err:
        raise UnsafeUrl(f"invalid URL: {err}") from None
    if parts.scheme not in ("http", "https"):
        raise UnsafeUrl("the URL must start with http:// or https://")
    if not parts.hostname:
        raise UnsafeUrl("the URL has no host")
    return parts.scheme, parts.hostname, port or (443 if parts.scheme == "https" else 80)


def resolve_safe(host: str, port: int, allowed: str) -> list[str]:
    """The addresses of ``host`` to connect to, each checked; UnsafeUrl if any is
    refused or the name does not resolve."""
    try:
        literal: IPAddress | None = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        literal = None
    if literal is not None:
        if not _host_allowed(host, allowed):
            _check_ip(host, literal, allowed)
        return [str(literal)]
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as err:
        raise UnsafeUrl(f"cannot resolve host {host!r}: {err}") from None
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    if not _host_allowed(host, allowed):
        for address in addresses:
            _check_ip(host, ipaddress.ip_address(address.split("%")[0]), allowed)
    return addresses


def check_url(url: str, allowed: str) -> None:
    """Refuse a URL Heron must not call (when a channel is saved). A name that does not
    resolve now passes: the check at send time refuses it then, so a channel can be
    configured before its DNS exists."""
    _, host, port = split_url(url)
    try:
        resolve_safe(host, port, allowed)
    except UnsafeUrl as err:
        if str(err).startswith("cannot resolve"):
            return
        raise


def check_host(host: str, port: int, allowed: str) -> None:
    """The same check for a host that is not a URL (an SMTP server)."""
    try:
        resolve_safe(host, port, allowed)
    except UnsafeUrl as err:
        if not str(err).startswith("cannot resolve"):
            raise
