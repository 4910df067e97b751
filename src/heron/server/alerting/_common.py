"""Errors of the alerting service that the API maps to 409 (SpecError, from the model,
is the 400 one)."""

from __future__ import annotations


class ReadOnly(Exception):
    """The object belongs to a rule file or an SLO (or is a starter rule being deleted):
    change it there (→ 409)."""


class ChannelInUse(Exception):
    """A channel that rules or SLOs name cannot be renamed or deleted (→ 409): the rules
    would silently stop notifying."""
