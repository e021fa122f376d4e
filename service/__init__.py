"""The application service: storage, key store and the ledger's use cases, free of HTTP."""
