"""Nothing a caller may not read shows in what the server answers: not through a product id
prefix, a counter, an ingest's refusal, an upload's error or an empty search (issue 11, item
9). Two projects: alice reads "default" (run 1233), bob reads "other" (run 1240), carol
writes "default"."""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import httpx
import pytest

import labledger as ll
from labledger.access import Access
from labledger.catalog import products as product_queries
from labledger.errors import BadInput, InvalidArgument, NotFound
from labledger.records import ProductInputRecord, ProductRecord
from labledger.server import create_app, serving
from labledger.sim import write_shot
from labledger.sim.analysis import density


@dataclass
class Two:
    la: ll.Archive
    url: str
    keys: dict[str, str]

    def get(self, path: str, who: str, **params: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.keys[who]}"}
        return httpx.get(f"{self.url}/api/v1{path}", headers=headers, params=params, timeout=30)

    def remote(self, who: str) -> Any:
        return ll.connect(self.url, api_key=self.keys[who])


@pytest.fixture(scope="module")
def two(two_projects: ll.Archive) -> Iterator[Two]:
    access = Access(two_projects.catalog)
    keys = {who: access.create_key(who, scopes=["read", "write"]) for who in ("alice", "bob")}
    keys["carol"] = access.create_key("carol", scopes=["read", "write"])
    with serving(create_app(two_projects)) as url:
        yield Two(two_projects, url, keys)


def _twin(la: ll.Archive, of: str, model: str, length: int) -> str:
    """A copy of product ``model`` whose id shares its first ``length`` characters with the
    id ``of``: ids made in the same second share a prefix as these do."""
    row = product_queries.by_id(la.catalog, model)
    assert row is not None
    flipped = "0" if of[length] != "0" else "1"
    twin = of[:length] + flipped + of[length + 1 :]
    columns = {f.name: getattr(row, f.name) for f in fields(ProductRecord)}
    copy = ProductRecord(
        **{**columns, "id": twin, "key": hashlib.sha256(twin.encode()).hexdigest()}
    )
    inputs = [
        ProductInputRecord(
            product_id=twin, position=i.position, kind=i.kind, ref=i.ref, run_number=i.run_number
        )
        for i in product_queries.inputs_of(la.catalog, [model])[model]
    ]
    product_queries.publish(la.catalog, copy, inputs)
    return twin


def test_a_product_prefix_answers_only_among_the_callers_products(two: Two) -> None:
    mine = two.la.compute(density, 1233).id  # alice's (project default)
    theirs = _twin(two.la, mine, two.la.compute(density, 1240).id, 20)  # bob's (project other)
    shared, only_theirs = mine[:20], theirs[:21]
    assert theirs.startswith(shared) and not mine.startswith(only_theirs)
    # alice: the shared prefix is hers alone; bob's product neither answers nor makes it ambiguous
    answer = two.get(f"/products/{shared}", "alice")
    assert answer.status_code == 200 and answer.json()["product"]["id"] == mine
    assert two.remote("alice").products[shared].id == mine
    assert two.get(f"/products/{shared}", "bob").json()["product"]["id"] == theirs
    # a prefix of bob's product only is, to alice, a prefix of nothing, in the same words
    nothing = two.get(f"/products/{mine[:9]}{'f' * 12}", "alice")
    hidden = two.get(f"/products/{only_theirs}", "alice")
    assert hidden.status_code == nothing.status_code == 404
    assert hidden.json()["detail"].replace(only_theirs, "X") == nothing.json()["detail"].replace(
        f"{mine[:9]}{'f' * 12}", "X"
    )
    with pytest.raises(NotFound, match="not yours to read"):
        two.remote("alice").products[only_theirs]
    # listings are chosen in SQL among the caller's products
    listed = {who: [p["id"] for p in two.get("/products", who, status="any").json()]
              for who in ("alice", "bob")}  # fmt: skip
    assert mine in listed["alice"] and theirs not in listed["alice"]
    assert theirs in listed["bob"] and mine not in listed["bob"]


def test_the_flags_version_counts_what_the_caller_can_see(two: Two) -> None:
    def versions() -> tuple[int, int]:
        return two.get("/flags/version", "alice").json(), two.get("/flags/version", "bob").json()

    alice, bob = versions()
    everything = two.la.flags.version
    assert two.remote("alice").flags.version == alice
    theirs = two.la.flag(run=1240, subsystem="power", severity="bad", reason="bob's outage")
    assert versions() == (alice, bob + 1)  # a flag alice cannot read does not move her count
    two.la.flags.withdraw(theirs.id, reason="it was not")
    assert versions() == (alice, bob + 2)  # nor its withdrawal
    both = two.la.flag(runs=[1233, 1240], subsystem="power", severity="bad", reason="both")
    assert versions() == (alice, bob + 2)  # half hers: not hers to read, so not counted
    two.la.flags.withdraw(both.id, reason="no")
    mine = two.la.flag(run=1233, subsystem="probe", severity="warning", reason="alice's")
    assert versions() == (alice + 1, bob + 2)
    two.la.flags.withdraw(mine.id, reason="no")
    assert versions() == (alice + 2, bob + 2)
    assert two.la.flags.version == everything + 6  # the whole log, for the local archive


def test_the_machine_version_counts_the_logs_every_reader_is_served(two: Two) -> None:
    # configuration changes and calibrations belong to the machine, not to a project: every
    # reader is served all of them, and the counter counts exactly those
    for who in ("alice", "bob"):
        config, calibrations = two.get("/machine/version", who).json()
        assert config == len(two.get("/machine/config-changes", who).json())
        assert calibrations == len(two.get("/machine/calibrations", who).json())


def test_an_ingest_refusal_says_the_same_of_any_taken_number(two: Two, tmp_path: Path) -> None:
    # run numbers are archive-wide (runs.number is unique): a writer may learn a number is
    # taken, never by whom, nor anything of the run; their own taken number reads the same
    answers = {}
    for number in (1240, 1233):  # bob's run, carol's own project's run
        (tmp_path / str(number)).mkdir()
        shot = write_shot(tmp_path / str(number), 1299)
        answers[number] = httpx.post(
            f"{two.url}/api/v1/ingest", headers={"Authorization": f"Bearer {two.keys['carol']}"},
            files=[("files", (shot.name, shot.read_bytes()))], data={"run": str(number)},
            timeout=60,
        )  # fmt: skip
    assert answers[1240].status_code == answers[1233].status_code == 409
    assert answers[1240].json() == answers[1233].json()
    run = two.la.runs[1240]
    for secret in ("other", run.id, run.sources[0].name, run.sources[0].sha256):
        assert secret not in answers[1240].text


def test_an_upload_error_names_the_uploaded_file_not_where_the_server_put_it(two: Two) -> None:
    before = len(two.la.runs)
    answer = httpx.post(
        f"{two.url}/api/v1/ingest", headers={"Authorization": f"Bearer {two.keys['carol']}"},
        files=[("files", ("01253_Data.tdms", b""))], timeout=60,
    )  # fmt: skip
    detail = answer.json()["detail"]
    assert answer.status_code == 422 and detail.startswith("01253_Data.tdms is empty")
    assert tempfile.gettempdir() not in detail and "labledger-upload" not in detail
    truncated = httpx.post(
        f"{two.url}/api/v1/ingest", headers={"Authorization": f"Bearer {two.keys['carol']}"},
        files=[("files", ("01254_Data.tdms", b"TDSm" + b"\x00" * 40))], timeout=60,
    )  # fmt: skip
    assert truncated.status_code == 422 and "01254_Data.tdms" in truncated.text
    assert tempfile.gettempdir() not in truncated.text
    assert len(two.la.runs) == before


def test_an_upload_error_hides_the_folder_through_a_symlinked_tmpdir(
    two: Two, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # TMPDIR is a link: a message built from os.path.realpath names the folder the link
    # resolves to, which stripping the folder as given does not catch
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "link"))
    said: list[str] = []

    def refuse(paths: list[Path], **_: Any) -> None:
        real = os.path.realpath(paths[0])
        assert real.startswith(str(tmp_path / "real"))  # where the server put the upload
        said.append(f"{real}: its source file {real}.data was not given with it")
        raise BadInput(said[-1])

    monkeypatch.setattr(two.la, "ingest", refuse)
    answer = httpx.post(
        f"{two.url}/api/v1/ingest", headers={"Authorization": f"Bearer {two.keys['carol']}"},
        files=[("files", ("01255.h5", b"any bytes"))], timeout=60,
    )  # fmt: skip
    assert said and answer.status_code == 422
    assert answer.json()["detail"] == (
        "01255.h5: its source file 01255.h5.data was not given with it"
    )


def test_an_upload_is_recorded_as_uploaded_not_by_the_servers_folder(tmp_path: Path) -> None:
    la = ll.init(tmp_path / "archive")
    access = Access(la.catalog)
    access.add_user("carol", project="default", role="writer", by="tests")
    key = access.create_key("carol", scopes=["read", "write"])
    shot = write_shot(tmp_path, 1233)
    with serving(create_app(la)) as url:
        remote = ll.connect(url, api_key=key)
        remote.ingest([shot])
        (source,) = remote.runs[1233].sources
    assert source.original_path == "upload:carol/01233_Data.tdms"
    assert tempfile.gettempdir() not in source.original_path
    la.close()


def test_an_empty_list_of_values_is_refused_locally_and_remotely(two: Two) -> None:
    for archive in (two.la, two.remote("alice")):
        with pytest.raises(InvalidArgument, match=r"where\['gas'\]: an empty list of values"):
            archive.runs.search(where={"gas": []})
        with pytest.raises(InvalidArgument, match=r"where\['gas'\]: an empty list"):
            archive.runs.search(gas=[])
    answer = two.get("/runs/search", "alice", where='{"gas": []}')
    assert answer.status_code == 400 and "empty list" in answer.json()["detail"]
    # one value of the list still matches as before: alice's run, by its metadata
    expected = [n for n in (1233,) if two.la.runs[n].metadata["gas"] == "Ar"]
    assert [r.number for r in two.remote("alice").runs.search(gas=["Ar", "Xe"])] == expected
