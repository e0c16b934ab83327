"""Alembic environment: runs on the connection that `storage.migrate` passes in `config.attributes`."""

from alembic import context

from steerlab.arena.storage import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run arena migrations through steerlab.arena.storage.migrate(engine)")

context.configure(connection=connection, target_metadata=metadata, render_as_batch=connection.dialect.name == "sqlite")
with context.begin_transaction():
    context.run_migrations()
