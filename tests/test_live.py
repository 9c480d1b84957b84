"""Live acquisition on the real Redis of 127.0.0.1:6379 (issue 15): runs whose states go forward
only, channel streams of numbered blocks sealed at the end, followers that tell "not yet" from
"never", trimming, and every bad input refused with nothing written. Each test has its own key
prefix, so parallel workers never meet."""

from __future__ import annotations

import contextlib
import socket
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import redis

from labledger.errors import InvalidArgument, NotFound
from labledger.live import (
    Acquisition,
    Block,
    Cursor,
    Follower,
    LiveUnavailable,
    RunKeys,
    Seal,
    Sealed,
    State,
    StateConflict,
    Status,
    Trimmed,
    WriterConflict,
    abandon,
    connect,
    discard,
    follow,
    history,
    run_info,
    trim,
)
from labledger.live.states import RunState
from tests.conftest import free_port, unavailable

REDIS = ("127.0.0.1", 6379)


def _redis_answers() -> bool:
    try:
        with socket.create_connection(REDIS, timeout=2):
            return True
    except OSError:
        return False


@pytest.fixture
def client() -> Iterator[redis.Redis]:
    if not _redis_answers():
        unavailable("Redis is not answering on 127.0.0.1:6379")
    found = redis.Redis(host=REDIS[0], port=REDIS[1], socket_timeout=10)
    yield found
    found.close()


@pytest.fixture
def prefix(client: redis.Redis) -> Iterator[str]:
    """A key prefix of this test's own; its keys are removed after it."""
    mine = f"lltest:{uuid.uuid4().hex}"
    yield mine
    keys = list(client.scan_iter(match=f"{mine}:*", count=1000))
    if keys:
        client.delete(*keys)


def snapshot(client: redis.Redis, prefix: str) -> dict[bytes, Any]:
    """Every key under ``prefix`` and what it holds (not its time to live)."""
    held: dict[bytes, Any] = {}
    for key in sorted(client.scan_iter(match=f"{prefix}:*", count=1000)):
        kind = client.type(key)
        if kind == b"string":
            held[key] = client.get(key)
        elif kind == b"hash":
            held[key] = sorted(client.hgetall(key).items())
        elif kind == b"stream":
            held[key] = client.xrange(key)
        else:
            held[key] = kind
    return held


def refused(client: redis.Redis, prefix: str, kind: type[Exception], *fragments: str):  # type: ignore[no-untyped-def]
    """A context in which the call must raise ``kind`` in one line naming ``fragments``, with
    nothing under ``prefix`` changed."""

    class Refused:
        def __enter__(self) -> None:
            self.before = snapshot(client, prefix)
            self.raises = pytest.raises(kind)
            self.caught = self.raises.__enter__()

        def __exit__(self, *exc: Any) -> bool:
            handled = self.raises.__exit__(*exc)
            message = str(self.caught.value)
            assert "\n" not in message, message
            for fragment in fragments:
                assert fragment in message, message
            assert snapshot(client, prefix) == self.before
            return bool(handled)

    return Refused()


def ramp(start: int, n: int, dtype: str = "int16", width: int = 0) -> np.ndarray:
    """Samples start..start+n-1 (of ``width`` values each when width > 0)."""
    values = np.arange(start, start + n) % 30_000
    if width:
        values = np.stack([values * (k + 1) for k in range(width)], axis=1)
    return values.astype(dtype)


def test_a_run_is_followed_block_by_block_to_its_seal(client: redis.Redis, prefix: str) -> None:
    blocks_a = [ramp(i * 100, 100) for i in range(5)]
    blocks_b = [ramp(i * 10, 10, "float32", width=2) for i in range(3)]
    with Acquisition(
        client, run=1271, structure="helicon-shot", metadata={"gas": "Ar"}, prefix=prefix
    ) as acq:
        ai3 = acq.stream("PXI M6251/ai3", dtype="int16", rate=1e6)
        xy = acq.stream("stage/xy", dtype="float32", rate=1e3, shape=(2,))
        acq.start()
        for seq, block in enumerate(blocks_a):
            assert ai3.write(block) == seq
        for block in blocks_b:
            xy.write(block)
    got: dict[str, list[Block]] = {}
    follower = Follower(client, 1271, prefix=prefix)
    for block in follower:
        got.setdefault(block.channel, []).append(block)
    assert follower.seals == {
        "PXI M6251/ai3": Seal("sealed", blocks=5, samples=500),
        "stage/xy": Seal("sealed", blocks=3, samples=30),
    }
    assert [b.seq for b in got["PXI M6251/ai3"]] == [0, 1, 2, 3, 4]
    assert [b.first for b in got["PXI M6251/ai3"]] == [0, 100, 200, 300, 400]
    assert np.array_equal(np.concatenate([b.data for b in got["PXI M6251/ai3"]]), np.arange(500))
    assert got["PXI M6251/ai3"][0].data.dtype == np.int16
    xs = np.concatenate([b.data for b in got["stage/xy"]])
    assert xs.shape == (30, 2) and xs.dtype == np.float32
    assert np.array_equal(
        xs[:, 1], 2 * np.concatenate([np.arange(i * 10, i * 10 + 10) for i in range(3)])
    )
    info = run_info(client, RunKeys(prefix, 1271))
    assert (info.state, info.structure, info.metadata) == (
        State.CLOSED,
        "helicon-shot",
        {"gas": "Ar"},
    )
    assert list(info.channels) == ["PXI M6251/ai3", "stage/xy"]
    assert info.channels["stage/xy"].shape == (2,) and info.channels["stage/xy"].rate == 1e3
    assert not info.writer  # the lease is given back


def test_states_go_forward_each_timestamped_and_notified(client: redis.Redis, prefix: str) -> None:
    with Acquisition(client, run=5, structure="shot", prefix=prefix) as acq:
        acq.stream("ai0", dtype="int16", rate=10)
        acq.prepare()
        acq.start()
    steps = history(client, RunKeys(prefix, 5))
    assert [t.state for t in steps] == ["created", "prepared", "started", "stopped", "closed"]
    assert [t.at for t in steps] == sorted(t.at for t in steps)
    assert all(
        t.at.utcoffset() is not None and t.at.utcoffset().total_seconds() == 0 for t in steps
    )
    info = run_info(client, RunKeys(prefix, 5))
    assert [info.reached[t.state] for t in steps] == [t.at for t in steps]
    told = client.xrange(f"{prefix}:runs")
    assert [(f[b"run"], f[b"state"]) for _, f in told] == [
        (b"5", s.encode()) for s in ("created", "prepared", "started", "stopped", "closed")
    ]


def test_each_state_change_is_published(client: redis.Redis, prefix: str) -> None:
    listener = client.pubsub()
    listener.subscribe(f"{prefix}:runs")
    assert listener.get_message(timeout=5)["type"] == "subscribe"  # type: ignore[index]
    acq = Acquisition(client, run=6, structure="shot", prefix=prefix)
    acq.close()  # never started: aborted
    heard = [listener.get_message(timeout=5) for _ in range(2)]
    listener.close()
    assert [m["data"] for m in heard if m] == [b"6 created", b"6 aborted"]
    assert history(client, RunKeys(prefix, 6))[-1].reason == "closed before it started"


def test_an_exception_aborts_the_run_and_seals_its_streams(
    client: redis.Redis, prefix: str
) -> None:
    with (
        pytest.raises(RuntimeError, match="digitizer lost"),
        Acquisition(client, run=9, structure="shot", prefix=prefix) as acq,
    ):
        ai = acq.stream("ai0", dtype="int16", rate=10)
        acq.start()
        ai.write(ramp(0, 4))
        raise RuntimeError("digitizer lost")
    info = run_info(client, RunKeys(prefix, 9))
    assert info.state is State.ABORTED
    assert info.reason == "RuntimeError: digitizer lost"
    follower = Follower(client, 9, prefix=prefix)
    assert [b.seq for b in follower] == [0]
    assert follower.seals["ai0"].end == "aborted" and follower.seals["ai0"].blocks == 1
    assert follower.state is State.ABORTED and follower.reason == "RuntimeError: digitizer lost"


def test_fail_ends_a_run_as_failed_with_its_reason(client: redis.Redis, prefix: str) -> None:
    acq = Acquisition(client, run=10, structure="shot", prefix=prefix)
    acq.stream("ai0", dtype="int16", rate=10)
    acq.start()
    acq.fail("HV trip")
    assert history(client, RunKeys(prefix, 10))[-1].state is State.FAILED
    assert run_info(client, RunKeys(prefix, 10)).reason == "HV trip"


def test_a_reader_tells_not_yet_from_never(client: redis.Redis, prefix: str) -> None:
    acq = Acquisition(client, run=11, structure="shot", prefix=prefix)
    ai = acq.stream("ai0", dtype="int16", rate=10)
    acq.start()
    follower = Follower(client, 11, prefix=prefix)
    assert follower.read(timeout=0.01) == []
    assert follower.status is Status.NOT_YET and not follower.sealed
    ai.write(ramp(0, 3))
    assert [b.seq for b in follower.read(timeout=5)] == [0]
    assert follower.status is Status.DATA
    assert follower.read(timeout=0) == [] and follower.status is Status.NOT_YET
    acq.close()
    assert follower.read(timeout=5) == []
    assert follower.status is Status.ENDED and follower.sealed
    assert follower.seals["ai0"].end == "sealed" and follower.seals["ai0"].samples == 3
    assert (
        follower.read(timeout=60) == [] and follower.sealed
    )  # at once: there is nothing to wait for


def test_a_follower_waits_for_the_channels_of_a_run_not_yet_prepared(
    client: redis.Redis, prefix: str
) -> None:
    acq = Acquisition(client, run=12, structure="shot", prefix=prefix)
    follower = Follower(client, 12, prefix=prefix)
    assert follower.read(timeout=0.01) == [] and follower.status is Status.NOT_YET
    acq.stream("late", dtype="uint8", rate=1)
    acq.start()
    acq.streams["late"].write(np.array([7], dtype="uint8"))
    acq.close()
    assert [(b.channel, b.data.tolist()) for b in follower] == [("late", [7])]


def test_a_follower_resumes_from_its_cursor(client: redis.Redis, prefix: str) -> None:
    with Acquisition(client, run=13, structure="shot", prefix=prefix) as acq:
        a = acq.stream("a", dtype="int32", rate=10)
        acq.stream("b", dtype="int32", rate=10)
        acq.start()
        for i in range(4):
            acq.write({a: ramp(i * 2, 2, "int32"), "b": ramp(100 + i, 1, "int32")})
    first = Follower(client, 13, prefix=prefix, count=1)
    seen = first.read(timeout=5)  # one entry a stream: block 0 of each
    assert sorted((x.channel, x.seq) for x in seen) == [("a", 0), ("b", 0)]
    text = first.cursor.to_text()
    rest = list(Follower(client, 13, prefix=prefix, cursor=Cursor.from_text(text)))
    assert sorted((x.channel, x.seq) for x in rest) == [(c, s) for c in "ab" for s in (1, 2, 3)]
    values = np.concatenate(
        [x.data for x in sorted(seen + rest, key=lambda x: x.seq) if x.channel == "a"]
    )
    assert values.tolist() == list(range(8))
    only_b = list(Follower(client, 13, prefix=prefix, channels=["b"], cursor=Cursor(13, {"b": 2})))
    assert [(x.channel, x.seq, x.data.tolist()) for x in only_b] == [
        ("b", 2, [102]),
        ("b", 3, [103]),
    ]


def test_a_follower_in_another_thread_sees_every_block_once(
    client: redis.Redis, prefix: str
) -> None:
    acq = Acquisition(client, run=14, structure="shot", prefix=prefix)
    ai = acq.stream("ai0", dtype="float32", rate=1e4)
    acq.start()
    got: list[Block] = []
    reader = threading.Thread(target=lambda: got.extend(follow(client, 14, prefix=prefix)))
    reader.start()
    for i in range(50):
        ai.write(ramp(i * 20, 20, "float32"))
    acq.close()
    reader.join(60)
    assert [b.seq for b in got] == list(range(50))
    assert np.array_equal(np.concatenate([b.data for b in got]), np.arange(1000, dtype="float32"))


@pytest.mark.parametrize(
    ("block", "fragment"),
    [
        (np.arange(4, dtype="float64"), "declared int16, this block is float64"),
        (np.arange(4, dtype="int32"), "declared int16, this block is int32"),
        (np.zeros((4, 2), dtype="int16"), "shape (4, 2)"),
        (np.array(3, dtype="int16"), "shape ()"),
        ([1, 2, 3], "a block is a numpy array, not list"),
    ],
)
def test_a_block_of_the_wrong_kind_is_refused_and_nothing_written(
    client: redis.Redis, prefix: str, block: Any, fragment: str
) -> None:
    acq = Acquisition(client, run=20, structure="shot", prefix=prefix)
    ai = acq.stream("ai0", dtype="int16", rate=10)
    acq.stream("ai1", dtype="int16", rate=10)
    acq.start()
    ai.write(ramp(0, 2))
    with refused(client, prefix, InvalidArgument, "'ai0'", fragment):
        ai.write(block)
    with refused(client, prefix, InvalidArgument, fragment):
        acq.write({"ai1": ramp(0, 2), ai: block})  # the good one is not sent either
    with refused(client, prefix, InvalidArgument, "stream 'ai0' is given twice"):
        acq.write({"ai0": ramp(0, 2), ai: ramp(0, 2)})
    assert ai.blocks == 1 and acq.streams["ai1"].blocks == 0
    acq.close()


def test_a_sample_of_the_wrong_shape_is_refused(client: redis.Redis, prefix: str) -> None:
    acq = Acquisition(client, run=21, structure="shot", prefix=prefix)
    xy = acq.stream("xy", dtype="float32", rate=10, shape=(2,))
    acq.start()
    with refused(client, prefix, InvalidArgument, "shape (5, 3)", "(n, 2)"):
        xy.write(np.zeros((5, 3), dtype="float32"))
    with refused(client, prefix, InvalidArgument, "shape (5,)"):
        xy.write(np.zeros(5, dtype="float32"))


def test_a_write_after_the_seal_is_refused(client: redis.Redis, prefix: str) -> None:
    acq = Acquisition(client, run=22, structure="shot", prefix=prefix)
    ai = acq.stream("ai0", dtype="int16", rate=10)
    acq.stream("ai1", dtype="int16", rate=10)
    acq.start()
    ai.write(ramp(0, 2))
    with refused(client, prefix, InvalidArgument, "end='done'"):
        ai.seal("done")
    ai.seal()
    with refused(client, prefix, Sealed, "'ai0'", "sealed after 1 blocks"):
        ai.write(ramp(2, 2))
    ai.sealed = False  # as if this writer had not seen its seal: Redis refuses it too
    with refused(client, prefix, Sealed, "sealed"):
        ai.write(ramp(2, 2))
    ai.sealed = False
    with refused(client, prefix, Sealed, "'ai0'", "none of these 2 blocks was written"):
        acq.write({"ai1": ramp(0, 2), "ai0": ramp(2, 2)})  # all or none
    acq.close()
    with refused(client, prefix, StateConflict, "closed"):
        acq.streams["ai0"].sealed = False
        ai.write(ramp(2, 2))


def test_a_state_never_goes_back(client: redis.Redis, prefix: str) -> None:
    acq = Acquisition(client, run=23, structure="shot", prefix=prefix)
    acq.stream("ai0", dtype="int16", rate=10)
    acq.start()
    with refused(
        client, prefix, StateConflict, "run 23 is started", "prepared follows only created"
    ):
        acq.prepare()
    with refused(client, prefix, StateConflict, "run 23 is started"):
        acq.state_.move(State.CREATED)
    acq.close()
    for target in State:
        with refused(client, prefix, StateConflict, "run 23 is closed"):
            acq.state_.move(target)
    assert acq.state is State.CLOSED


def test_a_second_writer_on_a_run_is_refused(client: redis.Redis, prefix: str) -> None:
    first = Acquisition(client, run=24, structure="shot", prefix=prefix)
    with refused(client, prefix, WriterConflict, "run 24 is already live", "one writer"):
        Acquisition(client, run=24, structure="other", prefix=prefix)
    first.stream("ai0", dtype="int16", rate=10)
    first.start()
    with refused(client, prefix, WriterConflict, "state started"):
        Acquisition(client, run=24, structure="shot", prefix=prefix)
    intruder = RunState(client, RunKeys(prefix, 24))
    with refused(client, prefix, WriterConflict, "does not hold the run"):
        intruder.move(State.STOPPED)
    first.close()
    with refused(client, prefix, WriterConflict, "state closed"):
        Acquisition(client, run=24, structure="shot", prefix=prefix)


def test_a_writer_that_lost_its_lease_writes_nothing(client: redis.Redis, prefix: str) -> None:
    acq = Acquisition(client, run=25, structure="shot", prefix=prefix)
    ai = acq.stream("ai0", dtype="int16", rate=10)
    acq.start()
    client.delete(RunKeys(prefix, 25).lease)  # as when it expires
    with refused(client, prefix, WriterConflict, "does not hold the run"):
        ai.write(ramp(0, 2))
    with refused(client, prefix, WriterConflict, "does not hold the run"):
        acq.stop()


def test_a_stream_not_declared_before_start_is_refused(client: redis.Redis, prefix: str) -> None:
    acq = Acquisition(client, run=26, structure="shot", prefix=prefix)
    acq.stream("ai0", dtype="int16", rate=10)
    acq.start()
    with refused(client, prefix, StateConflict, "declare stream 'ai1' before acq.start()"):
        acq.stream("ai1", dtype="int16", rate=10)
    with refused(client, prefix, NotFound, "no stream 'ai9'", "it has: ai0"):
        acq.write({"ai9": ramp(0, 2)})
    assert list(run_info(client, RunKeys(prefix, 26)).channels) == ["ai0"]


@pytest.mark.parametrize(
    ("declaration", "fragment"),
    [
        ({"dtype": "nonsense"}, "is not a numpy dtype"),
        ({"dtype": "U8"}, "is not a number type"),
        ({"dtype": "int16", "rate": 0}, "is not a sampling rate"),
        ({"dtype": "int16", "rate": float("nan")}, "is not a sampling rate"),
        ({"dtype": "int16", "shape": (0,)}, "is not the shape of one sample"),
        ({"dtype": "int16", "shape": [2]}, "is not the shape of one sample"),
        ({"dtype": "int16", "name": "ai0"}, "already has a stream 'ai0'"),
        ({"dtype": "int16", "name": " "}, "a stream needs a name"),
    ],
)
def test_a_bad_declaration_is_refused(
    client: redis.Redis, prefix: str, declaration: dict[str, Any], fragment: str
) -> None:
    acq = Acquisition(client, run=27, structure="shot", prefix=prefix)
    acq.stream("ai0", dtype="int16", rate=10)
    options = {"name": "ai1", "rate": 10.0, **declaration}
    with refused(client, prefix, InvalidArgument, fragment):
        acq.stream(options.pop("name"), **options)


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        ({"run": -1}, "run=-1"),
        ({"run": True}, "run=True"),
        ({"structure": ""}, "structure=''"),
        ({"metadata": {"t": object()}}, "metadata must be JSON"),
        ({"lease": 0}, "lease=0"),
    ],
)
def test_a_bad_acquisition_is_refused_with_nothing_written(
    client: redis.Redis, prefix: str, options: dict[str, Any], fragment: str
) -> None:
    arguments = {"run": 28, "structure": "shot", "prefix": prefix, **options}
    with refused(client, prefix, InvalidArgument, fragment):
        Acquisition(client, **arguments)
    assert snapshot(client, prefix) == {}


def test_redis_not_answering_at_creation_is_an_error_to_act_on(prefix: str) -> None:
    dead = connect(f"redis://127.0.0.1:{free_port()}/0", timeout=2)
    with pytest.raises(LiveUnavailable) as caught:
        Acquisition(dead, run=29, structure="shot", prefix=prefix)
    message = str(caught.value)
    assert (
        "\n" not in message
        and "is not answering" in message
        and "run 29 was not created" in message
    )


class Proxy:
    """A TCP relay to Redis that can be cut (as a network or Redis going away) and restored."""

    def __init__(self) -> None:
        self.port = free_port()
        self.sockets: list[socket.socket] = []
        self._listen()

    def _listen(self) -> None:
        self.server = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._accept, args=(self.server,), daemon=True).start()

    def _accept(self, server: socket.socket) -> None:
        while True:
            try:
                near, _ = server.accept()
            except OSError:
                return
            far = socket.create_connection(REDIS)
            self.sockets += [near, far]
            for a, b in ((near, far), (far, near)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        for s in (source, sink):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        with contextlib.suppress(OSError):
            self.server.shutdown(socket.SHUT_RDWR)  # wakes the accept() of its thread
        self.server.close()
        for s in self.sockets:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()
        self.sockets = []

    def restore(self) -> None:
        self._listen()


def test_redis_going_away_loses_nothing_acknowledged(client: redis.Redis, prefix: str) -> None:
    """The writer and a follower reach Redis through a relay that is cut, then restored."""
    proxy = Proxy()
    through = connect(f"redis://127.0.0.1:{proxy.port}/0", timeout=3)
    try:
        acq = Acquisition(through, run=30, structure="shot", prefix=prefix)
        ai = acq.stream("ai0", dtype="int16", rate=10)
        acq.start()
        ai.write(ramp(0, 5))
        follower = Follower(through, 30, prefix=prefix)
        assert [b.seq for b in follower.read(timeout=5)] == [0]
        proxy.cut()
        with refused(
            client,
            prefix,
            LiveUnavailable,
            "is not answering",
            "block 1 of stream 'ai0' was not written",
            "write it again",
        ):
            ai.write(ramp(5, 5))
        with pytest.raises(LiveUnavailable, match="nothing was read; the cursor is unchanged"):
            follower.read(timeout=1)
        assert follower.cursor.positions == {"ai0": 1}
        proxy.restore()
        assert ai.write(ramp(5, 5)) == 1  # the same block again, now acknowledged
        acq.close()
        rest = list(follower)
    finally:
        proxy.cut()
        through.close()
    assert [b.seq for b in rest] == [1]
    got = list(follow(client, 30, prefix=prefix))
    assert [b.seq for b in got] == [0, 1]
    assert np.concatenate([b.data for b in got]).tolist() == list(range(10))


def test_a_block_that_arrived_but_whose_answer_was_lost_is_not_added_twice(
    client: redis.Redis, prefix: str
) -> None:
    acq = Acquisition(client, run=31, structure="shot", prefix=prefix)
    ai = acq.stream("ai0", dtype="int16", rate=10)
    acq.start()
    ai.write(ramp(0, 5))
    ai.blocks, ai.samples = 0, 0  # as if the answer to that write had been lost
    before = snapshot(client, prefix)
    assert ai.write(ramp(0, 5)) == 0  # written again: recognised
    assert snapshot(client, prefix) == before
    ai.blocks, ai.samples = 0, 0
    with refused(client, prefix, WriterConflict, "Redis expects block 1", "another writer"):
        ai.write(ramp(100, 5))  # other bytes under the same number: not this writer's
    acq.close()


class DictSaved:
    """What a saver would have stored: blocks by (run, channel, seq)."""

    def __init__(self) -> None:
        self.held: dict[tuple[int, str, int], Block] = {}

    def blocks(self, run: int, channel: str, start: int, stop: int) -> Iterator[Block]:
        for seq in range(start, stop):
            yield self.held[run, channel, seq]


def test_trimmed_blocks_are_read_from_the_store_or_said_to_be_there(
    client: redis.Redis, prefix: str
) -> None:
    keys = RunKeys(prefix, 32)
    acq = Acquisition(client, run=32, structure="shot", prefix=prefix)
    ai = acq.stream("ai0", dtype="int16", rate=10)
    acq.start()
    saved = DictSaved()
    for seq in range(10):
        ai.write(ramp(seq * 3, 3))
    for block in Follower(client, 32, prefix=prefix).read(timeout=5):  # the saver's reading
        saved.held[32, "ai0", block.seq] = block
    assert trim(client, keys, "ai0", 5) == 6
    assert client.xlen(keys.stream(0)) == 4  # Redis holds only what is not saved
    assert trim(client, keys, "ai0", 3) == 0  # trimmed before
    with refused(client, prefix, InvalidArgument, "has 10 blocks", "block 10 is not written yet"):
        trim(client, keys, "ai0", 10)
    with refused(client, prefix, NotFound, "no live stream 'ai7'"):
        trim(client, keys, "ai7", 1)
    bare = Follower(client, 32, prefix=prefix)
    with pytest.raises(Trimmed) as caught:
        bare.read(timeout=5)
    assert (caught.value.channel, caught.value.start, caught.value.stop) == ("ai0", 0, 6)
    assert "blocks 0 to 5 of stream 'ai0'" in str(caught.value)
    assert bare.cursor.positions == {"ai0": 0}  # nothing consumed
    behind = Follower(client, 32, prefix=prefix, saved=saved)
    acq.close()
    got = list(behind)
    assert [b.seq for b in got] == list(range(10))
    assert np.concatenate([b.data for b in got]).tolist() == list(range(30))
    skipped = list(
        Follower(client, 32, prefix=prefix, cursor=caught.value and Cursor(32, {"ai0": 6}))
    )
    assert [b.seq for b in skipped] == [6, 7, 8, 9]


def test_a_follower_sees_blocks_trimmed_while_the_writer_is_idle(
    client: redis.Redis, prefix: str
) -> None:
    keys = RunKeys(prefix, 33)
    acq = Acquisition(client, run=33, structure="shot", prefix=prefix)
    ai = acq.stream("ai0", dtype="int16", rate=10)
    acq.start()
    follower = Follower(client, 33, prefix=prefix, count=1)
    saved = DictSaved()
    for seq in range(3):
        ai.write(ramp(seq, 1))
    assert [b.seq for b in follower.read(timeout=5)] == [0]
    for seq, block in enumerate(Follower(client, 33, prefix=prefix).read(timeout=5)):
        saved.held[33, "ai0", seq] = block
    trim(client, keys, "ai0", 2)  # all written: nothing after them in Redis to show the gap
    with pytest.raises(Trimmed):
        follower.read(timeout=0)
    follower.saved = saved
    assert [b.seq for b in follower.read(timeout=0)] == [1, 2]
    acq.close()


def test_a_follower_of_an_unknown_run_or_channel_is_told(client: redis.Redis, prefix: str) -> None:
    with pytest.raises(NotFound, match="run 404 is not live in Redis"):
        Follower(client, 404, prefix=prefix)
    with Acquisition(client, run=34, structure="shot", prefix=prefix) as acq:
        acq.stream("ai0", dtype="int16", rate=10)
        acq.start()
    with pytest.raises(NotFound, match="run 34 has no stream 'nope'; it has: ai0"):
        Follower(client, 34, prefix=prefix, channels=["nope"])
    with pytest.raises(InvalidArgument, match="this cursor is in run 1, not run 34"):
        Follower(client, 34, prefix=prefix, cursor=Cursor(1, {}))
    with pytest.raises(InvalidArgument, match="is not a cursor"):
        Cursor.from_text('{"run": "x"}')
    with pytest.raises(InvalidArgument, match="block number, 0 or more: not -1 for 'ai0'"):
        Cursor(34, {"ai0": -1})
    with pytest.raises(InvalidArgument, match="name at least one channel"):
        Follower(client, 34, prefix=prefix, channels=[])
    with pytest.raises(InvalidArgument, match="count=0"):
        Follower(client, 34, prefix=prefix, count=0)


def test_discard_removes_an_ended_run_only(client: redis.Redis, prefix: str) -> None:
    acq = Acquisition(client, run=35, structure="shot", prefix=prefix)
    acq.stream("ai0", dtype="int16", rate=10)
    acq.start()
    with refused(client, prefix, InvalidArgument, "run 35 is started"):
        discard(client, RunKeys(prefix, 35))
    acq.close()
    assert discard(client, RunKeys(prefix, 35)) == 5
    assert [k for k in snapshot(client, prefix) if b":run:35" in k] == []


def test_a_run_whose_writer_is_gone_ends_for_its_followers_and_can_be_marked_failed(
    client: redis.Redis, prefix: str
) -> None:
    keys = RunKeys(prefix, 36)
    acq = Acquisition(client, run=36, structure="shot", prefix=prefix)
    ai = acq.stream("ai0", dtype="int16", rate=10)
    acq.start()
    ai.write(ramp(0, 2))
    follower = Follower(client, 36, prefix=prefix)
    with refused(client, prefix, WriterConflict, "run 36 has a writer", "wait for its lease"):
        abandon(client, keys, "DAQ crashed")
    acq._lease.stop()
    client.delete(keys.lease)  # the writer's process died: its lease expired
    assert [b.seq for b in follower.read(timeout=5)] == [0]
    assert follower.read(timeout=5) == []
    assert follower.status is Status.ENDED
    assert follower.seals == {"ai0": Seal("abandoned", blocks=1, samples=-1)}
    assert abandon(client, keys, "DAQ crashed") is State.STARTED
    info = run_info(client, keys)
    assert (info.state, info.reason) == (State.FAILED, "DAQ crashed")
    assert list(Follower(client, 36, prefix=prefix).seals.values()) == []
    late = Follower(client, 36, prefix=prefix)
    assert [b.seq for b in late] == [0]
    assert late.seals == {"ai0": Seal("failed", blocks=1, samples=2)}
    with refused(client, prefix, StateConflict, "run 36 has ended (failed)"):
        abandon(client, keys, "again")
    with refused(client, prefix, InvalidArgument, "say why"):
        abandon(client, RunKeys(prefix, 37), " ")


def test_a_close_redis_does_not_answer_leaves_the_run_to_its_lease(
    client: redis.Redis, prefix: str
) -> None:
    proxy = Proxy()
    through = connect(f"redis://127.0.0.1:{proxy.port}/0", timeout=3)
    try:
        with pytest.raises(LiveUnavailable, match="was not sealed"):  # noqa: SIM117
            with Acquisition(through, run=38, structure="shot", prefix=prefix) as acq:
                acq.stream("ai0", dtype="int16", rate=10)
                acq.start()
                proxy.cut()
        assert not acq._lease._thread.is_alive()  # nothing renews it: it expires
        assert run_info(client, RunKeys(prefix, 38)).state is State.STARTED
    finally:
        proxy.cut()
        through.close()
