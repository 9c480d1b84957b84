"""``labledger saver``, ``labledger follow`` and ``labledger demo --live``, end to end: the real
command in subprocesses, the real Redis on 127.0.0.1:6379 and a real archive (each archive has
its own key prefix, so parallel workers never meet). Waits are on conditions, never on time."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

import labledger as ll
import labledger.acquire.segments as segments
from labledger.sim import record_history
from labledger.sim.testbed import PRE_TRIGGER, SAMPLE_RATE, Shot, physical_signals, wiring
from tests.conftest import cli, free_port, unavailable
from tests.test_live import _redis_answers

LANGMUIR_GAIN = -0.01  # A per V: langmuir_i@2, the campaign's calibration from shot 1250


@pytest.fixture(autouse=True)
def _redis() -> None:
    if not _redis_answers():
        unavailable("Redis is not answering on 127.0.0.1:6379")


def until(condition: Callable[[], object], what: str, timeout: float = 60.0) -> None:
    """Wait until ``condition()`` is true; fail naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"still waiting for {what} after {timeout:g} s")
        time.sleep(0.02)


def ishtar(folder: Path) -> ll.Archive:
    """An archive with the simulated campaign's configurations and calibrations, no runs."""
    la = ll.init(folder)
    record_history(la)
    return la


def start(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "labledger.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[str]]]:
    """Subprocesses a test starts, killed if it leaves them running."""
    started: list[subprocess.Popen[str]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def expected_volts(number: int) -> dict[str, np.ndarray]:
    """What the simulated DAQ of shot ``number`` reads at each port, computed here from the
    physics, the wiring and the noise's seed, as float32 volts."""
    shot = Shot.simulate(number)
    n = round((PRE_TRIGGER + shot.duration + 0.1) * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE - PRE_TRIGGER
    physics = physical_signals(shot, t)
    noise = np.random.default_rng(10_000 + number)
    volts = {}
    for w in wiring(number):
        signal_volts = physics[w.signal] * w.volts_per_unit + w.offset_volts
        volts[f"{w.device}/{w.port}"] = (signal_volts + noise.normal(0.0, 0.002, n)).astype("f4")
    volts["PXI M6251/ai3"] = noise.normal(0.0, 0.002, n).astype("f4")  # unconnected since 1240
    return volts


def test_demo_live_makes_closed_complete_runs_that_read_back(tmp_path: Path) -> None:
    done = cli("demo", str(tmp_path), "--live", "--shots", "2", "--every", "0")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert [line.split(" (")[0] for line in lines if line.startswith("shot")] == [
        "shot 1271",
        "shot 1272",
    ]
    assert "run 1271: closed, complete" in done.stdout
    assert "run 1272: closed, complete" in done.stdout
    la = ll.open(tmp_path / "archive")
    for number in (1271, 1272):
        run = la.runs[number]
        assert (run.state, run.complete, run.reason) == ("closed", True, None)
        assert [s.state for s in run.states()] == [
            "created",
            "prepared",
            "started",
            "stopped",
            "closed",
        ]
        assert run.metadata["gas"] == "He" and run.metadata["shot"] == number
        volts = expected_volts(number)
        assert set(run.channels) == set(volts)
        for port, values in volts.items():
            assert np.array_equal(run.channels[port][:], values), port
        current = run.signal("Langmuir_I")
        assert current.attrs["units"] == "A" and current.attrs["port"] == "PXI M6251/ai11"
        np.testing.assert_allclose(
            current.values, volts["PXI M6251/ai11"].astype("f8") * LANGMUIR_GAIN, rtol=1e-6
        )  # float32 volts make float32 amperes
        np.testing.assert_allclose(current["time"].values[:3], [0.0, 2e-5, 4e-5])
    # a second demo into the same folder goes on from the newest shot
    again = cli("demo", str(tmp_path), "--live", "--shots", "1", "--every", "0")
    assert again.returncode == 0, again.stderr
    assert "run 1273: closed, complete" in again.stdout
    assert len(ll.open(tmp_path / "archive").config.log()) == 3  # its history not recorded twice


def block_of(k: int, n: int = 100) -> np.ndarray:
    """Block ``k`` of the test's stream: volts 0.001 × the sample index."""
    return (np.arange(k * n, (k + 1) * n) * 1e-3).astype("f4")


def test_follow_prints_the_live_signal_calibrated_until_the_seal(
    tmp_path: Path, processes: list[subprocess.Popen[str]]
) -> None:
    la = ishtar(tmp_path / "a")
    follower = start("follow", "Langmuir_I", "--archive", str(la.path), "--json")
    processes.append(follower)
    with la.acquisition(run=1271, structure="helicon-shot") as acq:
        probe = acq.stream("PXI M6251/ai11", dtype="float32", rate=1e4)  # Langmuir_I from 1240
        acq.start()
        for k in range(8):
            probe.write(block_of(k))
    out, errors = follower.communicate(timeout=60)
    assert follower.returncode == 0, errors
    pieces = [json.loads(line) for line in out.splitlines()]
    assert [p["block"] for p in pieces] == list(range(8))
    for k, piece in enumerate(pieces):
        amps = block_of(k).astype("f8") * LANGMUIR_GAIN
        assert (piece["n"], piece["unit"], piece["calibration"]) == (100, "A", "langmuir_i@2")
        assert piece["min"] == pytest.approx(amps.min(), rel=1e-12)
        assert piece["max"] == pytest.approx(amps.max(), rel=1e-12)
        assert piece["start"] == pytest.approx(k * 100 / 1e4)
    assert errors.splitlines()[-1] == "Langmuir_I of run 1271: its stream is sealed, 8 pieces"
    # resumed from the cursor of the third piece: the fourth on; the text form, one line a piece
    resumed = cli(
        "follow", "Langmuir_I", "-a", str(la.path), "--run", "1271", "--cursor", pieces[2]["cursor"]
    )
    assert resumed.returncode == 0, resumed.stderr
    lines = resumed.stdout.splitlines()
    assert len(lines) == 5 and lines[0].split()[:3] == ["0.0300", "..", "0.0399"]
    assert lines[0].endswith(" A") and "n=100" in lines[0]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["follow", "Nope", "--run", "1271"], "run 1271 has no signal or stream 'Nope'"),
        (["follow", "Langmuir_I", "--run", "99"], "99"),
        (["follow", "Langmuir_I", "--run", "1271", "--calibration", "coil_i@1"], "not of Langm"),
        (["follow", "Langmuir_I", "--timeout", "0.1", "--archive", "{empty}"], "no run is live"),
        (["follow", "Langmuir_I", "--cursor", "{oops"], "is not a cursor"),
        (
            ["follow", "Langmuir_I", "--run", "5", "--cursor", '{"run": 6, "positions": {}}'],
            "--cursor is of run 6, not --run 5",
        ),
        (["saver"], "which archive?"),
    ],
)
def test_follow_and_saver_refuse_bad_input_in_one_line(
    tmp_path: Path, args: list[str], message: str
) -> None:
    la = ishtar(tmp_path / "a")
    with la.acquisition(run=1271, structure="helicon-shot") as acq:
        acq.stream("PXI M6251/ai11", dtype="float32", rate=1e4)
        acq.start()
        acq.streams["PXI M6251/ai11"].write(block_of(0))
    env = None if args == ["saver"] else {"LABLEDGER_ARCHIVE": str(la.path)}
    empty = ll.init(tmp_path / "empty").path  # no run at all
    refused = cli(*(a.replace("{empty}", str(empty)) for a in args), env=env)
    assert refused.returncode == 1, refused.stdout
    assert refused.stdout == ""
    assert len(refused.stderr.splitlines()) == 1 and message in refused.stderr, refused.stderr


def test_demo_live_refuses_zero_shots(tmp_path: Path) -> None:
    refused = cli("demo", str(tmp_path), "--live", "--shots", "0")
    assert refused.returncode == 1 and refused.stderr == "error: --shots must be 1 or more, got 0\n"
    assert not (tmp_path / "archive").exists()


def test_a_saver_killed_mid_run_and_restarted_saves_every_sample_once(
    tmp_path: Path, processes: list[subprocess.Popen[str]]
) -> None:
    la = ll.init(tmp_path / "a")
    names = [f"ch{c}" for c in range(4)]

    def value(channel: int, k: int) -> np.ndarray:  # sample i of channel c is 10 i + c
        return (np.arange(k * 50, (k + 1) * 50) * 10 + channel).astype("f4")

    def saved_segments() -> int:
        return len(list(segments.keys(la.store, prefix)))

    saver = start("saver", str(la.path))
    processes.append(saver)
    written = 0
    with la.acquisition(run=7, structure="test-shot", metadata={"gas": "Ar"}) as acq:
        streams = [acq.stream(n, dtype="float32", rate=1e4) for n in names]
        acq.start()
        prefix = la.catalog.by_number(7).store_prefix
        for kill in range(4):
            before = saved_segments()
            for _ in range(10):
                acq.write({s: value(c, written) for c, s in enumerate(streams)})
                written += 1
            until(lambda b=before: saved_segments() > b, f"a segment before kill {kill}")
            for _ in range(5):  # more blocks the saver may be reading as it is killed
                acq.write({s: value(c, written) for c, s in enumerate(streams)})
                written += 1
            saver.send_signal(signal.SIGKILL)
            saver.communicate()
            assert saver.returncode == -signal.SIGKILL
            saver = start("saver", "--archive", str(la.path), "--json")
            processes.append(saver)
        for _ in range(7):
            acq.write({s: value(c, written) for c, s in enumerate(streams)})
            written += 1
    run = la.runs[7].wait("closed", timeout=60)
    assert (run.complete, run.reason) == (True, None)
    for c, name in enumerate(names):
        expected = np.concatenate([value(c, k) for k in range(written)])
        assert np.array_equal(run.channels[name][:], expected), name
    saver.send_signal(signal.SIGTERM)
    out, errors = saver.communicate(timeout=30)
    assert saver.returncode == 0, errors
    told = [json.loads(line) for line in out.splitlines()]
    assert told == [
        {
            "kind": "saved",
            "run": 7,
            "state": "closed",
            "complete": True,
            "reason": None,
            "blocks": told[0]["blocks"],  # those this saver kept: after its restart
            "segments": told[0]["segments"],
        }
    ]
    assert 0 < told[0]["blocks"] < written * len(names)
    assert errors.splitlines()[-1].startswith("saver stopped")


def test_each_piece_carries_the_cursor_right_after_it(tmp_path: Path) -> None:
    """Blocks that come in one read each get their own cursor (the fix: each had the cursor
    after the whole read, so resuming from an early piece skipped the rest of that read)."""
    la = ishtar(tmp_path / "a")
    with la.acquisition(run=1271, structure="helicon-shot") as acq:
        probe = acq.stream("PXI M6251/ai11", dtype="float32", rate=1e4)
        acq.start()
        for k in range(8):  # all written before anyone reads: one read returns them all
            probe.write(block_of(k))
    pieces = list(la.runs[1271].follow("Langmuir_I"))
    assert [p.cursor.positions["PXI M6251/ai11"] for p in pieces] == list(range(1, 9))
    rest = list(la.runs[1271].follow("Langmuir_I", cursor=pieces[2].cursor))
    assert [p.seq for p in rest] == [3, 4, 5, 6, 7]


def test_a_saver_whose_redis_does_not_answer_says_so_in_one_line(tmp_path: Path) -> None:
    la = ll.init(tmp_path / "a")
    nowhere = {"LABLEDGER_REDIS": f"redis://127.0.0.1:{free_port()}/0"}
    refused = cli("saver", str(la.path), env=nowhere)
    assert refused.returncode == 1 and refused.stdout == ""
    (line,) = refused.stderr.splitlines()
    assert "is not answering" in line and "LABLEDGER_REDIS" in line
