"""Projections: the views built from the event store (the current key/value view and the
audit trail), the projector that follows the store into them exactly once, and replay,
which rebuilds them from position 0. They know the domain's events and the storage
only through ``projections.ports``."""
