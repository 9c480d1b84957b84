"""The catalog: SQLAlchemy tables and queries, Alembic migrations, SQLite and PostgreSQL.

What it records are the plain dataclasses of :mod:`labledger.records`, mapped onto its tables."""

from labledger.catalog.catalog import Catalog, NewRun

__all__ = ["Catalog", "NewRun"]
