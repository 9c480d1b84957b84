"""The data service: who may read what, and every bad request a clear 4xx, never a 5xx. Over
the real ASGI app under uvicorn on loopback, with httpx as the client. (That the remote archive
gives what the local one gives is proved by the campaign tests, which run on both.)"""

from __future__ import annotations

import getpass
import json
import re
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pyarrow.compute as pc
import pytest
from sqlalchemy import update

import labledger as ll
from labledger.access import Access
from labledger.catalog.schema import ApiKeyRow
from labledger.decimation import minmax
from labledger.errors import InvalidArgument, NotFound, NotRemote, Unauthorized
from labledger.server import Limits, create_app, serving
from labledger.wire import decode_array
from tests.conftest import (
    cli,
    free_port,
    make_two_projects,
    minmax_by_hand,
    snapshot,
    wait_for_server,
)

CHANNEL = "PXI M6251/ai3"
LIMITS = Limits(max_response_bytes=50_000, max_points=10_000, max_page=50,
                max_upload_bytes=10_000_000)  # fmt: skip


@dataclass
class Served:
    la: ll.Archive
    url: str
    keys: dict[str, str]  # who -> API key
    run: Any  # run 1233 of project default
    product: str  # the id of a product of run 1233
    flag: int  # a (withdrawn) flag on run 1233

    def get(self, path: str, who: str | None = None, **kwargs: Any) -> httpx.Response:
        headers = dict(kwargs.pop("headers", {}))
        if who is not None:
            headers["Authorization"] = f"Bearer {self.keys[who]}"
        return httpx.get(f"{self.url}{path}", headers=headers, timeout=30, **kwargs)


@contextmanager
def _serving(la: ll.Archive) -> Iterator[Served]:
    access = Access(la.catalog)
    keys = {
        "alice": access.create_key("alice", scopes=["read"]),
        "bob": access.create_key("bob", scopes=["read"]),
        "carol-write-only": access.create_key("carol", scopes=["write"]),
        "carol": access.create_key("carol", scopes=["read", "write"]),
        "expired": access.create_key("alice", scopes=["read"]),
        "revoked": access.create_key("alice", scopes=["read"]),
    }
    expired_id = keys["expired"].split("_")[1]
    with la.catalog.transaction("expiring a key") as session:
        past = datetime.now(UTC) - timedelta(seconds=1)
        session.execute(update(ApiKeyRow).where(ApiKeyRow.id == expired_id).values(expires=past))
    access.revoke_key(keys["revoked"].split("_")[1], by="tests")
    from labledger.sim.analysis import density

    made = la.compute(density, 1233)
    flag = la.flag(run=1233, subsystem="power", severity="warning", reason="a test flag")
    la.flags.withdraw(flag.id, reason="withdrawn at once")
    la.good_runs("fixture-list", query={"source": la.runs[1233].sources[0].sha256})
    # the live runs' Redis prefix is made on first use and kept in the settings: now, not by
    # the first follower (a read)
    assert la.live.prefix
    with serving(create_app(la, limits=LIMITS)) as url:
        yield Served(la, url, keys, la.runs[1233], made.id, flag.id)


def _rows(la: ll.Archive) -> dict[str, str]:
    """The catalog's rows, but the audit log's (a reused computation is audited: no data)."""
    return {k: v for k, v in snapshot(la).items() if k.startswith("table:") and k != "table:audit"}


@pytest.fixture(scope="module")
def served(two_projects: ll.Archive) -> Iterator[Served]:
    """One server for the module's tests that only read; a test that writes (runs, flags,
    products, lists) takes ``own_served``, so no test sees another's writes. Kept so: the
    catalog must be as it was when the module's tests are done."""
    with _serving(two_projects) as served:
        before = _rows(two_projects)
        yield served
        assert _rows(two_projects) == before, "a test on the shared server wrote: use own_served"


@pytest.fixture
def own_served(tmp_path: Path) -> Iterator[Served]:
    """A server over an archive of this test's own, made as the shared one is."""
    la = make_two_projects(tmp_path)
    with _serving(la) as served:
        yield served
    la.close()


def _routes(served: Served) -> list[str]:
    """Every GET route of the OpenAPI schema, its parameters filled with real values."""
    schema = httpx.get(f"{served.url}/openapi.json").json()
    run = served.run
    zarr_key = next(k for k in served.la.store.list(f"runs/{run.id}/data") if "zarr.json" in k)
    values = {"number": "1233", "run_id": run.id, "name": "Langmuir_I", "ref": served.product,
              "flag_id": str(served.flag)}  # fmt: skip
    query = {
        "numbers": "1233",
        "runs": run.id,
        "slice": "0:100",
        "timeout": "0.3",
        "level": "2",
        "points": "100",
    }
    found = []
    for path, operations in schema["paths"].items():
        if "get" not in operations or path.endswith("/health"):
            continue
        fill = {**values, "key": zarr_key if "/store/" in path else CHANNEL}
        if "/good-runs/" in path:
            fill["name"] = "fixture-list"
        url = re.sub(r"[{](\w+)(:path)?[}]", lambda m, fill=fill: fill[m.group(1)], path)
        required = [p["name"] for p in operations["get"].get("parameters", [])
                    if p.get("required") and p["in"] == "query"]  # fmt: skip
        if path.endswith("/channels/{key}"):
            required.append("slice")  # a whole channel is over this server's response limit
        if path.endswith("/signals/{name}"):
            required.append("points")  # a whole signal too is over the response limit
        if path.endswith("/notifications") or "/follow/" in path:
            required.append("timeout")  # a stream: ended, or the answer never completes
        given = {**query, "runs": "1233"} if path.endswith("/flags/active") else query
        if required:
            url += "?" + "&".join(f"{q}={given[q]}" for q in required)
        found.append(url)
    return found


def test_every_route_needs_a_key_and_the_right_project(served: Served) -> None:
    routes = _routes(served)
    assert len(routes) >= 14, routes  # the schema lists them all, not a hand-kept subset
    run_id = served.run.id
    for route in routes:
        assert served.get(route).status_code == 401, route  # no key
        for bad in ("expired", "revoked"):
            answer = served.get(route, bad)
            assert answer.status_code == 401 and "not valid" in answer.text, (route, bad)
        for outsider in ("carol-write-only", "bob"):  # no read scope; another project's reader
            answer = served.get(route, outsider)
            if answer.status_code == 200:  # a listing of what they may read, or who they are
                assert run_id not in answer.text and '"number":1233' not in answer.text, route
                assert outsider == "bob" or route.endswith("/info"), route
            else:
                assert answer.status_code in (403, 404), (route, outsider)
                assert set(answer.json()) <= {"detail", "error"}, (route, outsider)
        mine = served.get(route, "alice")
        if "/acquisitions/" in route:  # what the server writes for a DAQ: a writer's only
            assert mine.status_code == 403 and "writer" in mine.text, (route, mine.text[:200])
            continue
        assert mine.status_code in (200, 206), (route, mine.status_code, mine.text[:200])
    schema = httpx.get(f"{served.url}/openapi.json").json()
    writes = [p for p, operations in schema["paths"].items() if set(operations) - {"get"}]
    live = [f"/api/v1/acquisitions{p}" for p in ("", "/{number}/abort", "/{number}/blocks",
            "/{number}/close", "/{number}/fail", "/{number}/prepare", "/{number}/start",
            "/{number}/stop", "/{number}/streams")]  # fmt: skip
    assert sorted(writes) == [*live, "/api/v1/check", "/api/v1/compute", "/api/v1/flags",
                              "/api/v1/flags/{flag_id}/withdraw", "/api/v1/ingest",
                              "/api/v1/runs/{number}/restore",
                              "/api/v1/runs/{number}/withdraw"]  # fmt: skip
    for who in (None, "expired", "alice", "bob", "carol-write-only", "carol"):  # no admins
        headers = {"Authorization": f"Bearer {served.keys[who]}"} if who else {}
        answer = httpx.post(f"{served.url}/api/v1/check?repair=true", headers=headers)
        assert answer.status_code == (401 if who in (None, "expired") else 403), who
    for path, body in (("/api/v1/flags", {"run": 1233, "subsystem": "x", "severity": "bad",
                                          "reason": "r"}),
                       (f"/api/v1/flags/{served.flag}/withdraw", {"reason": "r"})):  # fmt: skip
        for who, status in ((None, 401), ("expired", 401), ("alice", 403), ("bob", 404)):
            headers = {"Authorization": f"Bearer {served.keys[who]}"} if who else {}
            answer = httpx.post(f"{served.url}{path}", json=body, headers=headers)
            assert answer.status_code == status, (path, who, answer.text[:200])
    for who, status in ((None, 401), ("expired", 401), ("alice", 403), ("bob", 403),
                        ("carol-write-only", 422)):  # fmt: skip  # a writer: its file is checked
        assert _upload(served, who, [("01299_Data.tdms", b"x")]).status_code == status, who
    step = {"step": "labledger.sim.analysis:density", "runs": 1233}
    for who, status in ((None, 401), ("expired", 401), ("alice", 403), ("bob", 403),
                        ("carol-write-only", 403), ("carol", 200)):  # fmt: skip
        headers = {"Authorization": f"Bearer {served.keys[who]}"} if who else {}
        answer = httpx.post(f"{served.url}/api/v1/compute", json=step, headers=headers)
        assert answer.status_code == status, (who, answer.text[:200])
    garbage = served.get("/api/v1/info", headers={"Authorization": "Bearer ll_nope"})
    assert garbage.status_code == 401 and garbage.headers["WWW-Authenticate"] == "Bearer"
    assert served.get("/api/v1/health").json() == {"status": "ok"}


def test_a_reader_sees_only_the_runs_of_their_projects(served: Served) -> None:
    alice = ll.connect(served.url, api_key=served.keys["alice"])
    bob = ll.connect(served.url, api_key=served.keys["bob"])
    assert [r.number for r in alice.runs] == [1233] and len(alice.runs) == 1
    assert [r.number for r in bob.runs] == [1240] and bob.runs[-1].number == 1240
    assert [r.number for r in bob.runs.search(gas="Ar")] == [1240]
    with pytest.raises(NotFound, match="run 1233 does not exist"):
        bob.runs[1233]
    with pytest.raises(NotFound):
        bob.runs[served.run.id]
    with pytest.raises(Unauthorized, match="not valid"):
        ll.connect(served.url, api_key=served.keys["revoked"])
    with pytest.raises(InvalidArgument, match="http"):
        ll.connect("ftp://somewhere")


@pytest.mark.parametrize(
    "key",
    [
        "../labledger.toml",
        "runs/../labledger.toml",
        "%2e%2e/catalog.sqlite",
        "runs/%2e%2e/%2e%2e/catalog.sqlite",
        "runs/{id}/../../../catalog.sqlite",
        "runs/{id}/data/..%2f..%2f..%2f..%2fcatalog.sqlite",
        "runs/{id}/%2e/data/zarr.json",
        "runs/{id}//data/zarr.json",
        "runs/{id}\\..\\..\\catalog.sqlite",
        "%2fetc%2fpasswd",
        "catalog.sqlite",
        "runs/{id}/data/%00zarr.json",
    ],
)
def test_store_keys_cannot_leave_the_runs(served: Served, key: str) -> None:
    raw = f"{served.url}/api/v1/store/{key.format(id=served.run.id)}"
    # no client-side normalisation of dots: the server must refuse what arrives as sent
    request = httpx.Request("GET", raw, headers={"Authorization": f"Bearer {served.keys['alice']}"})
    answer = httpx.Client().send(request)
    assert 400 <= answer.status_code < 500, (key, answer.status_code)
    assert b"SQLite format" not in answer.content and b"root:" not in answer.content


def test_channel_keys_cannot_leave_the_run(served: Served) -> None:
    for key in ("../../1240/channels/PXI M6251/ai3", "PXI M6251/../../../etc/passwd", "%2e%2e"):
        answer = served.get(f"/api/v1/runs/1233/channels/{key}", "alice")
        assert answer.status_code == 404, (key, answer.status_code)


def test_too_large_is_413_with_what_to_do(served: Served) -> None:
    whole = served.get(f"/api/v1/runs/1233/channels/{CHANNEL}", "alice")  # 70 kB > 50 kB limit
    assert whole.status_code == 413 and "ask for slices" in whole.json()["detail"]
    part = served.get(f"/api/v1/runs/1233/channels/{CHANNEL}", "alice", params={"slice": "0:1000"})
    assert part.status_code == 200
    many = served.get("/api/v1/runs/1233/signals/Langmuir_I", "alice", params={"points": 20_000})
    assert many.status_code == 413 and "at most 10000" in many.text
    store = served.la.store
    keys = store.list(f"runs/{served.run.id}/data")
    shard = next(k for k in keys if store.fs.size(store.path(k)) > LIMITS.max_response_bytes)
    assert served.get(f"/api/v1/store/{shard}", "alice").status_code == 413
    ranged = served.get(f"/api/v1/store/{shard}", "alice", headers={"Range": "bytes=0-99"})
    assert ranged.status_code == 206 and len(ranged.content) == 100


@pytest.mark.parametrize(
    ("path", "params", "headers", "status", "says"),
    [
        (f"/runs/1233/channels/{CHANNEL}", {"slice": "abc"}, {}, 400, "start:stop"),
        (f"/runs/1233/channels/{CHANNEL}", {"slice": "1:9:0"}, {}, 400, "positive"),
        (f"/runs/1233/channels/{CHANNEL}", {"slice": "1:2:3:4"}, {}, 400, "start:stop"),
        ("/runs/1233/channels/no/such", {}, {}, 404, "no/such"),
        ("/runs/1233/signals/Langmuir_X", {}, {}, 404, "Langmuir_I"),
        ("/runs/1233/signals/Langmuir_I", {"points": 1}, {}, 400, "points=1: at least 2"),
        ("/runs/1233/signals/Langmuir_I", {"start": "x"}, {}, 422, "number"),
        ("/runs/1233/signals/Langmuir_I", {"calibration": "nope@9"}, {}, 404, "nope"),
        ("/runs/99999999999999999999", {}, {}, 404, "Not Found"),
        ("/runs/by-number/99999999999999999999", {}, {}, 422, "less than"),
        ("/runs/by-number/-1", {}, {}, 422, "greater"),
        ("/runs/by-numbers", {"numbers": "1,x"}, {}, 400, "whole numbers"),
        ("/runs/by-numbers", {"numbers": "99999999999999999999"}, {}, 400, "go up to"),
        ("/runs/search", {"where": "{not json"}, {}, 400, "not JSON"),
        ("/runs/search", {"where": "[1]"}, {}, 400, "JSON object"),
        ("/runs/search", {"since": "yesterday-ish"}, {}, 400, "not a date"),
        ("/runs/search", {"state": "melted"}, {}, 400, "melted"),
        ("/runs/search", {"quality": "great"}, {}, 400, "great"),
        ("/runs", {"limit": 0}, {}, 422, "greater"),
        ("/runs/sources", {"runs": ""}, {}, 400, "run ids"),
        ("/store/runs/{id}/data/zarr.json", {}, {"Range": "bytes=5"}, 400, "one range"),
        ("/store/runs/{id}/data/zarr.json", {}, {"Range": "bytes=9999999-"}, 400, "outside"),
        ("/store/runs/{id}/data/nothing", {}, {}, 404, "does not exist"),
    ],
)
def test_malformed_requests_get_a_4xx_that_says_why(
    served: Served, path: str, params: dict[str, Any], headers: dict[str, str], status: int,
    says: str,
) -> None:  # fmt: skip
    answer = served.get(f"/api/v1{path.format(id=served.run.id)}", "alice", params=params,
                        headers=headers)  # fmt: skip
    assert answer.status_code == status, (answer.status_code, answer.text[:300])
    assert says in answer.text


def test_arrays_travel_as_bytes_compressed_when_it_pays(served: Served) -> None:
    local = served.run.channels[CHANNEL][1000:5000]
    path = f"/api/v1/runs/1233/channels/{CHANNEL}"
    for coding in ("zstd", "lz4", "gzip"):
        answer = httpx.get(f"{served.url}{path}", params={"slice": "1000:5000"},
                           headers={"Authorization": f"Bearer {served.keys['alice']}",
                                    "Accept-Encoding": coding})  # fmt: skip
        assert answer.headers.get("Content-Encoding") == coding
        assert answer.num_bytes_downloaded < local.nbytes  # ADC integers compress
        from labledger.wire import decompress

        body = answer.content if coding != "lz4" else decompress(answer.content, "lz4")
        assert np.array_equal(decode_array(body, answer.headers), local)
    plain = served.get(path, "alice", params={"slice": "1000:5000"},
                       headers={"Accept-Encoding": "identity"})  # fmt: skip
    assert "Content-Encoding" not in plain.headers and len(plain.content) == local.nbytes
    assert plain.headers["X-Dtype"] == local.dtype.newbyteorder("<").str
    assert plain.headers["X-Shape"] == "4000"


def test_a_preview_is_decimated_on_the_server(served: Served) -> None:
    remote = ll.connect(served.url, api_key=served.keys["alice"])
    full = served.run.signal("Langmuir_I")
    preview = remote.runs[1233].signal("Langmuir_I", points=500)
    assert preview.sizes["time"] == 500 and preview.attrs["decimated_from"] == full.sizes["time"]
    expected = full.isel(time=minmax_by_hand(full.values, 500))
    assert np.array_equal(preview.values, expected.values)
    assert np.array_equal(preview["time"].values, expected["time"].values)
    assert preview.values.max() == full.values.max() and preview.values.min() == full.values.min()
    window = remote.runs[1233].signal("Langmuir_I", points=100, time=(0.1, 0.2))
    assert float(window["time"].min()) >= 0.1 and float(window["time"].max()) <= 0.2


def test_minmax_keeps_every_extreme_and_their_order() -> None:
    rng = np.random.default_rng(1)
    values = rng.normal(size=100_003)
    values[[7, 50_000, 99_999]] = [50.0, -60.0, np.nan]
    picked = minmax(values, 1000)
    assert len(picked) == 1000 and np.all(np.diff(picked) > 0)
    assert {7, 50_000} <= set(picked.tolist()) and 99_999 not in picked
    assert minmax(values[:10], 1000).tolist() == list(range(10))
    for n, points in ((100_003, 1000), (999, 10), (1000, 10), (37, 6)):  # equal buckets or not
        assert minmax(values[:n], points).tolist() == minmax_by_hand(values[:n], points)
    with pytest.raises(InvalidArgument, match="at least 2"):
        minmax(values, 1)


def test_public_serves_anonymous_readers_only(served: Served) -> None:
    with serving(create_app(served.la, public=True)) as url:
        anonymous = ll.connect(url)
        assert sorted(r.number for r in anonymous.runs) == [1233, 1240]
        assert httpx.get(f"{url}/api/v1/info").json()["user"] is None


def test_users_and_keys_from_the_command_line_and_a_real_server(tmp_path: Path) -> None:
    folder = tmp_path / "archive"
    assert cli("init", str(folder)).returncode == 0
    added = cli("user", "add", "dora", "-a", str(folder), "--role", "admin")
    assert added.returncode == 0 and "dora is admin in project default" in added.stdout
    made = cli("key", "create", "dora", "-a", str(folder), "--scopes", "read,admin")
    key = made.stdout.strip()
    assert made.returncode == 0 and re.fullmatch(r"ll_[0-9a-f]{12}_\S+", key)
    listed = cli("key", "list", "-a", str(folder), "--json")
    assert key.split("_")[2] not in listed.stdout  # the secret is never kept
    bad = cli("key", "create", "nobody", "-a", str(folder))
    assert bad.returncode == 1 and "no user 'nobody'" in bad.stderr
    bad = cli("key", "create", "dora", "-a", str(folder), "--scopes", "root")
    assert bad.returncode == 1 and "scopes" in bad.stderr
    bad = cli("user", "add", "dora", "-a", str(folder), "--role", "king")
    assert bad.returncode == 1 and "role 'king'" in bad.stderr
    with ll.open(folder) as la:
        audit = Access(la.catalog).audit()
    assert [a["action"] for a in audit] == ["key.create", "user.add"]
    assert audit[0]["detail"] == {"user": "dora", "scopes": ["admin", "read"]}


def test_a_shared_deployment_on_postgresql(pg_url: str, tmp_path: Path) -> None:
    from labledger.sim import build

    la = ll.init(tmp_path / "archive", catalog=pg_url)
    build(la, tmp_path / "daq", [1233])
    access = Access(la.catalog)
    access.add_user("erin", project="default", role="reader", by="tests")
    key = access.create_key("erin", scopes=["read"], expires=timedelta(hours=1))
    with serving(create_app(la)) as url:
        remote = ll.connect(url, api_key=key)
        run = remote.runs[-1]
        assert run.number == 1233 and run.id == la.runs[1233].id
        assert np.array_equal(
            run.signal("Langmuir_I").values, la.runs[1233].signal("Langmuir_I").values
        )
        with pytest.raises(Unauthorized):
            ll.connect(url, api_key=key[:-1] + ("A" if key[-1] != "A" else "B"))
    assert [a["action"] for a in access.audit()] == ["key.create", "user.add"]
    la.close()


def test_runs_are_ingested_into_a_project(tmp_path: Path) -> None:
    from labledger.sim import write_shot
    from tests.conftest import snapshot

    la = ll.init(tmp_path / "archive")
    la.ingest([write_shot(tmp_path, 1233)], project="lab-b")
    assert la.runs[1233]._row.project == "lab-b"
    before = snapshot(la)
    with pytest.raises(InvalidArgument, match="project 'no such/project'"):
        la.ingest([write_shot(tmp_path, 1234)], project="no such/project")
    assert snapshot(la) == before
    la.close()  # the command is another process: its catalog closes as it ends
    folder = tmp_path / "archive"
    with ll.open(folder) as again:
        before = snapshot(again)
    bad = cli("ingest", str(write_shot(tmp_path, 1235)), "-a", str(folder), "--project", "../x")
    assert bad.returncode == 1 and "project '../x'" in bad.stderr
    with ll.open(folder) as again:
        assert snapshot(again) == before


def _upload(served: Served, who: str | None, files: list[tuple[str, bytes]], **form: str) -> Any:
    headers = {"Authorization": f"Bearer {served.keys[who]}"} if who else {}
    parts = [("files", (name, data)) for name, data in files]
    return httpx.post(f"{served.url}/api/v1/ingest", headers=headers, files=parts, data=form,
                      timeout=60)  # fmt: skip


def test_writers_upload_raw_files_to_ingest(own_served: Served, tmp_path: Path) -> None:
    served = own_served  # it writes
    from labledger.errors import BadInput, Forbidden
    from labledger.sim import write_shot
    from tests.conftest import snapshot

    shot = write_shot(tmp_path, 1250)
    carol = ll.connect(served.url, api_key=served.keys["carol"])
    [made] = carol.ingest([shot])
    assert made.number == 1250 and not made.already and made.channels > 0
    assert carol.runs[1250].sources[0].sha256 == served.la.runs[1250].sources[0].sha256
    [again] = carol.ingest([shot])
    assert again.already and again.number == 1250
    audit = Access(served.la.catalog).audit(limit=2)
    assert [a["action"] for a in audit] == ["ingest", "ingest"] and audit[0]["who"] == "carol"
    before = snapshot(served.la)
    alice = ll.connect(served.url, api_key=served.keys["alice"])
    with pytest.raises(Forbidden, match="alice may not write in project 'default'"):
        alice.ingest([write_shot(tmp_path, 1251)])
    bob = ll.connect(served.url, api_key=served.keys["bob"])
    with pytest.raises(Forbidden, match="bob may not write"):
        bob.ingest([write_shot(tmp_path, 1252)])
    empty = tmp_path / "01253_Data.tdms"
    empty.write_bytes(b"")
    with pytest.raises(BadInput, match="empty"):
        carol.ingest([empty])
    assert _upload(served, None, [("a.tdms", b"x")]).status_code == 401
    for name in ("../01254_Data.tdms", "..", "a/b.tdms", "a\\b.tdms"):
        answer = _upload(served, "carol", [(name, shot.read_bytes())])
        assert answer.status_code == 400 and "plain file name" in answer.text, name
    big = _upload(served, "carol", [("01255_Data.tdms", b"\0" * 10_000_001)])
    assert big.status_code == 413 and "Content-Length" in big.text
    assert snapshot(served.la) == before


def test_subscribers_hear_of_runs_flags_and_products_of_their_projects(tmp_path: Path) -> None:
    from labledger.sim import write_shot
    from labledger.sim.analysis import density

    la = make_two_projects(tmp_path)  # its own: this test writes
    access = Access(la.catalog)
    keys = {who: access.create_key(who, scopes=["read", "write"] if who == "carol" else ["read"])
            for who in ("alice", "bob", "carol")}  # fmt: skip
    with serving(create_app(la)) as url:
        # each returns once subscribed (the server's first line says so): no sleep, no guess
        streams = {who: ll.connect(url, api_key=keys[who]).subscribe(timeout=600)
                   for who in ("alice", "bob")}  # fmt: skip
        streams["local"] = la.subscribe(timeout=600)
        carol = ll.connect(url, api_key=keys["carol"])
        carol.ingest([write_shot(tmp_path, 1260)])  # through the server
        arc = la.flag(run=1260, subsystem="probe", severity="bad", reason="arc")  # not via it
        la.compute(density, 1260)
        la.flags.withdraw(arc.id, reason="it was noise")
        la.compute(density, [1260])  # a set: its part is made already
        # the last news of each project, so each listener knows it has heard everything
        la.ingest([write_shot(tmp_path, 1261)], project="other")
        la.ingest([write_shot(tmp_path, 1262)])
        heard: dict[str, list[dict[str, Any]]] = {}
        for who, last in (("alice", 1262), ("bob", 1261), ("local", 1262)):
            heard[who] = []
            for event in streams[who]:  # the timeout is a guard against a hang only
                heard[who].append(event)
                if event["kind"] == "run" and event["number"] == last:
                    break
            streams[who].close()  # type: ignore[attr-defined]
    with pytest.raises(InvalidArgument, match="kinds"):
        next(la.subscribe(["runs"]))
    la.close()

    def told(events: list[dict[str, Any]]) -> list[tuple[str, Any]]:
        return [(e["kind"], e.get("number") or e.get("runs") or e.get("run")) for e in events]

    # a new part too: the flag's withdrawal changed what the part is computed from
    assert told(heard["alice"]) == [("run", 1260), ("flag", [1260]), ("product", 1260),
                                    ("flag", [1260]), ("product", 1260), ("product", None),
                                    ("run", 1262)]  # fmt: skip
    assert heard["alice"][3]["action"] == "withdraw" and heard["alice"][5]["product_kind"] == "set"
    assert told(heard["bob"]) == [("run", 1261)]  # of project default: nothing
    assert heard["local"] == heard["alice"][:-1] + heard["bob"] + heard["alice"][-1:]


def test_many_idle_streams_do_not_starve_the_server(served: Served) -> None:
    import contextlib

    headers = {"Authorization": f"Bearer {served.keys['alice']}"}
    with contextlib.ExitStack() as streams:
        for _ in range(60):  # more than the server's worker threads
            client = streams.enter_context(httpx.Client(timeout=30))
            response = streams.enter_context(
                client.stream("GET", f"{served.url}/api/v1/notifications", headers=headers)
            )
            assert response.status_code == 200
        # starved, it would not answer before the client's timeout (a guard, not a measure:
        # bench/streams.py times it)
        assert served.get("/api/v1/runs/by-number/1233", "alice").status_code == 200


def test_compute_next_to_the_data_and_read_products_and_lineage(own_served: Served) -> None:
    served = own_served  # it writes
    from labledger.errors import Forbidden
    from labledger.sim.analysis import density, windows

    carol = ll.connect(served.url, api_key=served.keys["carol"])
    made = carol.compute(density, [1233], where="server")
    assert not made.reused and made.kind == "set"
    # made by the server's process, for carol (the audit log names her): its user and host
    assert made.author == f"{getpass.getuser()}@{socket.gethostname()}"
    local = served.la.compute(density, [1233])
    assert local.id == made.id and local.reused  # the same product: computed once
    assert made.value == local.value and made.parts[0].run == 1233
    assert made.parts[0].provenance["inputs"]["runs"][0]["signals"] == ["Langmuir_I", "Langmuir_V"]
    assert carol.compute(density, [1233], where="server").reused
    events = carol.compute(windows, 1233, where="server")  # a table in the store, read over HTTP
    assert events.value.num_rows == served.la.compute(windows, 1233).value.num_rows > 0
    graph = carol.lineage(made.id)
    assert {n.kind for n in graph.nodes.values()} == {"product", "run", "file"}
    assert str(graph) == str(served.la.lineage(made.id))
    down = carol.lineage("1233", direction="down")
    assert made.id in down.nodes
    alice = ll.connect(served.url, api_key=served.keys["alice"])
    assert alice.products[made.id[:18]].value == made.value
    assert [p.id for p in alice.products.search(step=density, run=None)][:1] == [made.id]
    with pytest.raises(Forbidden, match="alice may not write in any project"):
        alice.compute(density, [1233], where="server", window=(-40.0, 10.0))
    bob = ll.connect(served.url, api_key=served.keys["bob"])
    with pytest.raises(NotFound, match="not yours to read"):
        bob.products[made.id]
    assert made.id not in [p.id for p in bob.products.search(status=None)]
    with pytest.raises(NotFound):
        bob.lineage(made.id)
    with pytest.raises(Forbidden, match="bob may not write in any project"):
        bob.compute(density, [1233], where="server")  # a reader of another project
    carol_key = {"Authorization": f"Bearer {served.keys['carol']}"}
    nowhere = {"step": "nowhere:thing", "runs": 1233}
    unknown = httpx.post(f"{served.url}/api/v1/compute", json=nowhere, headers=carol_key)
    assert unknown.status_code == 404 and "'nowhere:thing' is not known here" in unknown.text
    import sys

    # nothing is imported for a caller: a module name runs no code on the server
    sneaky = httpx.post(f"{served.url}/api/v1/compute", headers=carol_key,
                        json={"step": "antigravity:x", "runs": 1233})  # fmt: skip
    assert sneaky.status_code == 404 and "antigravity" not in sys.modules
    for params in ({"x": {"$float": "abc"}}, {"x": {"$set": [[1]]}}, {"runs": [1]}, {"no_such": 1}):
        bad = httpx.post(f"{served.url}/api/v1/compute", headers=carol_key,
                         json={"step": density.name, "runs": 1233, "params": params})  # fmt: skip
        assert bad.status_code == 400, (params, bad.text)
    for body in ({"step": "x:y"}, {"step": "x:y", "runs": [-1]}, {"runs": 1233}, []):
        bad = httpx.post(f"{served.url}/api/v1/compute", json=body, headers=carol_key)
        assert bad.status_code in (400, 404, 422), body
    with pytest.raises(NotFound, match="run 4242 does not exist"):
        carol.compute(density, [4242], where="server")
    with pytest.raises(InvalidArgument, match="where='server'"):
        carol.compute(density, [1233])
    with pytest.raises(InvalidArgument, match="opened here"):
        served.la.compute(density, [1233], where="server")


def test_flags_through_the_server(own_served: Served) -> None:
    served = own_served  # it writes
    from labledger.errors import Forbidden

    carol = ll.connect(served.url, api_key=served.keys["carol"])
    alice = ll.connect(served.url, api_key=served.keys["alice"])
    bob = ll.connect(served.url, api_key=served.keys["bob"])
    flag = carol.flag(run=1233, start=0.2, stop=0.3, subsystem="probe", severity="bad",
                      reason="arc on the tip")  # fmt: skip
    assert flag.author == "carol (through the server)" and flag.runs == [1233]
    assert [f.id for f in alice.runs[1233].flags] == [flag.id]
    assert served.la.flags[flag.id].reason == "arc on the tip"  # the same log as local
    assert alice.flags.list(run=1233)[0].where == "run 1233 from 0.2 to 0.3 s"
    assert flag.id not in [f.id for f in bob.flags.list()]
    before = served.la.flags.version
    with pytest.raises(Forbidden, match="alice may not write in project 'default'"):
        alice.flag(run=1233, subsystem="probe", severity="bad", reason="no")
    with pytest.raises(NotFound, match="run 1233 does not exist"):
        bob.flag(run=1233, subsystem="probe", severity="bad", reason="no")
    with pytest.raises(InvalidArgument, match="reason"):
        carol.flag(run=1233, subsystem="probe", severity="bad")
    with pytest.raises(InvalidArgument, match="stop"):
        carol.flag(run=1233, start=0.5, stop=0.1, subsystem="probe", severity="bad", reason="x")
    with pytest.raises(NotFound, match="4242"):
        carol.flag(runs=[1233, 4242], subsystem="probe", severity="bad", reason="x")
    with pytest.raises(NotFound):
        bob.flags[flag.id]
    assert served.la.flags.version == before  # nothing of those was written
    carol.flags.withdraw(flag.id, reason="it was the cable")
    assert alice.flags[flag.id].status == "withdrawn" and alice.runs[1233].flags == []
    actions = [a["action"] for a in Access(served.la.catalog).audit(limit=2)]
    assert actions == ["flag.withdraw", "flag.add"]


def test_events_queried_on_the_server(own_served: Served) -> None:
    served = own_served  # it writes
    from labledger.sim.analysis import bright_windows, windows

    level2 = served.la.compute(windows, [1233, 1240])
    served.la.compute(bright_windows, inputs=level2)
    local = served.la.events(level=4).with_parent(level=2).to_arrow()
    carol = ll.connect(served.url, api_key=served.keys["carol"])
    remote = carol.events(level=4).with_parent(level=2).to_arrow()
    mine = local.filter(pc.equal(local.column("run"), 1233))  # carol reads 1233 only
    assert remote.equals(mine) and remote.num_rows > 0
    assert carol.events(level=4).count() == mine.num_rows
    assert carol.events(level=4, runs=[1240]).count() == 0  # another project's run
    bob = ll.connect(served.url, api_key=served.keys["bob"])
    assert set(bob.events(level=2).to_pandas()["run"]) == {1240}
    with pytest.raises(InvalidArgument, match="with_parent"):
        carol.events(level=2).with_parent(level=4)
    answer = served.get("/api/v1/events", "alice", params={"level": 4, "with_parent": "x"})
    assert answer.status_code == 400


def test_another_front_can_authenticate(served: Served) -> None:
    from labledger.access import Principal

    def hub(headers: Any) -> Principal:  # what a JupyterHub front would do with its token
        if headers.get("x-hub-user") != "dora":
            raise Unauthorized("no hub user")
        return Principal(user="dora", scopes=frozenset({"read"}), roles={"default": "reader"})

    with serving(create_app(served.la, authenticate=hub)) as url:
        mine = httpx.get(f"{url}/api/v1/runs/by-number/1233", headers={"X-Hub-User": "dora"})
        assert mine.status_code == 200 and mine.json()["number"] == 1233
        assert httpx.get(f"{url}/api/v1/runs/by-number/1240",
                         headers={"X-Hub-User": "dora"}).status_code == 404  # fmt: skip
        assert httpx.get(f"{url}/api/v1/runs/by-number/1233").status_code == 401


def test_labledger_serve_in_its_own_process(tmp_path: Path) -> None:
    import subprocess
    import sys

    from labledger.sim import build

    with ll.init(tmp_path / "archive") as la:
        build(la, tmp_path / "daq", [1233])
        access = Access(la.catalog)
        access.add_user("erin", project="default", role="writer", by="tests")
        key = access.create_key("erin", scopes=["read", "write"])
        expected = la.runs[1233].signal("Langmuir_I").values
    port = free_port()
    with open(tmp_path / "stderr.log", "wb+") as log:  # the request log: a pipe would fill up
        server = subprocess.Popen(
            [sys.executable, "-m", "labledger.cli", "serve", "-a", str(tmp_path / "archive"),
             "--port", str(port), "--steps", "labledger.sim.analysis"],
            stdout=subprocess.PIPE, stderr=log, text=True,
        )  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        try:
            wait_for_server(url, server, log)
            remote = ll.connect(url, api_key=key)
            assert np.array_equal(remote.runs[-1].signal("Langmuir_I").values, expected)
            assert httpx.get(f"{url}/docs").status_code == 200  # OpenAPI's pages
            assert httpx.get(f"{url}/api/v1/runs").status_code == 401  # not --public
            from labledger.sim.analysis import density

            made = remote.compute(density, 1233, where="server")  # a step of --steps
            assert made.value.m_as("m^-3") > 1e17 and made.provenance["host"]
        finally:
            server.terminate()
            out, _ = server.communicate(timeout=10)
    assert f"serving <Archive {tmp_path / 'archive'}> on {url}" in out
    text = (tmp_path / "stderr.log").read_text()
    lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    anonymous = {"method": "GET", "path": "/api/v1/runs", "status": 401, "user": "-"}
    assert any(anonymous.items() <= line.items() for line in lines)
    assert {line["user"] for line in lines} == {"-", "erin"}
    assert key.split("_", 2)[2] not in text  # the key's secret is never logged
    bad = cli("serve", "-a", str(tmp_path / "archive"), "--steps", "no.such.module")
    assert bad.returncode == 1 and "--steps no.such.module: cannot be imported" in bad.stderr
    bad = cli("serve", "-a", str(tmp_path / "archive"), "--request-log", str(tmp_path / "no/x"))
    assert bad.returncode == 1 and bad.stderr.count("\n") == 1
    assert f"--request-log {tmp_path / 'no/x'}: cannot write it" in bad.stderr


def test_good_run_lists_and_staleness_through_the_server(own_served: Served) -> None:
    served = own_served  # it writes
    from labledger.sim.analysis import density

    sha = served.la.runs[1233].sources[0].sha256
    mine = served.la.good_runs("just-1233", query={"source": sha}, reason="one run")
    served.la.good_runs("everything", require=["power"], reason="all runs")
    alice = ll.connect(served.url, api_key=served.keys["alice"])
    assert (
        list(alice.good_runs("just-1233")) == [1233]
        and alice.good_runs("just-1233@1").hash == mine.hash
    )
    with pytest.raises(NotFound, match="not yours to read"):
        alice.good_runs("everything")  # it holds a run of another project
    with pytest.raises(NotFound):
        alice.good_runs("no-such-list")
    with pytest.raises(NotRemote, match="not available through a server"):
        alice.good_runs("new", require=["power"])
    carol = ll.connect(served.url, api_key=served.keys["carol"])
    over = carol.compute(density, carol.good_runs("just-1233"), where="server")
    assert over.provenance["inputs"]["good_runs"]["name"] == "just-1233"
    assert [p.run for p in over.parts] == [1233]
    served.la.flag(run=1233, subsystem="probe", severity="bad", reason="probe tip burnt")
    stale = {s.product.id: s.reasons for s in carol.stale()}
    local = {s.product.id: s.reasons for s in served.la.stale() if s.product.run in (1233, None)}
    assert over.id in stale and any("probe tip burnt" in r for r in stale[over.parts[0].id])
    assert set(stale) <= set(local)
    bob = ll.connect(served.url, api_key=served.keys["bob"])
    assert not set(stale) & {s.product.id for s in bob.stale()}


def test_what_is_refused_before_the_body_is_read(served: Served) -> None:
    big = b'{"step": "' + b"x" * 2_000_000 + b'"}'
    carol = {"Authorization": f"Bearer {served.keys['carol']}"}
    for headers, status in (({}, 401), (carol, 413)):
        answer = httpx.post(f"{served.url}/api/v1/compute", content=big,
                            headers={**headers, "Content-Type": "application/json"})  # fmt: skip
        assert answer.status_code == status, answer.text[:200]

    def chunks() -> Iterator[bytes]:  # no Content-Length: a chunked upload
        yield b"--x\r\n"

    form = {**carol, "Content-Type": "multipart/form-data; boundary=x"}
    chunked = httpx.post(f"{served.url}/api/v1/ingest", content=chunks(), headers=form)
    assert chunked.status_code == 413 and "Content-Length" in chunked.text
    for path in ("/api/v1/runs/by-id/a%00b", "/api/v1/runs/search?source=a%00b"):
        assert served.get(path, "alice").status_code == 400, path
    folder = f"/api/v1/store/runs/{served.run.id}/data"
    assert served.get(folder, "alice").status_code == 404
    assert served.get(folder, "alice", headers={"Range": "bytes=0-9"}).status_code == 404
    assert served.get("/api/v1/lineage/²", "alice", params={"direction": "down"}).status_code == 404
    assert (
        served.get("/api/v1/lineage/1²", "alice", params={"direction": "down"}).status_code == 404
    )
    # another project's objects: refused (403), never "missing" (a reader would fill zeros)
    other = served.la.runs[1240].id
    assert served.get(f"/api/v1/store/runs/{other}/data/zarr.json", "alice").status_code == 403
