"""The REST API (contract v1): routers per resource over the core's use cases."""
