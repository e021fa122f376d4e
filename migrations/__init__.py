"""Numbered SQL files, applied in order by ``service.database.migrate`` on both backends."""
