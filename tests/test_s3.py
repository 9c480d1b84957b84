"""An archive whose store is S3 (moto's server on loopback): the same code as a folder."""

from __future__ import annotations

import hashlib
from pathlib import Path

import h5py
import numpy as np
import pytest
from nptdms import TdmsFile

import labledger as ll
from labledger.errors import BadInput
from labledger.sim import write_shot
from labledger.store import FsspecStore
from tests.conftest import snapshot

pytestmark = pytest.mark.s3


@pytest.fixture
def s3_archive(catalog_kind: str, s3_bucket: str, s3_endpoint: str, tmp_path: Path, request):
    catalog = request.getfixturevalue("pg_url") if catalog_kind == "postgresql" else None
    la = ll.init(
        tmp_path / "lab",
        catalog=catalog,
        store=f"{s3_bucket}/archive",
        storage_options={"endpoint_url": s3_endpoint},
    )
    yield la
    la.close()


def test_ingest_read_and_export_on_s3(
    s3_archive: ll.Archive, tmp_path: Path, nexus_dir: Path
) -> None:
    shot = write_shot(tmp_path, 1001)
    _, image = s3_archive.ingest([shot, nexus_dir / "AgBehenate_228.hdf5"])
    assert isinstance(s3_archive.store, FsspecStore)
    run = s3_archive.runs[1001]
    raw = TdmsFile.read(shot)["PXI M6251"]["ai3"].raw_data
    np.testing.assert_array_equal(run.channels["PXI M6251/ai3"][12_345:23_456], raw[12_345:23_456])
    with run.sources[0].open() as f:
        assert hashlib.sha256(f.read()).hexdigest() == run.sources[0].sha256
    keys = s3_archive.store.list(f"runs/{run.id}")
    assert any(k.endswith("/sources/0/01001_Data.tdms") for k in keys)
    out = tmp_path / "scan.h5"
    s3_archive.runs[image.number].export(out)
    with h5py.File(out) as exported, h5py.File(nexus_dir / "AgBehenate_228.hdf5") as original:
        datasets: list[str] = []
        original.visititems(
            lambda n, o: datasets.append(n) if isinstance(o, h5py.Dataset) else None
        )
        assert len(datasets) == 102
        for name in datasets:
            np.testing.assert_array_equal(exported[name][()], original[name][()])
    # reopened from its folder: the config says where the store is and how to reach it
    path = s3_archive.path
    with ll.open(path) as again:
        assert again.store.url == s3_archive.store.url
        np.testing.assert_array_equal(
            again.runs[1001].channels["PXI M6251/ai0"][:100], run.channels["PXI M6251/ai0"][:100]
        )


def test_a_failed_ingest_leaves_no_object_behind(s3_archive: ll.Archive, tmp_path: Path) -> None:
    s3_archive.ingest([write_shot(tmp_path, 1001)])
    damaged = tmp_path / "5_log.csv"
    damaged.write_text("n,x\n" + "".join(f"{i},{i}.5\n" for i in range(1_000_000)) + "oops,1\n")
    before = snapshot(s3_archive)
    with pytest.raises(BadInput, match="5_log.csv"):
        s3_archive.ingest([damaged])
    assert snapshot(s3_archive) == before  # every object of the bucket, every catalog row
