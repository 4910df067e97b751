"""A beacon's User-Agent → browser family, major version, OS family, device class, bot.

ua-parser (the maintained uap-core rules, with its Rust accelerator when installed) does
the parsing; results are cached, because a site's visitors share few distinct agents.
Bots are what ua-parser calls a "Spider", plus agents matching common crawler, uptime
checker and headless-browser patterns: their beacons are counted, never stored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from heron.server.model.rum import DEVICES

# Agents that are not people, beyond ua-parser's "Spider" device family.
_BOT = re.compile(
    r"bot\b|bot/|crawl|spider|slurp|lighthouse|pingdom|headlesschrome|phantomjs|"
    r"uptime|monitor|pagespeed|gtmetrix|facebookexternalhit|preview|python-|curl/|wget/",
    re.IGNORECASE,
)
_TABLET_FAMILIES = re.compile(r"ipad|tablet|kindle|galaxy tab|nexus (7|9|10)|xoom", re.I)
_MOBILE_OS = frozenset({"Android", "iOS", "Windows Phone", "BlackBerry OS", "KaiOS"})
_DESKTOP_OS = frozenset(
    {"Windows", "Mac OS X", "macOS", "Linux", "Ubuntu", "Chrome OS", "Fedora", "FreeBSD"}
)
MAX_UA_CHARS = 512  # longer agents are cut before parsing (and caching)


@dataclass(frozen=True, slots=True)
class UserAgentInfo:
    browser: str  # family, e.g. "Chrome", "Mobile Safari"; "Other" when unknown
    browser_version: str  # major version, "" when unknown
    os: str  # family, e.g. "Windows", "iOS"; "Other" when unknown
    device: str  # one of model.rum.DEVICES
    bot: bool


@lru_cache(maxsize=4096)
def parse_user_agent(ua: str) -> UserAgentInfo:
    """What ``ua`` says about the browser (cached)."""
    ua = ua[:MAX_UA_CHARS]
    if not ua.strip():
        return UserAgentInfo("Other", "", "Other", "other", False)
    # Imported on the first beacon, not at start: a server without RUM traffic never
    # pays for ua-parser's Rust accelerator and rules (~140 ms and a few MiB).
    from ua_parser import parse

    r = parse(ua)
    browser = r.user_agent.family if r.user_agent else "Other"
    major = (r.user_agent.major or "") if r.user_agent else ""
    os_family = r.os.family if r.os else "Other"
    device_family = r.device.family if r.device else "Other"
    bot = device_family == "Spider" or bool(_BOT.search(ua))
    device = _device_class(ua, device_family, os_family)
    assert device in DEVICES
    return UserAgentInfo(browser, major, os_family, device, bot)


def _device_class(ua: str, device_family: str, os_family: str) -> str:
    if _TABLET_FAMILIES.search(device_family) or _TABLET_FAMILIES.search(ua):
        return "tablet"
    if os_family == "Android" and "Mobile" not in ua:
        return "tablet"  # Android tablets leave "Mobile" out of their agent
    if os_family in _MOBILE_OS or "Mobi" in ua:
        return "mobile"
    if os_family in _DESKTOP_OS:
        return "desktop"
    return "other"
