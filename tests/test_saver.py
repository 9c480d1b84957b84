"""Live runs in the archive: recorded as they move, saved by the saver as ingest keeps files,
followed by name, complete only once every stream is sealed and durably stored; a saver that
stops at any moment resumes without gaps or duplicates. Real Redis (127.0.0.1:6379)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import redis

import labledger as ll
import labledger.acquire.segments as segments
from labledger.acquire import RunSaver
from labledger.acquire.following import _specs_of
from labledger.acquire.site import LiveSite
from labledger.errors import Busy, Conflict, InvalidArgument, NotFound
from labledger.live import (
    Acquisition,
    Block,
    ChannelSpec,
    Cursor,
    Follower,
    LiveUnavailable,
    Status,
    WriterConflict,
)
from labledger.live.trimming import discard
from labledger.sim.campaign import DESCRIPTION, STRUCTURE
from tests.conftest import free_port
from tests.test_live import client, ramp  # noqa: F401 - the Redis fixture, the samples' formula

GAIN = -0.02  # langmuir_i, volts at the port to amperes: recorded below, checked by hand


@pytest.fixture
def la(tmp_path: Path, client: redis.Redis) -> Iterator[ll.Archive]:  # noqa: F811
    """An archive with ISHTAR's description and two calibrations; its live prefix removed after."""
    archive = ll.init(tmp_path / "ishtar")
    archive.config.load(DESCRIPTION, reason="ISHTAR as commissioned")
    archive.calibrations.add("langmuir_i", gain=GAIN, unit="A", reason="bench")
    archive.calibrations.add(
        "probe_p", kind="expression", expression="Langmuir_I * Langmuir_V", unit="W", reason="p"
    )
    yield archive
    keys = list(client.scan_iter(match=f"{archive.live.prefix}:*", count=1000))
    if keys:
        client.delete(*keys)
    archive.close()


@pytest.fixture
def saver(la: ll.Archive) -> Iterator[Any]:
    """A saver serving the archive in a thread, writing a segment every 20 ms."""
    stop = threading.Event()
    serving = la.saver(flush_seconds=0.02)
    thread = threading.Thread(target=serving.serve, args=(stop,), kwargs={"poll": 0.05})
    thread.start()
    yield serving
    stop.set()
    thread.join()


def write_shot(la: ll.Archive, run: int, blocks: int = 12, n: int = 100) -> None:
    """A live shot of two streams: ai3 the ramp (float32, 10 kHz), ai4 pairs (int16, 1 kHz)."""
    with la.acquisition(run=run, structure="helicon-shot", metadata={"gas": "Ar"}) as acq:
        ai3 = acq.stream("PXI M6251/ai3", dtype="float32", rate=1e4)
        pair = acq.stream("PXI M6251/ai4", dtype="int16", rate=1e3, shape=(2,))
        acq.start()
        for k in range(blocks):
            acq.write({ai3: ramp(k * n, n, "float32"), pair: ramp(k * 10, 10, "int16", width=2)})


def test_a_live_run_is_saved_whole_closed_and_complete(la: ll.Archive, saver: Any) -> None:
    write_shot(la, 100)
    run = la.runs[100].wait("closed", timeout=30)
    assert (run.state, run.complete, run.reason) == ("closed", True, None)
    assert np.array_equal(run.channels["PXI M6251/ai3"][:], ramp(0, 1200, "float32"))
    assert np.array_equal(run.channels["PXI M6251/ai4"][:], ramp(0, 120, "int16", width=2))
    states = run.states()
    assert [s.state for s in states] == ["created", "prepared", "started", "stopped", "closed"]
    assert [s.at for s in states] == sorted(s.at for s in states)
    assert run.started == states[2].at and run.ended == states[-1].at
    assert run.config_version == 1 and run.metadata == {"gas": "Ar"}
    assert la.runs[-1] == run
    assert la.check().ok  # the manifest's sha256, the arrays' shapes
    # the raw blocks are kept: every segment matches its sha256 and together they hold each
    # block of each stream once, in order
    seen: dict[str, list[int]] = {"PXI M6251/ai3": [], "PXI M6251/ai4": []}
    assert run.sources[0].format == "live"
    specs = _specs_of(run)
    for key in segments.keys(la.store, run._row.store_prefix):
        for block in segments.read(la.store, key, specs).blocks:
            seen[block.channel].append(block.seq)
    assert seen == {"PXI M6251/ai3": list(range(12)), "PXI M6251/ai4": list(range(12))}


def test_saved_blocks_are_trimmed_from_redis(
    la: ll.Archive,
    saver: Any,
    client: redis.Redis,  # noqa: F811
) -> None:
    write_shot(la, 101)
    la.runs[101].wait("closed", timeout=30)
    keys = la.live.keys(101)
    for index in range(2):
        entries = client.xrange(keys.stream(index))
        assert [b"end" in fields for _, fields in entries] == [True]  # only the seal is left
    assert 0 < client.ttl(keys.info) <= 600  # kept a while for late followers, then gone


def test_a_live_run_is_visible_with_its_state_and_runs_minus_one_stays_closed(
    la: ll.Archive, saver: Any
) -> None:
    write_shot(la, 102, blocks=2)
    closed = la.runs[102].wait("closed", timeout=30)
    with la.acquisition(run=103, structure="helicon-shot") as acq:
        acq.stream("PXI M6251/ai3", dtype="float32", rate=1e4)
        acq.start()
        live = la.runs.live(timeout=10)
        assert (live.number, live.state, live.complete) == (103, "started", False)
        assert la.runs[-1] == closed
        assert [r.number for r in la.runs.search(state="started")] == [103]
    assert live.wait("closed", timeout=30).complete


def test_a_signal_is_followed_by_name_calibrated_as_it_arrives(la: ll.Archive, saver: Any) -> None:
    pieces: list[Any] = []
    ready = threading.Event()

    def follow() -> None:
        run = la.runs.live(timeout=30)
        ready.set()
        pieces.extend(run.follow("Langmuir_I"))

    reader = threading.Thread(target=follow)
    reader.start()
    write_shot(la, 104)
    reader.join(timeout=60)
    assert ready.is_set() and not reader.is_alive()
    values = np.concatenate([p.values for p in pieces])
    time = np.concatenate([p.time for p in pieces])
    assert np.allclose(values, ramp(0, 1200, "float32").astype(np.float64) * GAIN)
    assert np.allclose(time, np.arange(1200) / 1e4)
    assert {(p.unit, p.calibration, p.channel) for p in pieces} == {
        ("A", "langmuir_i@1", "PXI M6251/ai3")
    }
    # the same values run.signal gives once the run is saved (another path: stored arrays)
    saved = la.runs[104].wait("closed", timeout=30).signal("Langmuir_I")
    assert np.allclose(saved.values, values)
    # a cursor resumes after a piece, and a saved run is followed from the store
    rest = list(la.runs[104].follow("Langmuir_I", cursor=pieces[4].cursor))
    assert [p.seq for p in rest] == list(range(5, 12))
    assert np.allclose(np.concatenate([p.values for p in rest]), values[500:])


def test_a_saved_run_gone_from_redis_is_followed_from_the_store(
    la: ll.Archive,
    saver: Any,
    client: redis.Redis,  # noqa: F811
) -> None:
    write_shot(la, 105, blocks=5)
    run = la.runs[105].wait("closed", timeout=30)
    assert discard(client, la.live.keys(105)) > 0
    pieces = list(run.follow("PXI M6251/ai3"))
    assert [p.seq for p in pieces] == list(range(5))
    assert np.array_equal(np.concatenate([p.values for p in pieces]), ramp(0, 500, "float32"))


def test_a_follower_behind_the_trim_reads_the_rest_from_the_store(la: ll.Archive) -> None:
    with la.acquisition(run=106, structure="helicon-shot") as acq:
        ai3 = acq.stream("PXI M6251/ai3", dtype="float32", rate=1e4)
        acq.start()
        for k in range(6):
            ai3.write(ramp(k * 100, 100, "float32"))
        stop = threading.Event()
        saving = threading.Thread(
            target=RunSaver(la.catalog, la.store, la.live, 106, flush_seconds=0.0).save,
            args=(stop,),
        )
        saving.start()
        keys = la.live.keys(106)
        while int(la.live.client.hget(keys.meta(0), "trimmed") or -1) < 5:
            stop.wait(0.01)  # the saver has saved and trimmed all six
        pieces = []
        for piece in la.runs[106].follow("PXI M6251/ai3", calibration=None):
            pieces.append(piece)
            if len(pieces) == 6:
                ai3.write(ramp(600, 100, "float32"))  # and one more, from Redis
            if len(pieces) == 7:
                break
    saving.join(timeout=30)
    assert [p.seq for p in pieces] == list(range(7))
    assert np.array_equal(np.concatenate([p.values for p in pieces]), ramp(0, 700, "float32"))


class Killed(Exception):
    """A saver stopped between two steps, as kill -9 would stop it."""


def test_a_saver_stopped_at_any_step_resumes_without_gaps_or_duplicates(
    la: ll.Archive, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While the run is written, savers are stopped right after a segment is durable (its
    blocks not yet trimmed), right after its blocks are trimmed and stored, and in the middle
    of writing a segment; each time a new saver takes over. Every block is kept once."""
    acq = la.acquisition(run=107, structure="helicon-shot")
    ai3 = acq.stream("PXI M6251/ai3", dtype="float32", rate=1e4)
    acq.start()

    def write(first: int, last: int) -> None:
        for k in range(first, last):
            ai3.write(ramp(k * 100, 100, "float32"))

    def saver() -> RunSaver:
        return RunSaver(la.catalog, la.store, la.live, 107, flush_bytes=1200)

    def killed_after(real: Any) -> Any:
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            real(*args, **kwargs)
            raise Killed

        return wrapped

    write(0, 5)
    with monkeypatch.context() as patch:  # a segment durable, its blocks not trimmed
        patch.setattr(segments, "write", killed_after(segments.write))
        with pytest.raises(Killed):
            saver().save()
    write(5, 10)
    with monkeypatch.context() as patch:  # a segment's blocks trimmed and stored
        patch.setattr(RunSaver, "_keep", killed_after(RunSaver._keep))
        with pytest.raises(Killed):
            saver().save()
    write(10, 15)
    real_write = la.store.write

    def half(key: str, data: bytes) -> None:
        real_write(key, data[: len(data) // 2])
        raise Killed

    with monkeypatch.context() as patch:  # killed while writing a segment
        patch.setattr(la.store, "write", half)
        with pytest.raises(Killed):
            saver().save()
    write(15, 20)
    acq.close()
    saved = saver().save()
    assert saved is not None and saved.complete
    run = la.runs[107]
    assert (run.state, run.complete) == ("closed", True)
    assert np.array_equal(run.channels["PXI M6251/ai3"][:], ramp(0, 2000, "float32"))
    specs = {"PXI M6251/ai3": ai3.spec}
    kept = [
        block.seq
        for key in segments.keys(la.store, run._row.store_prefix)
        for block in segments.read(la.store, key, specs).blocks
    ]
    assert kept == list(range(20))  # each block once, in order


def test_an_aborted_run_is_saved_as_aborted_and_not_complete(la: ll.Archive, saver: Any) -> None:
    with pytest.raises(RuntimeError), la.acquisition(run=108, structure="s") as acq:
        ai3 = acq.stream("PXI M6251/ai3", dtype="float32", rate=1e4)
        acq.start()
        ai3.write(ramp(0, 100, "float32"))
        raise RuntimeError("the RF tripped")
    run = la.runs[108].wait("aborted", timeout=30)
    assert (run.state, run.complete, run.reason) == (
        "aborted",
        False,
        "RuntimeError: the RF tripped",
    )
    assert np.array_equal(run.channels["PXI M6251/ai3"][:], ramp(0, 100, "float32"))
    assert len(la.runs) == 0  # runs[-1] is the newest closed: there is none
    with pytest.raises(Conflict, match="run 108 ended aborted"):
        run.wait("closed", timeout=1)


def test_a_run_whose_writer_is_gone_is_saved_as_failed(la: ll.Archive, saver: Any) -> None:
    acq = la.acquisition(run=109, structure="s", lease=0.3)
    ai3 = acq.stream("PXI M6251/ai3", dtype="float32", rate=1e4)
    acq.start()
    ai3.write(ramp(0, 100, "float32"))
    acq._lease.stop()  # the DAQ process died: nobody renews its lease
    run = la.runs[109].wait("failed", timeout=60)
    assert run.complete is False and "lease" in (run.reason or "")
    assert np.array_equal(run.channels["PXI M6251/ai3"][:], ramp(0, 100, "float32"))


# -- bad input: one line, nothing written ----------------------------------------------------


def test_a_run_number_the_archive_has_is_refused_before_redis(
    la: ll.Archive,
    saver: Any,
    client: redis.Redis,  # noqa: F811
) -> None:
    write_shot(la, 110, blocks=1)
    la.runs[110].wait("closed", timeout=30)
    before = client.hgetall(la.live.keys(110).info)
    with pytest.raises(Conflict, match="run 110 is already in the archive") as caught:
        la.acquisition(run=110, structure="helicon-shot")
    assert "\n" not in str(caught.value)
    assert client.hgetall(la.live.keys(110).info) == before


def test_a_second_writer_of_a_live_run_is_refused(la: ll.Archive) -> None:
    with la.acquisition(run=111, structure="s") as acq:
        acq.stream("a", dtype="float32", rate=1.0)
        with pytest.raises(WriterConflict, match="a run has one writer"):
            la.acquisition(run=111, structure="s")  # in Redis only, so far
        acq.start()
        with pytest.raises(WriterConflict, match="run 111 is live .started.: a run has one"):
            la.acquisition(run=111, structure="s")  # in the catalog too
    assert la.runs[111].state == "stopped"  # no saver: how it ended is recorded with its data


def test_the_saver_refuses_a_live_run_whose_number_is_another_runs(
    la: ll.Archive,
    saver: Any,
    client: redis.Redis,  # noqa: F811
) -> None:
    write_shot(la, 112, blocks=1)
    first = la.runs[112].wait("closed", timeout=30)
    discard(client, la.live.keys(112))
    with Acquisition(client, run=112, structure="s", prefix=la.live.prefix) as acq:  # no archive
        acq.stream("a", dtype="float32", rate=1.0)
        acq.start()
    with pytest.raises(Conflict, match="another run of that number"):
        RunSaver(la.catalog, la.store, la.live, 112).save()
    assert la.runs[112] == first and la.runs[112].complete
    assert [s.state for s in first.states()][-1] == "closed"


def test_waiting_and_following_refuse_what_cannot_be(la: ll.Archive, saver: Any) -> None:
    write_shot(la, 113, blocks=1)
    run = la.runs[113].wait("closed", timeout=30)
    with pytest.raises(InvalidArgument, match="a run is one of"):
        run.wait("done")
    with pytest.raises(NotFound, match="no signal or stream 'Nope'"):
        next(run.follow("Nope"))
    with pytest.raises(InvalidArgument, match="computed from other signals"):
        next(run.follow("Probe_P"))
    with pytest.raises(NotFound, match="no run is live"):
        la.runs.live(timeout=0)
    with la.acquisition(run=114, structure="s") as acq:
        acq.stream("PXI M6251/ai3", dtype="float32", rate=1.0)
        acq.start()
        live = la.runs.live(timeout=10)
        with pytest.raises(TimeoutError, match="run 114 is still started after 0.1 s"):
            live.wait("closed", timeout=0.1)
        with pytest.raises(InvalidArgument, match="not one of Langmuir_I"):
            next(live.follow("Langmuir_I", cursor=Cursor(114, {"PXI M6251/ai4": 0})))


def test_redis_not_answering_is_an_error_the_daq_can_act_on(tmp_path: Path) -> None:
    archive = ll.init(tmp_path / "a")
    archive._live_config = {"redis": f"redis://127.0.0.1:{free_port()}/0"}
    with pytest.raises(LiveUnavailable, match="is not answering"):
        archive.acquisition(run=1, structure="s")
    assert archive.catalog.by_number(1) is None


def test_the_site_prefix_is_the_archives_own_and_kept(la: ll.Archive, tmp_path: Path) -> None:
    other = ll.init(tmp_path / "other")
    assert other.live.prefix != la.live.prefix
    again = ll.open(la.path)  # type: ignore[arg-type]
    assert again.live.prefix == la.live.prefix
    assert isinstance(again.live, LiveSite)


def test_follow_tells_not_yet_from_ended(la: ll.Archive) -> None:
    """A follower of the archive's run sees nothing yet, then a block, then the end."""
    with la.acquisition(run=115, structure="s") as acq:
        ai3 = acq.stream("PXI M6251/ai3", dtype="float32", rate=1e4)
        acq.start()
        follower = Follower(la.live.client, 115, prefix=la.live.prefix)
        assert follower.read(timeout=0.01) == [] and follower.status is Status.NOT_YET
        ai3.write(ramp(0, 10, "float32"))
    assert [b.seq for b in follower.read()] == [0]
    assert follower.read() == [] and follower.status is Status.ENDED


def test_check_finds_a_damaged_segment_of_a_live_run(la: ll.Archive, saver: Any) -> None:
    write_shot(la, 116, blocks=3)
    run = la.runs[116].wait("closed", timeout=30)
    assert la.check().ok
    key = segments.keys(la.store, run._row.store_prefix)[0]
    path = la.store.local_path(key)
    assert path is not None
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF  # one bit of a raw block flipped on disk
    path.write_bytes(bytes(data))
    report = la.check()
    assert [(p.run, p.what, p.file) for p in report.problems] == [(116, "raw file", "live.json")]
    assert "segment" in report.problems[0].message() and "changed" in report.problems[0].message()


def test_a_live_runs_arrays_are_read_once_it_has_ended(la: ll.Archive, saver: Any) -> None:
    with la.acquisition(run=117, structure="s") as acq:
        ai3 = acq.stream("PXI M6251/ai3", dtype="float32", rate=1e4)
        acq.start()
        ai3.write(ramp(0, 100, "float32"))
        live = la.runs.live(timeout=10)
        with pytest.raises(NotFound, match=r"run 117 is started: its arrays are stored once"):
            live.channels["PXI M6251/ai3"]
        assert live.machine.langmuir_probe is not None  # the testbed as prepared
    live.wait("closed", timeout=30)
    assert np.array_equal(live.channels["PXI M6251/ai3"][:], ramp(0, 100, "float32"))
    assert np.allclose(live.signal("Langmuir_I").values, ramp(0, 100, "float32") * GAIN)


def test_one_saver_a_run(la: ll.Archive) -> None:
    """A second saver of a run being saved (two `labledger saver` by mistake) leaves it alone:
    both would write segments of the same numbers."""
    acq = la.acquisition(run=118, structure="s")
    ai3 = acq.stream("PXI M6251/ai3", dtype="float32", rate=1e4)
    acq.start()
    ai3.write(ramp(0, 100, "float32"))
    first = RunSaver(la.catalog, la.store, la.live, 118)
    stop = threading.Event()
    saving = threading.Thread(target=first.save, args=(stop,))
    saving.start()
    keys = la.live.keys(118)
    while int(la.live.client.hget(keys.meta(0), "trimmed") or -1) < 0:
        stop.wait(0.01)  # the first saver holds the run: it has saved a block
    refused: list[Exception] = []
    second_stop = threading.Event()

    def second() -> None:
        try:
            RunSaver(la.catalog, la.store, la.live, 118).save(second_stop)
        except Busy as exc:
            refused.append(exc)

    trying = threading.Thread(target=second)
    trying.start()
    trying.join(timeout=20)  # refused at once; were it not, it would save until stopped
    second_stop.set()
    trying.join()
    assert [str(e) for e in refused] == [
        "run 118 is being saved by another saver; it is left to that one"
    ]
    stop.set()
    saving.join()
    acq.close()
    saved = RunSaver(la.catalog, la.store, la.live, 118).save()  # the hold was given back
    assert saved is not None and saved.complete


# -- a structure the archive has -------------------------------------------------------------


def test_a_structure_checks_the_metadata_before_anything_is_written(
    la: ll.Archive,
    client: redis.Redis,  # noqa: F811
) -> None:
    la.structures.add(STRUCTURE, reason="the shots of ISHTAR")
    with pytest.raises(InvalidArgument, match="gas") as caught:
        la.acquisition(run=120, structure="helicon-shot", metadata={"gas": "Xe"})
    assert "\n" not in str(caught.value)
    with pytest.raises(InvalidArgument, match="does not say it is always saved"):
        la.acquisition(run=120, structure="helicon-shot", metadata={"gas": "Ar"}, waive={"X": "y"})
    with pytest.raises(InvalidArgument, match="waiver of Pressure"):
        la.acquisition(
            run=120, structure="helicon-shot", metadata={"gas": "Ar"}, waive={"Pressure": " "}
        )
    with pytest.raises(InvalidArgument, match="no structure 'other'"):
        la.acquisition(run=120, structure="other", waive={"Pressure": "gauge out"})
    assert list(client.scan_iter(match=f"{la.live.prefix}:*")) == []
    assert la.catalog.by_number(120) is None


def shot_with(la: ll.Archive, run: int, ports: list[str], **options: Any) -> None:
    with la.acquisition(
        run=run, structure="helicon-shot", metadata={"gas": "Ar"}, **options
    ) as acq:
        streams = [acq.stream(p, dtype="float32", rate=1e3) for p in ports]
        acq.start()
        acq.write({s: ramp(0, 10, "float32") for s in streams})


COIL_I, PRESSURE, GAS_FLOW = "PXI M6251/ai2", "PXI M6251/ai6", "PXI 6133/ai6"  # ishtar.yaml


def test_a_run_lacking_an_always_saved_channel_closes_incomplete(
    la: ll.Archive, saver: Any
) -> None:
    la.structures.add(STRUCTURE, reason="the shots of ISHTAR")
    with pytest.warns(ll.errors.DataWarning, match="incomplete: missing Pressure, Gas_flow"):
        shot_with(la, 121, [COIL_I, "PXI M6251/ai3"])
    run = la.runs[121].wait("closed", timeout=30)
    assert (run.complete, run.reason) == (False, "incomplete: missing Pressure, Gas_flow")
    assert [s.reason for s in run.states()][-1] == "incomplete: missing Pressure, Gas_flow"
    shot_with(la, 122, [COIL_I, PRESSURE, GAS_FLOW])
    whole = la.runs[122].wait("closed", timeout=30)
    assert (whole.complete, whole.reason, whole._row.structure) == (True, None, "helicon-shot")
    # the run's tree follows the structure: campaign > shot > acquisition > the DAQ's cards
    tree = whole.tree().to_dict()
    shot = tree["children"][0]["children"][0]
    assert (shot["name"], shot["attrs"]) == ("shot", {"gas": "Ar"})
    cards = [c["name"] for c in shot["children"][0]["children"]]
    assert cards == ["PXI M6251", "PXI 6133"]


def test_a_waived_channel_is_recorded_and_the_run_is_complete(la: ll.Archive, saver: Any) -> None:
    la.structures.add(STRUCTURE, reason="the shots of ISHTAR")
    shot_with(la, 123, [COIL_I, GAS_FLOW], waive={"Pressure": "gauge sent for repair"})
    run = la.runs[123].wait("closed", timeout=30)
    assert (run.complete, run.reason) == (True, None)
    assert run.metadata["labledger:waived"] == {"Pressure": "gauge sent for repair"}


def test_a_segment_number_is_written_once(la: ll.Archive) -> None:
    """A saver that lost its run to another (its hold lapsed) cannot write a segment the other
    wrote: the blocks would be kept twice."""
    spec = ChannelSpec("ai3", index=0, dtype="float32", rate=1e3)
    first = Block("ai3", 0, 0, ramp(0, 10, "float32"), 0.0)
    segments.write(la.store, "runs/x", 0, [first], {"ai3": 1})
    again = Block("ai3", 0, 0, ramp(0, 10, "float32"), 1.0)  # other bytes: another name
    with pytest.raises(Conflict, match="segment 0 is written already"):
        segments.write(la.store, "runs/x", 0, [again], {"ai3": 1})
    assert [
        s.blocks[0].written
        for s in [
            segments.read(la.store, k, {"ai3": spec}) for k in segments.keys(la.store, "runs/x")
        ]
    ] == [0.0]


def test_a_stopped_saver_does_not_wait_for_a_run_to_close(la: ll.Archive) -> None:
    """Streams sealed, the writer not yet closing: stopping the saver returns at once."""
    acq = la.acquisition(run=119, structure="s")
    ai3 = acq.stream("PXI M6251/ai3", dtype="float32", rate=1e4)
    acq.start()
    ai3.write(ramp(0, 10, "float32"))
    acq.stop()  # sealed; closed later
    stop = threading.Event()
    result: list[Any] = []
    saving = threading.Thread(
        target=lambda: result.append(RunSaver(la.catalog, la.store, la.live, 119).save(stop))
    )
    saving.start()
    while not segments.keys(la.store, la.runs[119]._row.store_prefix):
        stop.wait(0.01)  # it has kept the blocks and waits for the run's last step
    stop.set()
    saving.join(timeout=20)
    assert not saving.is_alive() and result == [None]
    acq.close()
    saved = RunSaver(la.catalog, la.store, la.live, 119).save()
    assert saved is not None and saved.complete
    assert np.array_equal(la.runs[119].channels["PXI M6251/ai3"][:], ramp(0, 10, "float32"))
