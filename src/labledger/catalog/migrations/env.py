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
    url = config.get_main_option("sqlalchemy.url")
    if url is None:
        raise SystemExit(
            "set sqlalchemy.url in alembic.ini (an archive: `labledger migrate -a PATH`)"
        )
    engine = create_engine(url)
    connection = engine.connect()

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters tables by copying
)
with context.begin_transaction():
    context.run_migrations()
