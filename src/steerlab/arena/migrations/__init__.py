"""Alembic migrations of the arena schema, run programmatically by `steerlab.arena.storage.migrate`."""
