"""The application core: the one door into the ledger.

Every front end (the REST API, the CLI, and the coming Vault and AWS façades) hands its
caller's credential and request to the use cases here; the core authenticates the
credential, checks the caller's permission from one policy table (``policy``), and acts
through the ports (``ports``) that the storage adapters implement. Nothing here speaks
HTTP or SQL.
"""
