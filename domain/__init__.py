"""The pure core of secrets-ledger: the tenant aggregate, its rules and crypto primitives.

Nothing in this package performs I/O or imports from ``api``, ``projections`` or ``service``.
"""
