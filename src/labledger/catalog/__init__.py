"""The catalog: SQLAlchemy tables and queries, Alembic migrations, SQLite and PostgreSQL."""

from labledger.catalog.catalog import CLOSED, MAX_RUN_NUMBER, RUN_STATES, Catalog, NewRun
from labledger.catalog.schema import (
    CalibrationRow,
    ChannelRow,
    ConfigChangeRow,
    FlagPeriodRow,
    FlagRow,
    GoodRunListRow,
    MetadataRow,
    ProductInputRow,
    ProductRow,
    RunRow,
    SettingRow,
    SourceRow,
    WithdrawalRow,
)

__all__ = [
    "CLOSED",
    "MAX_RUN_NUMBER",
    "RUN_STATES",
    "CalibrationRow",
    "Catalog",
    "ChannelRow",
    "ConfigChangeRow",
    "FlagPeriodRow",
    "FlagRow",
    "GoodRunListRow",
    "MetadataRow",
    "NewRun",
    "ProductInputRow",
    "ProductRow",
    "RunRow",
    "SettingRow",
    "SourceRow",
    "WithdrawalRow",
]
