"""A live run through the server, over plain HTTP as a DAQ that is not Python writes it
(docs/server.md, "Live runs"): every bad input is refused with the archive's one line and its
HTTP status, and nothing is written, neither in Redis (every key under the archive's prefix)
nor in the catalog and store. Against the real Redis on 127.0.0.1:6379 and the real app."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import redis

import labledger as ll
from labledger.access import Access
from labledger.acquire import LiveSite
from labledger.errors import Conflict, DataWarning, InvalidArgument, NotFound
from labledger.live import Sealed, State, StateConflict, run_info
from labledger.server import Limits, create_app, serving
from labledger.sim import STRUCTURE
from tests.conftest import free_port, snapshot, unavailable
from tests.test_live import REDIS, Proxy, _redis_answers
from tests.test_live import snapshot as redis_snapshot

API = "/api/v1"


@dataclass
class Served:
    la: ll.Archive
    url: str
    writer: httpx.Client  # ana: a writer of project default
    reader: httpx.Client  # rita: a reader only
    redis: redis.Redis

    def state(self) -> tuple[dict[str, str], dict[bytes, Any]]:
        """Everything the archive holds, and every Redis key under its prefix."""
        return snapshot(self.la), redis_snapshot(self.redis, self.la.live.prefix)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    if not _redis_answers():
        unavailable("Redis is not answering on 127.0.0.1:6379")
    with ll.init(tmp_path / "archive") as la:
        access = Access(la.catalog)
        access.add_user("ana", project="default", role="writer", by="tests")
        access.add_user("rita", project="default", role="reader", by="tests")
        ana = access.create_key("ana", scopes=["read", "write"])
        rita = access.create_key("rita", scopes=["read"])
        client = redis.Redis(host=REDIS[0], port=REDIS[1], socket_timeout=10)
        assert la.live.prefix  # made and kept in the catalog's settings once, now
        with serving(create_app(la)) as url:
            clients = [
                httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=30)
                for key in (ana, rita)
            ]
            try:
                yield Served(la, url, clients[0], clients[1], client)
            finally:
                for c in clients:
                    c.close()
        keys = list(client.scan_iter(match=f"{la.live.prefix}:*", count=1000))
        if keys:
            client.delete(*keys)
        client.close()


def refused(
    served: Served, response_of: Any, status: int, error: str, *fragments: str
) -> dict[str, Any]:
    """The request ``response_of()`` makes is refused with ``status``, the error named
    ``error`` and one line holding ``fragments``; nothing written anywhere."""
    before = served.state()
    response = response_of()
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"] == error, body
    assert "\n" not in body["detail"]
    for fragment in fragments:
        assert fragment in body["detail"], body["detail"]
    assert served.state() == before
    return body


def create(served: Served, run: int = 1271, **extra: Any) -> str:
    """A live run made over HTTP; its writer token."""
    body = {"run": run, "structure": "helicon-shot", "metadata": {"gas": "Ar"}, **extra}
    answer = served.writer.post(f"{API}/acquisitions", json=body)
    assert answer.status_code == 200, answer.text
    assert answer.json()["state"] == "created"
    return str(answer.json()["token"])


def post(served: Served, run: int, token: str, action: str, **kwargs: Any) -> httpx.Response:
    headers = {"X-Writer-Token": token, **kwargs.pop("headers", {})}
    return served.writer.post(f"{API}/acquisitions/{run}{action}", headers=headers, **kwargs)


def block(served: Served, run: int, token: str, stream: str, seq: int, data: bytes) -> Any:
    return post(
        served,
        run,
        token,
        "/blocks",
        params={"stream": stream, "seq": seq},
        content=data,
        headers={"Content-Type": "application/octet-stream"},
    )


def started(served: Served, run: int = 1271) -> str:
    token = create(served, run)
    declared = post(
        served, run, token, "/streams", json={"name": "ai3", "dtype": "int16", "rate": 1e4}
    )
    assert declared.status_code == 200, declared.text
    assert declared.json()["dtype"] == "<i2"
    assert post(served, run, token, "/start").json()["state"] == "started"
    return token


def ramp(start: int, n: int) -> bytes:
    return np.arange(start, start + n, dtype="<i2").tobytes()


# -- a DAQ that is not Python ----------------------------------------------------------------


def test_a_daq_writes_a_run_over_http_and_a_follower_reads_it_back(served: Served) -> None:
    """The DAQ's calls in order, as docs/server.md shows them with curl; then the blocks come
    back as server-sent events, the values as the DAQ wrote them (a stream has no
    calibration), each event's id its cursor."""
    token = started(served)
    for seq in range(3):
        answer = block(served, 1271, token, "ai3", seq, ramp(100 * seq, 100))
        assert answer.status_code == 200, answer.text
        assert answer.json()["blocks"] == [
            {
                "stream": "ai3",
                "seq": seq,
                "blocks": seq + 1,
                "samples": 100 * (seq + 1),
                "sealed": False,
            }
        ]
    said = post(served, 1271, token, "/close").json()
    assert said["state"] == "closed" and said["streams"]["ai3"]["sealed"] is True
    with served.reader.stream("GET", f"{API}/runs/1271/follow/ai3") as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        events = _events(response.iter_lines())
    kinds = [kind for kind, _, _ in events]
    assert kinds == ["block", "block", "block", "end"]
    values = np.concatenate(
        [np.frombuffer(base64.b64decode(data["values"]), "<f8") for _, _, data in events[:3]]
    )
    assert values.tolist() == list(range(300))
    assert [data["first"] for _, _, data in events[:3]] == [0, 100, 200]
    assert [json.loads(ident)["positions"] for _, ident, _ in events[:3]] == [
        {"ai3": 1},
        {"ai3": 2},
        {"ai3": 3},
    ]
    # resumed after the first block, by Last-Event-ID as a browser's EventSource does
    headers = {"Last-Event-ID": events[0][1]}
    with served.reader.stream("GET", f"{API}/runs/1271/follow/ai3", headers=headers) as response:
        rest = _events(response.iter_lines())
    assert [data["seq"] for kind, _, data in rest if kind == "block"] == [1, 2]


def _events(lines: Iterator[str]) -> list[tuple[str, str, dict[str, Any]]]:
    found, kind, ident = [], "", ""
    for line in lines:
        if line.startswith("event: "):
            kind = line[7:]
        elif line.startswith("id: "):
            ident = line[4:]
        elif line.startswith("data: "):
            found.append((kind, ident, json.loads(line[6:])))
            kind, ident = "", ""
    return found


def test_a_block_sent_again_after_a_lost_answer_is_acknowledged_not_written_twice(
    served: Served,
) -> None:
    token = started(served)
    assert block(served, 1271, token, "ai3", 0, ramp(0, 5)).status_code == 200
    before = served.state()
    again = block(served, 1271, token, "ai3", 0, ramp(0, 5))
    assert again.status_code == 200 and again.json()["again"] is True
    assert again.json()["blocks"][0]["blocks"] == 1
    assert served.state() == before
    refused(
        served,
        lambda: block(served, 1271, token, "ai3", 0, ramp(7, 5)),
        409,
        "Conflict",
        "block 0 of stream 'ai3'",
        "with other bytes",
        "nothing was written",
    )


# -- bad input: one line, its status, nothing written -----------------------------------------


def test_a_block_of_the_wrong_size_is_refused(served: Served) -> None:
    token = started(served)
    refused(
        served,
        lambda: block(served, 1271, token, "ai3", 0, b"\x01\x02\x03"),
        400,
        "InvalidArgument",
        "'ai3'",
        "int16",
        "2 bytes each",
        "3 bytes",
    )
    refused(
        served, lambda: block(served, 1271, token, "ai3", 0, b""), 400, "InvalidArgument", "0 bytes"
    )


def test_a_block_of_a_stream_never_declared_is_not_found(served: Served) -> None:
    token = started(served)
    refused(
        served,
        lambda: block(served, 1271, token, "ai9", 0, ramp(0, 5)),
        404,
        "NotFound",
        "no stream 'ai9'",
        "it has: ai3",
    )


def test_a_block_ahead_of_its_number_is_refused(served: Served) -> None:
    token = started(served)
    refused(
        served,
        lambda: block(served, 1271, token, "ai3", 3, ramp(0, 5)),
        409,
        "Conflict",
        "expects block 0, not 3",
    )


def test_a_block_before_start_and_after_the_seal_is_refused(served: Served) -> None:
    token = create(served)
    post(served, 1271, token, "/streams", json={"name": "ai3", "dtype": "int16", "rate": 1e4})
    refused(
        served,
        lambda: block(served, 1271, token, "ai3", 0, ramp(0, 5)),
        409,
        "StateConflict",
        "run 1271 is created",
    )
    post(served, 1271, token, "/start")
    assert block(served, 1271, token, "ai3", 0, ramp(0, 5)).status_code == 200
    assert post(served, 1271, token, "/stop").json()["state"] == "stopped"
    refused(
        served,
        lambda: block(served, 1271, token, "ai3", 1, ramp(5, 5)),
        409,
        "Sealed",
        "'ai3'",
        "sealed",
    )


def test_a_state_going_backwards_is_refused(served: Served) -> None:
    token = started(served)
    refused(
        served,
        lambda: post(served, 1271, token, "/prepare"),
        409,
        "StateConflict",
        "run 1271 is started",
    )
    refused(
        served,
        lambda: post(
            served, 1271, token, "/streams", json={"name": "ai4", "dtype": "int16", "rate": 10}
        ),
        409,
        "StateConflict",
        "declare stream 'ai4' before acq.start()",
    )
    post(served, 1271, token, "/close")
    refused(served, lambda: post(served, 1271, token, "/start"), 409, "StateConflict", "closed")


def test_a_second_writer_on_a_run_is_refused(served: Served) -> None:
    create(served)
    body = {"run": 1271, "structure": "helicon-shot"}
    refused(
        served,
        lambda: served.writer.post(f"{API}/acquisitions", json=body),
        409,
        "WriterConflict",
        "1271",
    )


def test_a_token_writes_its_own_run_only(served: Served) -> None:
    started(served, 1271)
    other = started(served, 1272)
    refused(
        served,
        lambda: block(served, 1271, other, "ai3", 0, ramp(0, 5)),
        403,
        "Forbidden",
        "X-Writer-Token",
        "run 1271",
    )
    refused(
        served,
        lambda: served.writer.post(f"{API}/acquisitions/1271/close"),
        403,
        "Forbidden",
        "X-Writer-Token",
    )
    refused(
        served,
        lambda: block(served, 1273, other, "ai3", 0, ramp(0, 5)),
        404,
        "NotFound",
        "no acquisition of run 1273",
    )


def test_a_reader_may_not_write_a_live_run(served: Served) -> None:
    refused(
        served,
        lambda: served.reader.post(
            f"{API}/acquisitions", json={"run": 1271, "structure": "helicon-shot"}
        ),
        403,
        "Forbidden",
        "rita",
        "'default'",
    )


@pytest.mark.parametrize(
    ("body", "fragments"),
    [
        ({"run": -1, "structure": "s"}, ["run=-1"]),
        ({"run": "1271", "structure": "s"}, ["run='1271'"]),
        ({"run": 1271}, ["structure=None"]),
        ({"run": 1271, "structure": "s", "metadata": [1, 2]}, ["metadata=", "JSON object"]),
        ({"run": 1271, "structure": "s", "lease": 0}, ["lease=0"]),
        ({"run": 1271, "structure": "s", "colour": "red"}, ["unknown field 'colour'"]),
        ({"run": 10**30, "structure": "s"}, ["run numbers go up to"]),
        ({"run": 1271, "structure": "s\x00"}, ["a NUL character"]),
        ({"run": 1271, "structure": "s", "metadata": {"gas": "A\x00r"}}, ["a NUL character"]),
    ],
)
def test_a_bad_acquisition_is_refused(
    served: Served, body: dict[str, Any], fragments: list[str]
) -> None:
    refused(
        served,
        lambda: served.writer.post(f"{API}/acquisitions", json=body),
        400,
        "InvalidArgument",
        *fragments,
    )


@pytest.mark.parametrize(
    ("body", "fragments"),
    [
        ({"name": "ai3", "dtype": "int99", "rate": 10}, ["dtype='int99'"]),
        ({"name": "ai3", "dtype": "str", "rate": 10}, ["not a number type"]),
        ({"name": "ai3", "dtype": 16, "rate": 10}, ["dtype=16"]),
        ({"name": "ai3", "dtype": "int16", "rate": -1}, ["rate=-1"]),
        ({"name": "ai3", "dtype": "int16", "rate": 10, "shape": [0]}, ["shape=(0,)"]),
        ({"name": "ai3", "dtype": "int16", "rate": 10, "shape": 3}, ["shape=3"]),
        ({"name": "ai\x003", "dtype": "int16", "rate": 10}, ["a NUL character"]),
        ({"name": "", "dtype": "int16", "rate": 10}, ["a stream needs a name"]),
        ({"name": "ai3", "dtype": "int16", "rate": 10, "unit": "V"}, ["unknown field 'unit'"]),
    ],
)
def test_a_bad_stream_is_refused(
    served: Served, body: dict[str, Any], fragments: list[str]
) -> None:
    token = create(served)
    refused(
        served,
        lambda: post(served, 1271, token, "/streams", json=body),
        400,
        "InvalidArgument",
        *fragments,
    )


def test_redis_not_answering_is_503_and_nothing_is_written(served: Served) -> None:
    live = served.la.live
    served.la.__dict__["live"] = LiveSite(f"redis://127.0.0.1:{free_port()}/0", live.prefix)
    try:
        refused(
            served,
            lambda: served.writer.post(
                f"{API}/acquisitions", json={"run": 1271, "structure": "helicon-shot"}
            ),
            503,
            "LiveUnavailable",
            "is not answering",
        )
    finally:
        served.la.__dict__["live"] = live


def test_redis_going_away_mid_run_is_503_and_the_same_block_again_is_written(
    served: Served,
) -> None:
    proxy = Proxy()
    live = served.la.live
    served.la.__dict__["live"] = LiveSite(f"redis://127.0.0.1:{proxy.port}/0", live.prefix)
    try:
        token = started(served)
        assert block(served, 1271, token, "ai3", 0, ramp(0, 5)).status_code == 200
        proxy.cut()
        refused(
            served,
            lambda: block(served, 1271, token, "ai3", 1, ramp(5, 5)),
            503,
            "LiveUnavailable",
            "block 1 of stream 'ai3' was not written",
        )
        proxy.restore()
        again = block(served, 1271, token, "ai3", 1, ramp(5, 5))
        assert again.status_code == 200 and again.json()["again"] is False
        post(served, 1271, token, "/close")
    finally:
        proxy.cut()
        served.la.__dict__["live"] = live
    with served.reader.stream("GET", f"{API}/runs/1271/follow/ai3") as response:
        events = _events(response.iter_lines())
    values = [
        np.frombuffer(base64.b64decode(d["values"]), "<f8") for k, _, d in events if k == "block"
    ]
    assert np.concatenate(values).tolist() == list(range(10))


def test_a_follower_is_refused_in_one_line(served: Served) -> None:
    refused(
        served,
        lambda: served.reader.get(f"{API}/runs/1299/follow/ai3"),
        404,
        "NotFound",
        "run 1299",
    )
    token = started(served)
    refused(
        served,
        lambda: served.reader.get(f"{API}/runs/1271/follow/ai3", params={"cursor": "nonsense"}),
        400,
        "InvalidArgument",
        "is not a cursor",
    )
    other = json.dumps({"run": 7, "positions": {"ai3": 0}})
    refused(
        served,
        lambda: served.reader.get(f"{API}/runs/1271/follow/ai3", params={"cursor": other}),
        400,
        "InvalidArgument",
        "run 7, not run 1271",
    )
    post(served, 1271, token, "/close")
    # found once following has begun: the answer is 200, its one event the error
    with served.reader.stream("GET", f"{API}/runs/1271/follow/Nonsense_I") as response:
        events = _events(response.iter_lines())
    assert [(k, d["error"], d["status"]) for k, _, d in events] == [("error", "NotFound", 404)]
    assert "Nonsense_I" in events[0][2]["detail"]


# -- the Python DAQ through a server raises the live layer's own errors -------------------------


def test_the_python_client_raises_the_same_errors(served: Served, tmp_path: Path) -> None:
    key = served.writer.headers["Authorization"].removeprefix("Bearer ")
    remote = ll.connect(served.url, api_key=key)
    try:
        acq = remote.acquisition(run=1271, structure="helicon-shot")
        ai3 = acq.stream("ai3", dtype="int16", rate=1e4)
        with pytest.raises(InvalidArgument, match="declared int16, this block is float64"):
            ai3.write(np.zeros(4))
        with pytest.raises(StateConflict, match="run 1271 is created"):
            ai3.write(np.zeros(4, dtype="int16"))
        acq.start()
        assert ai3.write(np.zeros(4, dtype="int16")) == 0
        with pytest.raises(NotFound, match="no stream 'ai9'"):
            acq.write({"ai9": np.zeros(4, dtype="int16")})
        acq.stop()
        with pytest.raises(Sealed):
            acq.write({ai3: np.zeros(4, dtype="int16")})
        with pytest.raises(Conflict, match="WriterConflict|1271"):
            remote.acquisition(run=1271, structure="helicon-shot")
        acq.close()
        assert acq.state == "closed" and ai3.sealed and ai3.blocks == 1
    finally:
        remote.close()


def test_a_daq_gone_silent_has_its_run_ended_failed(served: Served) -> None:
    """Any call counts as the DAQ heard from; after ``live_idle_s`` of silence the server
    ends the run failed, saying why, and forgets it (its token writes nothing more)."""
    with serving(create_app(served.la, limits=Limits(live_idle_s=0.3))) as url:
        writer = httpx.Client(base_url=url, headers=dict(served.writer.headers), timeout=30)
        try:
            answer = writer.post(f"{API}/acquisitions", json={"run": 1274, "structure": "shot"})
            token = answer.json()["token"]
            keys = served.la.live.keys(1274)
            deadline = time.monotonic() + 30
            while run_info(served.redis, keys).state is not State.FAILED:
                assert time.monotonic() < deadline, "the silent DAQ's run was not ended"
                time.sleep(0.05)
            assert "its DAQ posted nothing for 0.3 s" in (run_info(served.redis, keys).reason or "")
            while True:  # forgotten once ended
                gone = writer.post(
                    f"{API}/acquisitions/1274/start", headers={"X-Writer-Token": token}
                )
                if gone.status_code == 404:
                    break
                assert time.monotonic() < deadline, gone.text
                time.sleep(0.05)
            assert "no acquisition of run 1274" in gone.json()["detail"]
        finally:
            writer.close()


def test_blocks_over_the_limit_are_refused_before_they_are_read(served: Served) -> None:
    with serving(create_app(served.la, limits=Limits(max_block_bytes=1000))) as url:
        writer = httpx.Client(base_url=url, headers=dict(served.writer.headers), timeout=30)
        try:
            token = writer.post(
                f"{API}/acquisitions", json={"run": 1275, "structure": "shot"}
            ).json()["token"]
            headers = {"X-Writer-Token": token}
            declared = {"name": "ai3", "dtype": "int16", "rate": 1e4}
            writer.post(f"{API}/acquisitions/1275/streams", json=declared, headers=headers)
            writer.post(f"{API}/acquisitions/1275/start", headers=headers)
            refused(
                served,
                lambda: writer.post(
                    f"{API}/acquisitions/1275/blocks",
                    params={"stream": "ai3", "seq": 0},
                    content=ramp(0, 501),
                    headers=headers,
                ),
                413,
                "TooLarge",
                "blocks",
                "at most 1000 bytes",
            )
            ok = writer.post(
                f"{API}/acquisitions/1275/blocks",
                params={"stream": "ai3", "seq": 0},
                content=ramp(0, 500),
                headers=headers,
            )
            assert ok.status_code == 200, ok.text
            writer.post(f"{API}/acquisitions/1275/close", headers=headers)
        finally:
            writer.close()


def test_a_server_that_stops_ends_the_runs_it_writes(served: Served) -> None:
    with serving(create_app(served.la)) as url:
        writer = httpx.Client(base_url=url, headers=dict(served.writer.headers), timeout=30)
        try:
            writer.post(f"{API}/acquisitions", json={"run": 1276, "structure": "shot"})
        finally:
            writer.close()
    info = run_info(served.redis, served.la.live.keys(1276))
    assert (info.state, info.reason) == (State.FAILED, "the server writing it for its DAQ stopped")


def test_live_runs_are_seen_by_the_readers_of_their_project_only(served: Served) -> None:
    access = Access(served.la.catalog)
    access.add_user("bob", project="other", role="reader", by="tests")
    bob = httpx.Client(
        base_url=served.url,
        headers={"Authorization": f"Bearer {access.create_key('bob', scopes=['read'])}"},
        timeout=30,
    )
    try:
        token = started(served)
        assert block(served, 1271, token, "ai3", 0, ramp(0, 5)).status_code == 200
        run_id = served.la.runs[1271].id
        opened = served.reader.get(f"{API}/runs/open").json()
        assert [r["number"] for r in opened] == [1271]
        states = served.reader.get(f"{API}/runs/states", params={"runs": run_id}).json()
        assert [s["state"] for s in states[run_id]] == ["created", "prepared", "started"]
        assert bob.get(f"{API}/runs/open").json() == []
        assert bob.get(f"{API}/runs/states", params={"runs": run_id}).json() == {}
        follow = bob.get(f"{API}/runs/1271/follow/ai3")
        assert follow.status_code == 404 and "run 1271" in follow.json()["detail"]
        post(served, 1271, token, "/close")
    finally:
        bob.close()


def test_a_structure_and_its_waivers_through_a_server(served: Served) -> None:
    """The archive's structure checks a remote DAQ's metadata and waivers as a local one's,
    and the waiver is kept with the run."""
    served.la.structures.add(STRUCTURE, reason="the shots of ISHTAR")
    refused(
        served,
        lambda: served.writer.post(
            f"{API}/acquisitions",
            json={"run": 7, "structure": "helicon-shot", "metadata": {"gas": "Xe"}},
        ),
        400,
        "InvalidArgument",
        "gas",
    )
    refused(
        served,
        lambda: served.writer.post(
            f"{API}/acquisitions",
            json={"run": 7, "structure": "helicon-shot", "metadata": {"gas": "Ar"}, "waive": 3},
        ),
        400,
        "InvalidArgument",
        "a JSON object of always-saved name -> reason",
    )
    key = served.writer.headers["Authorization"].removeprefix("Bearer ")
    remote = ll.connect(served.url, api_key=key)
    try:
        # no testbed description here: Coil_I cannot be resolved to a channel, so it is missing
        with (
            pytest.warns(DataWarning, match="missing Coil_I"),
            remote.acquisition(
                run=8,
                structure="helicon-shot",
                metadata={"gas": "Ar"},
                waive={"Pressure": "gauge out", "Gas_flow": "flow meter out"},
            ) as acq,
        ):
            coil = acq.stream("PXI M6251/ai2", dtype="float32", rate=1e3)
            acq.start()
            coil.write(np.ones(10, dtype="float32"))
    finally:
        remote.close()
    found = served.la.runs[8]
    assert found.metadata["labledger:waived"] == {
        "Pressure": "gauge out",
        "Gas_flow": "flow meter out",
    }
