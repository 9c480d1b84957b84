"""Fixtures: real files, real databases (SQLite and PostgreSQL), a real S3 server (moto) on
loopback. Tests that need PostgreSQL or ../shared fail, not skip, when CI=true."""

from __future__ import annotations

import hashlib
import importlib.resources
import io
import os
import pty
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import httpx
import pytest
from sqlalchemy import update

import labledger as ll
from labledger.access import Access
from labledger.catalog.schema import run_table
from labledger.errors import BadInput
from labledger.sim import build
from labledger.sim.objectstore import create_bucket, loopback_s3
from labledger.store import LocalStore

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
REALDATA = SHARED / "realdata"
NEXUS = REALDATA / "nexus"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
PG_ADMIN = os.environ.get("LABLEDGER_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
TDMS_DATA = Path(str(importlib.resources.files("nptdms") / "test" / "data"))

# The NeXus files every test of real data walks; the HDF4 one is refused by design.
NEXUS_FILES = [
    "538039.nxs",
    "AgBehenate_228.hdf5",
    "Focus_2021-03-16_051.hdf5",
    "ID34_not_complete.h5",
    "NXscan.hdf5",
    "NXtest.h5",
]
TDMS_FILES = ["raw1.tdms", "Digital_Input.tdms", "big_endian.tdms", "raw_timestamps.tdms"]


def unavailable(what: str) -> None:
    """A missing real component: a failure in CI, a skip on a developer's machine."""
    if IN_CI:
        pytest.fail(f"{what} (CI=true: tests that need it must not be skipped)")
    pytest.skip(what)


@pytest.fixture(scope="session")
def nexus_dir() -> Path:
    if not NEXUS.is_dir():
        unavailable(
            f"the real data files are missing: expected {NEXUS} (../shared beside the repo)"
        )
    return NEXUS


@pytest.fixture(scope="session")
def tdms_dir() -> Path:
    if not (TDMS_DATA / "raw1.tdms").is_file():
        pytest.fail(f"npTDMS's own LabVIEW files are missing from {TDMS_DATA}")
    return TDMS_DATA


def _pg_answers() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=2):
            return True
    except OSError:
        return False


def new_pg_database(request: pytest.FixtureRequest) -> str:
    """A new, empty PostgreSQL database, dropped when the test ends; its URL."""
    if not _pg_answers():
        unavailable("PostgreSQL is not answering on 127.0.0.1:5432")
    import psycopg

    name = f"ll_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')

    def drop() -> None:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    request.addfinalizer(drop)
    return f"{PG_ADMIN.rsplit('/', 1)[0]}/{name}"


@pytest.fixture
def pg_url(request: pytest.FixtureRequest) -> str:
    """A new, empty PostgreSQL database for one test."""
    return new_pg_database(request)


def cli(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """The real command in a subprocess, as a user runs it; LABLEDGER_ARCHIVE only if given."""
    environment = {**os.environ, "COLUMNS": "200", **(env or {})}
    if env is None or "LABLEDGER_ARCHIVE" not in env:
        environment.pop("LABLEDGER_ARCHIVE", None)
    return subprocess.run(
        [sys.executable, "-m", "labledger.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=environment,
        timeout=300,
    )


@pytest.fixture(params=["sqlite", "postgresql"])
def catalog_kind(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def archive(
    catalog_kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[ll.Archive]:
    """A new archive, once with an SQLite catalog and once with PostgreSQL."""
    catalog = request.getfixturevalue("pg_url") if catalog_kind == "postgresql" else None
    la = ll.init(tmp_path / "ishtar", catalog=catalog)
    yield la
    la.close()


@pytest.fixture
def sqlite_archive(tmp_path: Path) -> Iterator[ll.Archive]:
    la = ll.init(tmp_path / "ishtar")
    yield la
    la.close()


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """moto's S3 server on a free loopback port, as s3fs's own tests use it."""
    with loopback_s3() as endpoint:
        yield endpoint


@pytest.fixture
def s3_bucket(s3_endpoint: str) -> str:
    """A new bucket on the moto server; returns its s3:// URL."""
    return create_bucket(s3_endpoint, f"ll-{uuid.uuid4().hex[:10]}")


def snapshot(la: ll.Archive) -> dict[str, str]:
    """Everything an archive holds, to compare before and after: every file of its folder
    (catalog and store) by sha256, every object of a remote store, and every catalog row."""
    state: dict[str, str] = {}
    engine = la.catalog.engine
    # an SQLite catalog is compared by its rows, not its bytes: opening and closing its file
    # here would drop the locks this process's connection holds on it (POSIX locks belong to
    # the process), and another process closing the catalog would then checkpoint and delete
    # the log under that connection, corrupting the database
    database = engine.url.database if engine.dialect.name == "sqlite" else None
    catalog = Path(database).resolve() if database else None
    if la.path is not None:
        for path in sorted(la.path.rglob("*")):
            if path.resolve() == catalog:
                continue
            if path.is_file() and not path.name.endswith(("-wal", "-shm")):
                state[f"file:{path.relative_to(la.path)}"] = hashlib.sha256(
                    path.read_bytes()
                ).hexdigest()
    if not isinstance(la.store, LocalStore):
        for key in la.store.list():
            state[f"object:{key}"] = hashlib.sha256(la.store.read(key)).hexdigest()
    from sqlalchemy import MetaData, select

    meta = MetaData()
    meta.reflect(engine)
    with engine.connect() as conn:
        for table in meta.sorted_tables:
            rows = conn.execute(select(table).order_by(*table.primary_key.columns)).all()
            state[f"table:{table.name}"] = hashlib.sha256(repr(rows).encode()).hexdigest()
    return state


def make_two_projects(folder: Path) -> ll.Archive:
    """An archive of two projects, for who sees what through a server: run 1233 in
    "default", run 1240 in "other"; alice reads "default", bob reads "other", carol writes
    "default". Their keys are the caller's to make."""
    la = ll.init(folder / "archive")
    build(la, folder / "daq", [1233, 1240])
    with la.catalog.transaction("moving run 1240 to another project") as session:
        session.execute(update(run_table).where(run_table.c.number == 1240).values(project="other"))
    access = Access(la.catalog)
    for user, project, role in [
        ("alice", "default", "reader"),
        ("bob", "other", "reader"),
        ("carol", "default", "writer"),
    ]:
        access.add_user(user, project=project, role=role, by="tests")
    return la


@pytest.fixture(scope="module")
def two_projects(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ll.Archive]:
    """:func:`make_two_projects`, one archive per test module: its tests only read it."""
    la = make_two_projects(tmp_path_factory.mktemp("two-projects"))
    yield la
    la.close()


CAMPAIGN_SHOTS = [1225, 1233, 1239, 1240, 1249, 1250, 1259, 1260, 1265]


@pytest.fixture(scope="session")
def local_campaign(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ll.Archive]:
    """The simulated ISHTAR campaign around its events (re-wiring at 1240, recalibration at
    1250, helium and a new probe tip at 1260), history recorded as it happened. Read only."""
    la = ll.init(tmp_path_factory.mktemp("campaign") / "archive")
    build(la, tmp_path_factory.mktemp("daq"), CAMPAIGN_SHOTS)
    yield la
    la.close()


@pytest.fixture(scope="session")
def served_campaign(local_campaign: ll.Archive) -> Iterator[tuple[str, str]]:
    """The campaign served over HTTP on loopback (the real ASGI app under uvicorn): its URL
    and a reader's API key."""
    from labledger.server import create_app, serving

    access = Access(local_campaign.catalog)
    access.add_user("reader", project="default", role="reader", by="tests")
    key = access.create_key("reader", scopes=["read"])
    with serving(create_app(local_campaign)) as url:
        yield url, key


@pytest.fixture(scope="session", params=["local", "remote"])
def campaign(request: pytest.FixtureRequest, local_campaign: ll.Archive) -> Iterator[ll.Archive]:
    """The campaign opened locally, and through a server: the tests that take it run twice,
    with the same assertions, to prove the remote archive is the local one."""
    if request.param == "local":
        yield local_campaign
        return
    url, key = request.getfixturevalue("served_campaign")
    remote = ll.connect(url, api_key=key)
    yield remote
    remote.close()


def on_terminal(*args: str) -> tuple[int, bytes, bytes]:
    """``labledger ARGS`` with its stderr on a pseudo-terminal (where progress bars show) and
    its stdout in a pipe: (exit code, what the terminal showed, stdout). The terminal is read
    while the command runs, so a long bar never blocks it."""
    primary, secondary = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "labledger.cli", *args],
        stdout=subprocess.PIPE,
        stderr=secondary,
        env={**os.environ, "COLUMNS": "120"},
    )
    os.close(secondary)  # the child's copy is the last: reading ends when it exits
    seen = bytearray()

    def drain() -> None:
        while True:
            try:
                chunk = os.read(primary, 4096)
            except OSError:  # EIO: the terminal's other side is closed
                return
            if not chunk:
                return
            seen.extend(chunk)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    stdout, _ = proc.communicate(timeout=120)
    reader.join(timeout=60)
    os.close(primary)
    return proc.returncode, bytes(seen), stdout


def refused(la: ll.Archive, path: Path, *fragments: str, **kwargs: object) -> str:
    """Ingesting ``path`` is refused in one line naming it and ``fragments``, and changes
    nothing; the message."""
    before = snapshot(la)
    with pytest.raises(BadInput) as caught:
        la.ingest([path], **kwargs)  # type: ignore[arg-type]
    message = str(caught.value)
    assert "\n" not in message
    for fragment in (str(path), *fragments):
        assert fragment in message, message
    assert snapshot(la) == before
    return message


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for_server(url: str, server: subprocess.Popen[Any], log: IO[bytes] | None = None) -> None:
    """Until ``labledger serve`` answers at ``url`` (it imports and opens the archive first); a
    server that exits first, or never answers, fails the test, with what it said on stderr
    (a pipe, or the file ``log``)."""
    deadline = time.monotonic() + 120  # a start-up wait, not a timed assertion
    health = f"{url.rstrip('/')}/api/v1/health"
    while time.monotonic() < deadline:
        if server.poll() is not None:
            if log is not None:
                log.seek(0)
            said = (log or server.stderr or io.BytesIO()).read()
            said = said.decode() if isinstance(said, bytes) else said
            pytest.fail(f"labledger serve exited ({server.returncode}): {said[-2000:]}")
        try:
            if httpx.get(health, timeout=5).is_success:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    pytest.fail(f"labledger serve never answered {health}")


def minmax_by_hand(values: Any, points: int) -> list[int]:
    """What a min/max decimation to ``points`` keeps, worked out the slow, obvious way (an
    independent reference for labledger.decimation.minmax): ``points // 2`` buckets of
    ``len * b // buckets`` samples, each giving the first smallest and first largest sample,
    in order; NaN is never an extreme."""
    n = len(values)
    if n <= points:
        return list(range(n))
    buckets = points // 2
    picked = []
    for b in range(buckets):
        span = [
            i for i in range(n * b // buckets, n * (b + 1) // buckets) if values[i] == values[i]
        ]
        low = min(span, key=lambda i: values[i])
        high = max(span, key=lambda i: (values[i], -i))  # the first of equal largest
        picked += sorted([low, high])
    return picked
