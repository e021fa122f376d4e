"""PostgreSQL: production storage (events, views, keys and tokens in one database)."""
