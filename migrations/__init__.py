"""Numbered SQL files, one folder per backend, applied in order by ``service.database.migrate``."""
