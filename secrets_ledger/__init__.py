"""secrets-ledger: an event-sourced, encrypted, per-tenant secrets ledger.

The repository keeps each layer in a top-level folder (``domain/``, ``core/``,
``adapters/``, ``projections/``, ``api/``, ``migrations/``); this package links them under
one import name, so that the installed distribution claims ``secrets_ledger`` and no
generic top-level name (``api``, ``domain``...). Code imports them as
``secrets_ledger.<layer>``, never by the bare folder name.
"""
