"""The views projected from the tenant streams, by name: ``CurrentSecretsView``
(``current``) and ``AuditTrail`` (``audit``)."""

from __future__ import annotations

from secrets_ledger.projections.audit import AuditTrail
from secrets_ledger.projections.current import CurrentSecretsView
from secrets_ledger.projections.view import View

ALL_VIEWS: tuple[type[View], ...] = (CurrentSecretsView, AuditTrail)


def views_named(name: str) -> list[type[View]]:
    if name == "all":
        return list(ALL_VIEWS)
    matches = [view for view in ALL_VIEWS if view.name == name]
    if not matches:
        raise ValueError(f"unknown view {name!r}: choose current, audit or all")
    return matches
