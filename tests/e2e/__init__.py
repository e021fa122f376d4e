"""End-to-end tests: the real ``secrets-ledger serve`` process, driven over real HTTP."""
