"""Connecting to the catalog database and keeping its schema at the version this code expects.

SQLite (embedded, one file, in WAL mode so readers never wait for a writer) and PostgreSQL
(shared) are both first-class; the URL chooses.
"""

from __future__ import annotations

import weakref
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Protocol

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event, inspect
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError
from sqlalchemy.orm import Session

from labledger.errors import CatalogUnavailable, NotAnArchive


class Sessions(Protocol):
    """What the query modules (quality, withdrawals) need of a catalog: sessions to read in
    and transactions to write in. :class:`labledger.catalog.Catalog` gives them."""

    def reading(self) -> AbstractContextManager[Session]: ...

    def transaction(self, what: str) -> AbstractContextManager[Session]: ...


MIGRATIONS = Path(__file__).with_name("migrations")
CONNECT_TIMEOUT_S = 5


def normalize_url(url: str) -> str:
    """The SQLAlchemy URL for what a user typed: ``postgresql://`` means psycopg 3.

    >>> normalize_url("postgresql://db/ll")
    'postgresql+psycopg://db/ll'
    """
    for plain in ("postgresql://", "postgres://"):
        if url.startswith(plain):
            return "postgresql+psycopg://" + url[len(plain) :]
    return url


def display_url(url: str) -> str:
    """The URL to show in messages: without its password."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url


def connect(url: str) -> Engine:
    """An engine on the catalog at ``url``, checked to answer; the error says why it does not."""
    shown = display_url(url)
    url = normalize_url(url)
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise CatalogUnavailable(
            f"catalog URL {shown!r} is not a database URL; use sqlite:///path or "
            "postgresql://host/database"
        ) from None
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(url, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
    elif parsed.get_backend_name() == "postgresql":
        engine = create_engine(
            url,
            connect_args={"connect_timeout": CONNECT_TIMEOUT_S},
            pool_pre_ping=True,
            pool_size=10,
        )
    else:
        raise CatalogUnavailable(
            f"catalog {shown}: labledger keeps its catalog in SQLite or PostgreSQL"
        )
    try:
        with engine.connect():
            pass
    except NoSuchModuleError as exc:
        raise CatalogUnavailable(f"catalog {shown}: {exc}") from None
    except OperationalError as exc:
        engine.dispose()
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        raise CatalogUnavailable(
            f"catalog {shown} did not answer ({reason}); check that the database "
            "server is running and the URL is right"
        ) from None
    return engine


QUERY_CANCELED = "57014"  # PostgreSQL's SQLSTATE for a statement over its timeout
_STATEMENT_MS: weakref.WeakKeyDictionary[Engine, int] = weakref.WeakKeyDictionary()


def limit_statements(engine: Engine, seconds: float) -> None:
    """Have PostgreSQL cancel any statement of ``engine`` that runs longer than ``seconds``
    (a server's guard against queries that outlive their client); SQLite has no such limit.
    Connections opened before are closed, so that every one has it; asked again, the newest
    limit holds."""
    if engine.dialect.name != "postgresql":
        return
    if engine not in _STATEMENT_MS:

        def on_connect(dbapi_connection: Any, _record: Any) -> None:
            autocommit = dbapi_connection.autocommit  # SET in a transaction can roll back
            dbapi_connection.autocommit = True
            dbapi_connection.execute(f"SET statement_timeout = {_STATEMENT_MS[engine]}")
            dbapi_connection.autocommit = autocommit

        event.listen(engine, "connect", on_connect)
    _STATEMENT_MS[engine] = max(1, round(seconds * 1000))
    engine.dispose()


def canceled(exc: BaseException) -> bool:
    """Whether a database error is a statement cancelled for running over its timeout."""
    return getattr(getattr(exc, "orig", None), "sqlstate", None) == QUERY_CANCELED


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")  # a commit survives a power cut
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def head_revision() -> str:
    """The schema version this code expects."""
    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    """The schema version of the catalog, or None if it holds no labledger tables."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def migrate(engine: Engine) -> None:
    """Bring the catalog's schema to this code's version (creating it if it is empty)."""
    cfg = _alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


def is_empty(engine: Engine) -> bool:
    return not inspect(engine).get_table_names()


def check_schema(engine: Engine, url: str) -> None:
    """Refuse, with what to do, a catalog that is not labledger's or not at this version."""
    current = current_revision(engine)
    if current is None:
        raise NotAnArchive(
            f"catalog {display_url(url)} holds no labledger archive; create one with "
            f"`labledger init DIR --catalog {display_url(url)}`"
        )
    head = head_revision()
    known = {r.revision for r in ScriptDirectory.from_config(_alembic_config()).walk_revisions()}
    if current not in known:
        raise CatalogUnavailable(
            f"catalog {display_url(url)} is at schema version {current}, newer than this "
            "labledger knows; upgrade labledger"
        )
    if current != head:
        raise CatalogUnavailable(
            f"catalog {display_url(url)} is at schema version {current}, this labledger "
            f"expects {head}; run `labledger migrate` (back it up first)"
        )
