"""What a reader can make the server do is bounded (issue 11, item 6): a search's keys, values
and their sizes, the time a statement may run on PostgreSQL, and how many notification
streams one key and the whole server hold open; beyond a bound, a 4xx that names it, and the
same refusal from the local API where it protects the database."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

import labledger as ll
from labledger.access import Access, ApiKeys
from labledger.errors import Busy, InvalidArgument, TooLarge
from labledger.server import Limits, create_app, serving
from labledger.server.streams import Streams
from labledger.sim import build


@pytest.fixture
def shots(archive: ll.Archive, tmp_path: Path) -> ll.Archive:
    """Two shots: argon (1233) and helium (1260), on SQLite and on PostgreSQL."""
    build(archive, tmp_path / "daq", [1233, 1260])
    return archive


def _reader(la: ll.Archive, name: str = "alice", keys: int = 1) -> list[str]:
    access = Access(la.catalog)
    access.add_user(name, project="default", role="reader", by="tests")
    return [access.create_key(name, scopes=["read"]) for _ in range(keys)]


def _search(url: str, key: str, where: str) -> httpx.Response:
    return httpx.get(f"{url}/api/v1/runs/search", params={"where": where},
                     headers={"Authorization": f"Bearer {key}"}, timeout=60)  # fmt: skip


# (what the JSON says, what the refusal names)
HOSTILE = [
    (json.dumps({f"key{i}": "x" for i in range(300)}), "at most 16"),
    (json.dumps({"gas": [str(i) for i in range(1001)]}), "1001 values; at most 1000 per key"),
    ('{"shot": 1' + "0" * 400 + "}", "between -2**63 and 2**63-1"),
    ('{"gas": "A\\u0000r"}', "without NUL"),
    ('{"ga\\u0000s": "Ar"}', "without NUL"),
    (json.dumps({"gas": "A" * 5000}), "at most 4096 characters"),
    (json.dumps({"k" * 300: "x"}), "1 to 255 characters"),
    ('{"shot": NaN}', "matches nothing"),
    ('{"gas": []}', "an empty list of values"),
    ('{"gas": {"$ne": 1}}', "text, numbers or booleans"),
]


def test_searches_are_bounded_locally_and_through_the_server(shots: ll.Archive) -> None:
    [key] = _reader(shots)
    with serving(create_app(shots)) as url:
        remote = ll.connect(url, api_key=key)
        for where, named in HOSTILE:
            answer = _search(url, key, where)
            assert answer.status_code == 400, (where[:60], answer.text)
            assert named in answer.json()["detail"], (where[:60], answer.text)
            for archive in (shots, remote):  # the same refusal, in the same words
                with pytest.raises(InvalidArgument, match=named.replace("*", r"\*")):
                    archive.runs.search(where=json.loads(where))
        # at the bounds, the answer is right: 16 keys, 1000 values for one of them
        meta = {n: shots.runs[n].metadata for n in (1233, 1260)}
        keys = [k for k, v in meta[1233].items() if isinstance(v, str) and len(k) <= 255][:15]
        where: dict[str, Any] = {k: meta[1233][k] for k in keys}
        where["gas"] = ["Ar", "He", *(f"x{i}" for i in range(998))]
        assert len(where) <= 16 and len(where["gas"]) == 1000
        expected = [n for n in (1233, 1260)
                    if all(meta[n].get(k) == v for k, v in where.items() if k != "gas")
                    and meta[n]["gas"] in ("Ar", "He")]  # fmt: skip
        assert expected  # run 1233 at least: the keys are its own
        for archive in (shots, remote):
            assert [r.number for r in archive.runs.search(where=where)] == expected
        numbers = {"shot": [1233, 1260, 2**63 - 1, -(2**63)]}
        assert [r.number for r in remote.runs.search(where=numbers)] == [1233, 1260]


def test_postgresql_cancels_a_statement_over_the_servers_timeout(
    pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    la = ll.init(tmp_path / "archive", catalog=pg_url)
    [key] = _reader(la)
    app = create_app(la, limits=Limits(statement_timeout_s=0.25))
    with la.catalog.engine.connect() as conn:
        assert conn.execute(text("SHOW statement_timeout")).scalar() == "250ms"

    def slow(**_: Any) -> None:  # a search that would run for minutes
        with la.catalog.reading() as session:
            session.execute(text("SELECT pg_sleep(60)"))

    monkeypatch.setattr(la.catalog, "search", slow)
    with serving(app) as url:
        answer = _search(url, key, '{"gas": "Ar"}')
        assert answer.status_code == 413
        assert "statement timeout (0.25 s, statement_timeout_s)" in answer.json()["detail"]
        with pytest.raises(TooLarge, match="statement timeout"):
            ll.connect(url, api_key=key).runs.search(gas="Ar")
        monkeypatch.undo()
        assert ll.connect(url, api_key=key).runs.search(gas="Ar") == []  # still serving
    la.close()


def _hold(
    streams: contextlib.ExitStack,
    url: str,
    key: str | None,
    *,
    headers: dict[str, str] | None = None,
    timeout: float = 30.0,
    address: str | None = None,
) -> httpx.Response:
    """A notification stream held open until ``streams`` closes, with ``key`` (or these
    ``headers``), lasting ``timeout`` s, from the client ``address``."""
    transport = httpx.HTTPTransport(local_address=address) if address else None
    client = streams.enter_context(httpx.Client(timeout=30, transport=transport))
    return streams.enter_context(
        client.stream(
            "GET",
            f"{url}/api/v1/notifications",
            params={"timeout": timeout},
            headers=headers if headers is not None else {"Authorization": f"Bearer {key}"},
        )
    )


def _opens(url: str, key: str) -> bool:
    """Whether a new stream is let in now (it is closed at once)."""
    with contextlib.ExitStack() as streams:
        return _hold(streams, url, key).status_code == 200


def _refusal(response: httpx.Response) -> str:
    response.read()
    assert response.status_code == 429, response.text
    return str(response.json()["detail"])


def test_streams_are_capped_and_the_server_answers_while_they_are_held(
    sqlite_archive: ll.Archive, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    la = sqlite_archive
    build(la, tmp_path / "daq", [1233])
    first, second, third = _reader(la, keys=3)
    limits = Limits(max_streams=5, max_streams_per_key=3)
    with serving(create_app(la, limits=limits)) as url, contextlib.ExitStack() as streams:
        held = [_hold(streams, url, first) for _ in range(3)]
        assert [r.status_code for r in held] == [200, 200, 200]
        over_key = _hold(streams, url, first)
        over_key.read()
        assert over_key.status_code == 429
        assert "max_streams_per_key=3" in over_key.json()["detail"]
        held += [_hold(streams, url, second) for _ in range(2)]
        assert [r.status_code for r in held] == [200] * 5
        # the server's cap is named, not how many streams it holds (its state, not the
        # caller's): no number in the answer
        over_all = _refusal(_hold(streams, url, third))
        assert "(max_streams)" in over_all and not re.search(r"\d", over_all), over_all
        with pytest.raises(Busy, match=r"\(max_streams\)"):
            next(iter(ll.connect(url, api_key=third).subscribe()))
        # while they are held: the service answers, and answers right
        assert httpx.get(f"{url}/api/v1/health", timeout=30).json() == {"status": "ok"}
        run = httpx.get(f"{url}/api/v1/runs/by-number/1233", timeout=30,
                        headers={"Authorization": f"Bearer {third}"}).json()  # fmt: skip
        assert (run["number"], run["id"]) == (1233, la.runs[1233].id)
        # and the held streams hear what happens, from one shared poller
        flag = la.flag(run=1233, subsystem="probe", severity="warning", reason="heard?")
        heard = _first_event(held[0])
        assert (heard["kind"], heard["id"], heard["runs"]) == ("flag", flag.id, [1233])
        assert _first_event(held[4])["id"] == flag.id
    # once a stream ends, its place is free again (the server notices the client left):
    # waited for by the server's own release of it, not by the clock
    released = threading.Event()
    close = Streams.close

    def closing(self: Streams, subscriber: Any) -> None:
        close(self, subscriber)
        released.set()

    monkeypatch.setattr(Streams, "close", closing)
    with serving(create_app(la, limits=Limits(max_streams=1))) as url:
        with contextlib.ExitStack() as streams:
            assert _hold(streams, url, first).status_code == 200
            assert not _opens(url, second)
        assert released.wait(timeout=120)  # a guard against a hang only
        assert _opens(url, second)


def _first_event(response: httpx.Response) -> dict[str, Any]:
    for line in response.iter_lines():
        if line.startswith("data: "):
            return dict(json.loads(line[6:]))
    raise AssertionError("the stream ended without an event")


def test_a_revoked_key_ends_its_streams(sqlite_archive: ll.Archive) -> None:
    la = sqlite_archive
    [key] = _reader(la)
    # the key cache and the stream's recheck made short, so the revocation counts at once;
    # the stream says why it ended, which its own timeout (a minute) would not
    app = create_app(la, limits=Limits(stream_recheck_s=0.1),
                     authenticate=ApiKeys(Access(la.catalog), keep_s=0.1))  # fmt: skip
    with serving(app) as url, contextlib.ExitStack() as streams:
        held = _hold(streams, url, key, timeout=60)
        assert held.status_code == 200
        Access(la.catalog).revoke_key(key.split("_")[1], by="tests")
        lines = [line for line in held.iter_lines() if line]
    assert lines[0] == ": labledger notifications"
    assert lines[-1] == ": ended: the API key is no longer valid", lines


def test_one_key_is_capped_however_its_header_is_spelled(sqlite_archive: ll.Archive) -> None:
    la = sqlite_archive
    key, other = _reader(la, keys=2)
    spellings = [
        {"Authorization": f"Bearer {key}"},
        {"Authorization": f"bearer {key}"},
        {"Authorization": f"BEARER   {key}"},
        {"X-API-Key": key},
        {"Authorization": f"bEaReR {key}"},
    ]
    limits = Limits(max_streams=100, max_streams_per_key=2)
    with serving(create_app(la, limits=limits)) as url, contextlib.ExitStack() as streams:
        held = [_hold(streams, url, None, headers=h) for h in spellings]
        assert [r.status_code for r in held] == [200, 200, 429, 429, 429]
        assert "(max_streams_per_key=2)" in _refusal(held[3])
        assert _hold(streams, url, other).status_code == 200  # another key of alice's


def test_anonymous_streams_are_capped_per_client_address(sqlite_archive: ll.Archive) -> None:
    limits = Limits(max_streams=100, max_streams_per_key=2)
    app = create_app(sqlite_archive, public=True, limits=limits)
    with serving(app) as url, contextlib.ExitStack() as streams:
        held = [_hold(streams, url, None, headers={}) for _ in range(3)]
        assert [r.status_code for r in held] == [200, 200, 429]
        assert "(max_streams_per_key=2)" in _refusal(held[2])
        # another address (127.0.0.2 is loopback too) has its own count
        elsewhere = _hold(streams, url, None, headers={}, address="127.0.0.2")
        assert elsewhere.status_code == 200


def test_one_check_runs_at_a_time_off_the_event_loop(
    sqlite_archive: ll.Archive, monkeypatch: pytest.MonkeyPatch
) -> None:
    la = sqlite_archive
    access = Access(la.catalog)
    access.add_user("root", project="default", role="admin", by="tests")
    headers = {"Authorization": f"Bearer {access.create_key('root', scopes=['read', 'admin'])}"}
    running, release = threading.Event(), threading.Event()
    on_loop: list[bool] = []
    check = la.check

    def held(**options: Any) -> Any:
        """The check, held at its start (the first one) until the test lets it go."""
        try:
            asyncio.get_running_loop()
            on_loop.append(True)
        except RuntimeError:
            on_loop.append(False)
        if not running.is_set():
            running.set()
            release.wait(timeout=120)  # a guard against a hang only
        return check(**options)

    monkeypatch.setattr(la, "check", held)
    with serving(create_app(la)) as url, ThreadPoolExecutor(1) as pool:
        post = f"{url}/api/v1/check"
        first = pool.submit(httpx.post, post, headers=headers, timeout=120)
        assert running.wait(timeout=120)
        second = httpx.post(post, headers=headers, params={"repair": True}, timeout=60)
        assert second.status_code == 429, second.text
        assert second.json()["detail"] == (
            "a check of the archive is running; try again when it is done"
        )
        assert httpx.get(f"{url}/api/v1/health", timeout=60).json() == {"status": "ok"}
        release.set()
        assert first.result().status_code == 200
        assert first.result().json()["ok"] is True
        assert httpx.post(post, headers=headers, timeout=60).status_code == 200  # free again
    assert on_loop == [False, False]  # two checks ran, each in a worker thread


def test_subscribe_returns_once_the_server_listens(
    sqlite_archive: ll.Archive, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``subscribe()`` returns only when the server's poller has its baseline: what is
    recorded after it returns is heard. The poller's first catalog read is held back here; a
    server that said "subscribed" at once would let ``subscribe()`` return before it."""
    from labledger.server import streams

    la = sqlite_archive
    build(la, tmp_path / "daq", [1233])
    [key] = _reader(la)
    released, made = threading.Event(), threading.Event()

    class Held(streams.Watcher):
        def __init__(self, *args: Any, **kwargs: Any):
            released.wait(timeout=300)
            super().__init__(*args, **kwargs)
            made.set()

    monkeypatch.setattr(streams, "Watcher", Held)
    with serving(create_app(la)) as url:
        threading.Timer(0.5, released.set).start()
        events = ll.connect(url, api_key=key).subscribe(timeout=600)
        assert made.is_set()
        flag = la.flag(run=1233, subsystem="probe", severity="warning", reason="heard?")
        assert next(events)["id"] == flag.id
        events.close()  # type: ignore[attr-defined]


def test_a_stream_waiting_to_be_subscribed_keeps_beating(
    sqlite_archive: ll.Archive, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While the catalog does not answer the poller, a new stream sends heartbeats (so proxies
    keep it), and says it is subscribed only once it is."""
    from labledger.server import streams
    from labledger.wire import SUBSCRIBED

    la = sqlite_archive
    [key] = _reader(la)
    released = threading.Event()

    class Held(streams.Watcher):
        def __init__(self, *args: Any, **kwargs: Any):
            released.wait(timeout=300)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(streams, "Watcher", Held)
    monkeypatch.setattr(streams, "HEARTBEAT_S", 0.05)
    headers = {"Authorization": f"Bearer {key}"}
    with (
        serving(create_app(la)) as url,
        httpx.stream("GET", f"{url}/api/v1/notifications", headers=headers, timeout=60) as r,
    ):
        lines = (line for line in r.iter_lines() if line)
        assert next(lines) == ": still here"  # not subscribed yet, and not silent
        released.set()
        assert next(line for line in lines if line != ": still here") == SUBSCRIBED


def test_objects_of_a_run_not_in_the_catalog_are_served_to_no_one(
    sqlite_archive: ll.Archive,
) -> None:
    # what an ingest stopped after its objects were durable, before its catalog commit, leaves
    key = "runs/01a22c4a-d0e7-78d2-905a-9a3ad942109b/raw/0/shot.tdms"
    sqlite_archive.store.write(key, b"left over")
    with serving(create_app(sqlite_archive, public=True)) as url:
        answer = httpx.get(f"{url}/api/v1/store/{key}")  # anonymous: may read every project
    assert answer.status_code == 403 and "left over" not in answer.text
    assert "is not yours to read (or not served)" in answer.json()["detail"]
