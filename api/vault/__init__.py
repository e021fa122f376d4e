"""The Vault façade: HashiCorp Vault's KV version 2 HTTP API over the ledger."""
