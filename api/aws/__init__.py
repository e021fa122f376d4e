"""The AWS Secrets Manager façade: Secrets Manager's JSON 1.1 protocol over the ledger."""
