"""The catalog: SQLAlchemy tables and queries, Alembic migrations, SQLite and PostgreSQL."""

from labledger.catalog.catalog import CLOSED, MAX_RUN_NUMBER, RUN_STATES, Catalog, NewRun
from labledger.catalog.schema import (
    CalibrationRow,
    ChannelRow,
    ConfigChangeRow,
    MetadataRow,
    RunRow,
    SettingRow,
    SourceRow,
)

__all__ = [
    "CLOSED",
    "MAX_RUN_NUMBER",
    "RUN_STATES",
    "CalibrationRow",
    "Catalog",
    "ChannelRow",
    "ConfigChangeRow",
    "MetadataRow",
    "NewRun",
    "RunRow",
    "SettingRow",
    "SourceRow",
]
