"""``labledger migrate`` brings a catalog from every earlier schema revision to the newest, on
SQLite and PostgreSQL, and what was written before reads back after.

An archive is filled at the newest revision (runs, machine history, products, flags, a good-run
list, users and keys), taken down to an earlier revision with Alembic's own downgrade (what
that revision's tables hold is what an archive of that time held), then brought up by the
command a user runs. The rows of the old revision's tables, column by column, and what the
public API reads from them must be as before. A new migration is covered without a change here:
the revisions come from the migration scripts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect, text

import labledger as ll
from labledger.catalog import database
from labledger.sim import build
from labledger.sim.analysis import density
from tests.conftest import cli, new_pg_database


def _config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(database.MIGRATIONS))
    return cfg


def _earlier_revisions() -> list[str]:
    scripts = ScriptDirectory.from_config(_config())
    chain = [s.revision for s in scripts.walk_revisions()]  # newest first
    return chain[1:]


def _rows(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every table's rows, columns by name, in a fixed order (alembic's own table aside)."""
    found = {}
    with engine.connect() as conn:
        for table in inspect(conn).get_table_names():
            if table == "alembic_version":
                continue
            columns = sorted(c["name"] for c in inspect(conn).get_columns(table))
            rows = conn.execute(text(f'SELECT {", ".join(columns)} FROM "{table}"')).all()
            found[table] = sorted((tuple(zip(columns, r, strict=True)) for r in rows), key=repr)
    return found


def _restricted(rows: dict[str, list[Any]], kept: dict[str, list[Any]]) -> dict[str, list[Any]]:
    """``rows`` cut down to the tables and columns that ``kept`` has."""
    out = {}
    for table, old in kept.items():
        names = {name for name, _ in old[0]} if old else set()
        out[table] = sorted(
            (tuple(pair for pair in row if pair[0] in names) for row in rows[table]), key=repr
        )
    return out


@pytest.mark.parametrize("revision", _earlier_revisions())
def test_migrate_from_an_earlier_revision(
    catalog_kind: str, revision: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    catalog = None if catalog_kind == "sqlite" else new_pg_database(request)
    folder = tmp_path / "archive"
    with ll.init(folder, catalog=catalog) as la:
        build(la, tmp_path / "daq", [1233, 1240])
        made = la.compute(density, [1233, 1240])
        flag = la.flag(run=1240, subsystem="probe", severity="bad", reason="arc")
        la.good_runs("clean", query={"since": "2020-01-01"})
        ll.access.Access(la.catalog).add_user("alice", project="default", role="reader", by="t")
        url = la.catalog.url
        signal = la.runs[1233].signal("Langmuir_I").values
        raw = la.runs[1240].channels["PXI M6251/ai0"][:]
    engine = database.connect(url)
    try:
        at_head = _rows(engine)
        cfg = _config()
        with engine.connect() as conn:
            if conn.dialect.name == "sqlite":  # outside a transaction, or SQLite ignores it
                conn.exec_driver_sql("PRAGMA foreign_keys=OFF")  # tables are copied to drop columns
                conn.commit()
            with conn.begin():
                cfg.attributes["connection"] = conn
                command.downgrade(cfg, revision)
        assert database.current_revision(engine) == revision
        old = _rows(engine)
        assert old["runs"], "the old revision's tables hold the runs"
        assert old == _restricted(at_head, old)  # what an archive of that revision held
    finally:
        engine.dispose()

    done = cli("migrate", "--archive", str(folder))
    assert done.returncode == 0, done.stderr
    engine = database.connect(url)
    try:
        assert database.current_revision(engine) == database.head_revision()
        assert _restricted(_rows(engine), old) == old  # nothing old lost or changed
    finally:
        engine.dispose()
    with ll.open(folder) as la:  # and it reads as before, through the public API
        assert [r.number for r in la.runs] == [1233, 1240]
        np.testing.assert_array_equal(la.runs[1240].channels["PXI M6251/ai0"][:], raw)
        if "config_changes" in old:  # the machine's history: signals by name
            np.testing.assert_array_equal(la.runs[1233].signal("Langmuir_I").values, signal)
        if "products" in old:
            assert la.products[made.id].value == made.value
        if "flags" in old:
            assert [f.id for f in la.runs[1240].flags] == [flag.id]
