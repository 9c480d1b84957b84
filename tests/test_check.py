"""``labledger check [--repair]`` (issue 11, item 8): every raw file re-hashed and every array
read through against the catalog; the folders killed ingests leave listed, and removed by a
repair, never one a run names nor one an ingest may still be writing. Locally, on S3, through
the CLI and through the server for admins."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
from nptdms import TdmsFile

import labledger as ll
from labledger.access import Access
from labledger.errors import Forbidden, InvalidArgument, Unauthorized
from labledger.ids import uuid7
from labledger.server import create_app, serving
from labledger.sim import write_shot
from tests.conftest import cli, on_terminal

CHANNEL = "PXI M6251/ai3"
HOUR = 3600.0


def _csv(path: Path) -> Path:
    path.write_text("t,x\n" + "".join(f"{i},{i * 3}\n" for i in range(200_000)))
    return path


def _old_id(seconds_ago: float) -> str:
    """A UUIDv7 made ``seconds_ago``: its first 48 bits are the Unix milliseconds."""
    ms = f"{int((time.time() - seconds_ago) * 1000):012x}"
    return f"{ms[:8]}-{ms[8:12]}-7abc-8def-0123456789ab"


def _age(folder: Path, seconds: float) -> None:
    when = time.time() - seconds
    for path in [folder, *folder.rglob("*")]:
        os.utime(path, (when, when))


def _bytes_below(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def _flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def test_an_empty_archive_checks_clean(archive: ll.Archive) -> None:
    report = archive.check(repair=True)
    assert report.ok
    assert (report.runs, report.files, report.arrays, report.bytes_read) == (0, 0, 0, 0)
    assert report.problems == [] and report.orphans == []
    result = cli("check", "-a", str(archive.path))
    assert result.returncode == 0, result.stderr
    assert "checked 0 runs" in result.stdout and "all as recorded" in result.stdout


def test_an_intact_archive_checks_clean_and_reads_every_byte(
    archive: ll.Archive, tmp_path: Path
) -> None:
    shot, table = write_shot(tmp_path, 1001), _csv(tmp_path / "7_log.csv")
    archive.ingest([shot, table])
    report = archive.check()
    assert report.ok, [p.message() for p in report.problems]
    channels = sum(len(r.channels) for r in archive.runs)
    assert (report.runs, report.files, report.arrays) == (2, 2, channels)
    # every raw byte hashed and every array decoded: the bytes the catalog records
    raw = shot.stat().st_size + table.stat().st_size
    assert report.bytes_read == raw + sum(r.to_dict()["data_bytes"] for r in archive.runs)


def test_a_changed_raw_byte_is_named_with_its_run(archive: ll.Archive, tmp_path: Path) -> None:
    shot = write_shot(tmp_path, 1001)
    archive.ingest([shot, _csv(tmp_path / "7_log.csv")])
    source = archive.runs[1001].sources[0]
    stored = Path(
        archive.store.path(archive.store.list(f"runs/{archive.runs[1001].id}/sources")[0])
    )
    _flip(stored, stored.stat().st_size // 2)
    now = hashlib.sha256(stored.read_bytes()).hexdigest()

    report = archive.check()
    assert not report.ok
    assert [(p.run, p.file, p.what) for p in report.problems] == [
        (1001, "01001_Data.tdms", "raw file")
    ]
    assert now[:16] in report.problems[0].reason and source.sha256[:16] in report.problems[0].reason

    result = cli("check", "-a", str(archive.path))
    assert result.returncode == 1
    assert "run 1001: raw file 01001_Data.tdms: bytes changed" in result.stdout
    assert result.stderr == ""  # in a pipe: no progress bar
    as_json = cli("check", "-a", str(archive.path), "--json")
    assert as_json.returncode == 1
    found = json.loads(as_json.stdout)
    assert found["ok"] is False and found["problems"][0]["run"] == 1001


def test_a_missing_raw_file_is_named(sqlite_archive: ll.Archive, tmp_path: Path) -> None:
    sqlite_archive.ingest([write_shot(tmp_path, 1001)])
    run = sqlite_archive.runs[1001]
    os.remove(sqlite_archive.store.path(sqlite_archive.store.list(f"runs/{run.id}/sources")[0]))
    (problem,) = sqlite_archive.check().problems
    assert (problem.run, problem.file) == (1001, "01001_Data.tdms")
    assert "missing from the store" in problem.reason


@pytest.mark.parametrize(
    "damage", ["truncated", "index byte", "chunk header", "compressed byte", "shard gone"]
)
def test_a_damaged_array_chunk_is_named(archive: ll.Archive, tmp_path: Path, damage: str) -> None:
    archive.ingest([write_shot(tmp_path, 1001)])
    run = archive.runs[1001]
    channel = next(c for c in archive.catalog.channels(run.id) if c.key == CHANNEL)
    (shard,) = [k for k in archive.store.list(channel.store_path) if "/c/" in k]
    path = Path(archive.store.path(shard))
    data = bytearray(path.read_bytes())
    if damage == "truncated":  # a shard cut short (a copy that stopped half way)
        data = data[: len(data) // 2]
    elif damage == "index byte":  # one bit of the shard's index (crc32c-protected)
        data[-10] ^= 0x01
    elif damage == "chunk header":  # the blosc header of the first chunk
        data[4:16] = bytes(12)
    elif damage == "compressed byte":  # one bit of the first chunk's compressed values: blosc
        data[20] ^= 0x01  # decodes it into other values; the chunk's crc32c does not match
    path.write_bytes(bytes(data))
    if damage == "shard gone":
        path.unlink()
        (path.parent.parent / "zarr.json").unlink()

    (problem,) = archive.check().problems
    assert (problem.run, problem.file, problem.what) == (1001, CHANNEL, "array")
    result = cli("check", "-a", str(archive.path))
    assert result.returncode == 1
    assert f"run 1001: array {CHANNEL}:" in result.stdout


def test_an_array_unlike_its_catalog_row_is_named(
    sqlite_archive: ll.Archive, tmp_path: Path
) -> None:
    sqlite_archive.ingest([write_shot(tmp_path, 1001)])
    run = sqlite_archive.runs[1001]
    channel = next(c for c in sqlite_archive.catalog.channels(run.id) if c.key == CHANNEL)
    meta_path = Path(sqlite_archive.store.path(f"{channel.store_path}/zarr.json"))
    meta = json.loads(meta_path.read_text())
    meta["shape"] = [meta["shape"][0] - 1]
    meta_path.write_text(json.dumps(meta))
    (problem,) = sqlite_archive.check().problems
    assert problem.file == CHANNEL
    assert (
        f"[{channel.shape[0] - 1}]" in problem.reason and f"[{channel.shape[0]}]" in problem.reason
    )


def test_repair_removes_old_orphans_and_nothing_a_run_names(
    archive: ll.Archive, tmp_path: Path
) -> None:
    shot = write_shot(tmp_path, 1001)
    archive.ingest([shot, _csv(tmp_path / "7_log.csv")])
    runs_dir = Path(archive.store.path("runs"))
    named = sorted(p.name for p in runs_dir.iterdir())
    # what a killed ingest leaves: a whole run folder no catalog row names, hours old
    old = runs_dir / _old_id(3 * HOUR)
    shutil.copytree(runs_dir / archive.runs[1001].id, old)
    _age(old, 3 * HOUR)
    # and one an ingest may still be writing: its name and objects are seconds old
    young = runs_dir / uuid7()
    (young / "sources" / "0").mkdir(parents=True)
    (young / "sources" / "0" / "x.tdms").write_bytes(b"x" * 1000)
    named_before = {p: p.read_bytes() for p in runs_dir.glob("*/**/*") if p.is_file()
                    and p.relative_to(runs_dir).parts[0] in named}  # fmt: skip

    listed = archive.check()
    assert listed.ok  # waste, not damage
    assert sorted(o.key for o in listed.orphans) == sorted(
        [f"runs/{old.name}", f"runs/{young.name}"]
    )
    sizes = {o.key: o.bytes for o in listed.orphans}
    assert sizes[f"runs/{old.name}"] == _bytes_below(old)
    assert sizes[f"runs/{young.name}"] == 1000
    assert old.is_dir() and young.is_dir()  # listing removes nothing

    result = cli("check", "-a", str(archive.path), "--repair")
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"orphan folder runs/{old.name}" in result.stdout and "(removed)" in result.stdout
    assert f"orphan folder runs/{young.name}" in result.stdout and "kept:" in result.stdout
    assert not old.exists() and young.is_dir()
    assert sorted(p.name for p in runs_dir.iterdir()) == sorted([*named, young.name])
    for path, data in named_before.items():
        assert path.read_bytes() == data
    raw = TdmsFile.read(shot)["PXI M6251"]["ai3"].raw_data
    np.testing.assert_array_equal(archive.runs[1001].channels[CHANNEL][:], raw)

    again = archive.check(repair=True, older_than=0)  # the admin knows no ingest runs now
    assert [(o.key, o.removed) for o in again.orphans] == [(f"runs/{young.name}", True)]
    assert sorted(p.name for p in runs_dir.iterdir()) == named
    assert archive.check().orphans == [] and archive.check().ok


def test_repair_spares_a_folder_named_meanwhile(
    sqlite_archive: ll.Archive, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A folder listed as an orphan whose run commits before the repair reaches it is kept."""
    sqlite_archive.ingest([write_shot(tmp_path, 1001)])
    run = sqlite_archive.runs[1001]
    real_iter = sqlite_archive.catalog.iter_runs

    def blind(  # the run not yet committed
        batch: int = 1000, state: str | None = "closed", *, withdrawn: bool = False
    ):
        return iter(())

    monkeypatch.setattr(sqlite_archive.catalog, "iter_runs", blind)
    report = sqlite_archive.check(repair=True, older_than=0)
    monkeypatch.setattr(sqlite_archive.catalog, "iter_runs", real_iter)
    assert [(o.key, o.removed, o.kept) for o in report.orphans] == [
        (f"runs/{run.id}", False, "a run names it now")
    ]
    assert sqlite_archive.check().ok


def test_bad_arguments_are_one_line(sqlite_archive: ll.Archive) -> None:
    with pytest.raises(InvalidArgument, match="older_than"):
        sqlite_archive.check(older_than=-1)
    result = cli("check", "-a", str(sqlite_archive.path), "--older-than", "-5")
    assert result.returncode == 1 and len(result.stderr.strip().splitlines()) == 1


@pytest.mark.s3
def test_check_and_repair_on_s3(
    catalog_kind: str, s3_bucket: str, s3_endpoint: str, tmp_path: Path, request
) -> None:
    catalog = request.getfixturevalue("pg_url") if catalog_kind == "postgresql" else None
    with ll.init(tmp_path / "lab", catalog=catalog, store=f"{s3_bucket}/archive",
                 storage_options={"endpoint_url": s3_endpoint}) as la:  # fmt: skip
        assert la.check().ok and la.check().orphans == []
        shot = write_shot(tmp_path, 1001)
        la.ingest([shot])
        run = la.runs[1001]
        assert la.check().ok
        orphan = f"runs/{_old_id(3 * HOUR)}"
        for key in la.store.list(f"runs/{run.id}")[:3]:
            la.store.write(key.replace(f"runs/{run.id}", orphan), la.store.read(key))
        (source_key,) = la.store.list(f"runs/{run.id}/sources")
        data = bytearray(la.store.read(source_key))
        data[len(data) // 2] ^= 0x01
        la.store.write(source_key, bytes(data))

        report = la.check()
        assert [(p.run, p.file) for p in report.problems] == [(1001, "01001_Data.tdms")]
        (found,) = report.orphans
        assert found.key == orphan and found.age_s is not None and found.age_s < HOUR
        kept = la.check(repair=True)  # just written: an ingest may be writing it
        assert kept.orphans[0].kept and la.store.list(orphan)
        removed = la.check(repair=True, older_than=0)
        assert removed.orphans[0].removed and la.store.list(orphan) == []
        assert la.store.list(f"runs/{run.id}")  # the run's folder stays, damaged or not
        assert la.check().orphans == []


def test_through_the_server_for_admins_only(tmp_path: Path) -> None:
    with ll.init(tmp_path / "a") as la:
        la.ingest([write_shot(tmp_path, 1001)])
        la.ingest([_csv(tmp_path / "7_log.csv")], project="other")
        runs_dir = Path(la.store.path("runs"))
        orphan = runs_dir / _old_id(3 * HOUR)
        shutil.copytree(runs_dir / la.runs[7].id, orphan)
        _age(orphan, 3 * HOUR)
        stored = Path(la.store.path(la.store.list(f"runs/{la.runs[1001].id}/sources")[0]))
        _flip(stored, 100)
        access = Access(la.catalog)
        for project in ("default", "other"):
            access.add_user("root", project=project, role="admin", by="tests")
        access.add_user("half", project="default", role="admin", by="tests")
        access.add_user("reader", project="default", role="reader", by="tests")
        access.add_user("reader", project="other", role="reader", by="tests")
        keys = {
            "root": access.create_key("root", scopes=["read", "admin"]),
            "root-read-only": access.create_key("root", scopes=["read"]),
            "half": access.create_key("half", scopes=["read", "admin"]),
            "reader": access.create_key("reader", scopes=["read"]),
        }
        with serving(create_app(la)) as url:
            for who in ("root-read-only", "half", "reader"):
                with (
                    ll.connect(url, api_key=keys[who]) as remote,
                    pytest.raises(Forbidden, match="admin"),
                ):
                    remote.check()
            with pytest.raises(Unauthorized), ll.connect(url) as anonymous:
                anonymous.check()
            assert orphan.is_dir()
            with ll.connect(url, api_key=keys["root"]) as remote:
                report = remote.check()  # no repair unless asked
                assert [(p.run, p.file) for p in report.problems] == [(1001, "01001_Data.tdms")]
                assert [o.key for o in report.orphans] == [f"runs/{orphan.name}"]
                assert orphan.is_dir() and not report.orphans[0].removed
                repaired = remote.check(repair=True)
                assert repaired.orphans[0].removed and not orphan.exists()
        assert access.audit()[0]["action"] == "check.repair"
        assert la.runs[7].channels["x"][:5].tolist() == [0, 3, 6, 9, 12]


def test_a_progress_bar_on_a_terminal(sqlite_archive: ll.Archive, tmp_path: Path) -> None:
    sqlite_archive.ingest([write_shot(tmp_path, 1001)])
    code, seen, stdout = on_terminal("check", "-a", str(sqlite_archive.path))
    assert code == 0
    assert b"checking" in seen  # the bar, on the terminal
    assert b"all as recorded" in stdout


def test_values_never_written_are_not_read_by_the_check(
    sqlite_archive: ll.Archive, tmp_path: Path
) -> None:
    path = tmp_path / "5_fill.h5"
    with h5py.File(path, "w") as f:  # 10^9 doubles declared, three written
        data = f.create_dataset("d", (10**9,), "f8", chunks=(1 << 16,), fillvalue=np.nan)
        data[5 * 10**8 : 5 * 10**8 + 3] = [1.0, 2.0, 3.0]
    sqlite_archive.ingest([path])
    report = sqlite_archive.check()
    assert report.ok
    # the raw file hashed and the one shard that holds the written chunk decoded: not 8 GB
    assert report.bytes_read < path.stat().st_size + (128 << 20)
