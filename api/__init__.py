"""The front ends: each turns its wire format into calls of the core's use cases and their
answers and refusals back into its wire format. Nothing here checks a permission, opens a
value or speaks SQL.

    rest/     the HTTP API of contract v1 (FastAPI)
    cli/      the ``secrets-ledger`` command
    server.py ``serve``: the runtime and the HTTP listeners (room for the Vault and AWS
              façades beside the REST app)
"""
