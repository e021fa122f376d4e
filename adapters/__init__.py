"""Storage adapters: the ports of the core (``core.ports``) and of the projections
(``projections.ports``), implemented once per backend.

``sql/`` holds the SQL both backends share; ``sqlite/`` and ``postgres/`` hold what
differs (connections, bulk writes, one-statement reads, table cloning); ``storage``
opens the configured backend and is the one place that decides where a tenant is stored.
"""
