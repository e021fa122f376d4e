"""SQLite: the embedded default (files in the data directory, no server)."""
