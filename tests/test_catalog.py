"""The catalog: migrations that match the tables, schema checks, opening by URL."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text

import labledger as ll
from labledger.archive import migrate_catalog
from labledger.catalog import database
from labledger.catalog.schema import Base
from labledger.errors import CatalogUnavailable, NotAnArchive
from labledger.sim import write_shot
from tests.conftest import snapshot


def test_migrations_build_exactly_the_tables_the_code_declares(archive: ll.Archive) -> None:
    with archive.catalog.engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
    assert database.current_revision(archive.catalog.engine) == database.head_revision()


def test_sqlite_runs_in_wal_mode(sqlite_archive: ll.Archive) -> None:
    with sqlite_archive.catalog.engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA synchronous")).scalar() == 2  # FULL


def test_a_catalog_at_another_schema_version_is_refused(sqlite_archive: ll.Archive) -> None:
    path = sqlite_archive.path
    with sqlite_archive.catalog.engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    sqlite_archive.close()
    with pytest.raises(CatalogUnavailable, match="newer than this labledger knows"):
        ll.open(path)
    with ll.init(path.parent / "other") as other:
        url = other.catalog.url
    engine = database.connect(url)
    with engine.begin() as conn:  # as if made by an older labledger: no version recorded yet
        conn.execute(text("DROP TABLE alembic_version"))
    engine.dispose()
    with pytest.raises(NotAnArchive, match="holds no labledger archive"):
        ll.open(path.parent / "other")


def test_migrate_leaves_a_current_catalog_as_it_is(
    sqlite_archive: ll.Archive, tmp_path: Path
) -> None:
    sqlite_archive.ingest([write_shot(tmp_path, 1001)])
    before = snapshot(sqlite_archive)
    assert migrate_catalog(sqlite_archive.path) == database.head_revision()
    assert snapshot(sqlite_archive) == before
    with pytest.raises(NotAnArchive):
        migrate_catalog(tmp_path)


def test_a_shared_catalog_opens_by_its_url_and_knows_its_store(pg_url: str, tmp_path: Path) -> None:
    with ll.init(tmp_path / "lab", catalog=pg_url) as la:
        la.ingest([write_shot(tmp_path, 1001)])
        store_url = la.store.url
    with ll.open(pg_url) as la:  # no folder: the catalog says where the store is
        assert la.store.url == store_url
        run = la.runs[1001]
        assert run.channels["PXI M6251/ai0"][:5].dtype.kind == "i"


def test_catalog_urls_are_normalised_and_passwords_hidden() -> None:
    assert database.normalize_url("postgres://db/x") == "postgresql+psycopg://db/x"
    assert "secret" not in database.display_url("postgresql://me:secret@db/x")
    with pytest.raises(CatalogUnavailable, match="not a database URL"):
        database.connect("not a url")
    with pytest.raises(CatalogUnavailable, match="SQLite or PostgreSQL"):
        database.connect("mysql://db/x")
