"""Alembic's entry point for the catalog's migrations.

labledger runs these itself (``labledger init``, ``labledger migrate``) on the connection it
holds; a developer adding a migration runs ``alembic -c src/labledger/catalog/alembic.ini
revision --autogenerate -m "..."`` against a scratch database.
"""

from alembic import context
from sqlalchemy import create_engine

from labledger.catalog.schema import Base

config = context.config
connection = config.attributes.get("connection")

if connection is None:  # run from the alembic command line
    engine = create_engine(config.get_main_option("sqlalchemy.url"))
    connection = engine.connect()

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters tables by copying
)
with context.begin_transaction():
    context.run_migrations()
