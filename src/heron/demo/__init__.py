"""``heron demo``: the Heron server, a two-service demo web shop and a traffic generator.

Modules:

- :mod:`heron.demo.runner` starts and stops everything (``run_demo``).
- :mod:`heron.demo.shop` is the ``demo-shop`` Flask app; it calls
  :mod:`heron.demo.inventory` (``demo-inventory``) over HTTP so traces cross services.
- :mod:`heron.demo.pages` are the shop's HTML pages, with Heron's browser SDK.
- :mod:`heron.demo.traffic` sends a realistic request mix to the shop;
  :mod:`heron.demo.browser` drives a headless Chromium through its pages.

The keys and token below are **demo-only**: the demo binds every socket to 127.0.0.1 and
keeps its data in its own directory. Never reuse them (or the demo's data directory) for a
real deployment.
"""

from __future__ import annotations

DEMO_INGEST_KEY = "hk_demo_only_not_secret"
"""Ingest key of the demo's default project (sent by the demo apps as ``x-heron-key``)."""

DEMO_API_TOKEN = "ht_demo_only_not_secret"
"""Read-API token the demo server accepts: ``Authorization: Bearer <token>``."""

DEMO_BROWSER_KEY = "hb_demo_only_not_secret"
"""Browser key of the demo's project: the shop's pages embed it for Heron's RUM SDK."""

SHOP_SERVICE = "demo-shop"
INVENTORY_SERVICE = "demo-inventory"

__all__ = [
    "DEMO_API_TOKEN",
    "DEMO_BROWSER_KEY",
    "DEMO_INGEST_KEY",
    "INVENTORY_SERVICE",
    "SHOP_SERVICE",
]
