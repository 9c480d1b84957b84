"""The catalog: SQLAlchemy tables and queries, Alembic migrations, SQLite and PostgreSQL."""

from labledger.catalog.catalog import CLOSED, MAX_RUN_NUMBER, RUN_STATES, Catalog, NewRun
from labledger.catalog.schema import ChannelRow, MetadataRow, RunRow, SettingRow, SourceRow

__all__ = [
    "CLOSED",
    "MAX_RUN_NUMBER",
    "RUN_STATES",
    "Catalog",
    "ChannelRow",
    "MetadataRow",
    "NewRun",
    "RunRow",
    "SettingRow",
    "SourceRow",
]
