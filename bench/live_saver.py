"""The saver (`labledger saver`, a subprocess as a user runs it) saving live runs: how soon a
sealed run is closed and complete, whether it survives kill -9, and Redis's memory meanwhile.

Targets (issue 15): a sealed run visible as closed and complete within 1 s of its last seal;
kill -9 of the saver 20 times during a live run: 0 gaps, 0 duplicates, the run completes;
Redis memory bounded: saved blocks are trimmed.

    python bench/live_saver.py [--channels 50] [--rate 10000] [--shots 10,1] [--repeat 3]
        [--kills 20] [--memory-seconds 30] [--block-ms 20] [--dir /tmp]

(a) Latency. For each shot length (10 s and 1 s of 50 float32 channels at 10 kHz), written in
    real time by this process through `la.acquisition` while `labledger saver` runs: the time
    from `acq.close()` returning (every stream sealed, the run closed in Redis) to the catalog
    saying the run is closed and complete (polled every 5 ms). Beside it, in the same run: the
    same samples as a TDMS file (float32, one segment a second) ingested with `la.ingest` into
    a new archive, the time a finished file takes to become a run.
(b) kill -9. One live run written in real time; a supervisor starts `labledger saver`, kills it
    (SIGKILL) at a random moment 0 to 1 s after it has kept its first new segment (it has
    resumed: rebuilt the arrays from the segments, read on from Redis), starts it again,
    --kills times, then lets one run; once that one has resumed, 1 s more of blocks and the
    seal. Once the run is closed: every sample of every saved array checked against the
    formula that made it (sample i of channel c is i + c, exact in float32): gaps, duplicates,
    samples out of order or wrong; the last saver's time to resume, and from the last seal to
    complete.
(c) Memory. A --memory-seconds run in real time with the saver running: `MEMORY USAGE` of the
    run's keys every second, beside the bytes written (what Redis would hold without trimming).
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

import numpy as np
from nptdms import ChannelObject, GroupObject, RootObject, TdmsWriter

import labledger
import labledger.acquire.segments as segments

RUN = 7


def values(channel: int, first: int, n: int) -> np.ndarray:
    """Samples ``first`` .. ``first + n - 1`` of ``channel``: i + c (exact in float32)."""
    return np.arange(first + channel, first + channel + n, dtype=np.float32)


def saver(archive: Path) -> tuple[subprocess.Popen[str], float]:
    """`labledger saver ARCHIVE` started; returned once it says it is saving (and when)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "labledger.cli", "saver", str(archive)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    line = proc.stderr.readline()
    if not line.startswith("saving"):
        raise SystemExit(f"the saver did not start: {line}{proc.stderr.read()}")
    threading.Thread(target=_drain, args=(proc.stderr,), daemon=True).start()
    return proc, time.monotonic()


def _drain(stream: IO[str]) -> None:
    for _ in stream:
        pass


def write_live(
    la: labledger.Archive,
    channels: int,
    rate: float,
    block: int,
    until: Callable[[int], bool],
    run: int = RUN,
) -> tuple[int, float]:
    """Write a live run in real time, a block of every channel at a time, until ``until(k)``
    (k: blocks written a channel) says enough; (blocks a channel, monotonic time close returned)."""
    with la.acquisition(run=run, structure="bench-shot") as acq:
        streams = [acq.stream(f"ch{c}", dtype="float32", rate=rate) for c in range(channels)]
        acq.start()
        began, k = time.monotonic(), 0
        while not until(k):
            first = k * block
            acq.write({s: values(c, first, block) for c, s in enumerate(streams)})
            k += 1
            time.sleep(max(0.0, began + k * block / rate - time.monotonic()))
    return k, time.monotonic()


def until_complete(la: labledger.Archive, run: int, timeout: float = 120.0) -> float:
    """Poll the catalog every 5 ms until ``run`` is closed and complete; when it was seen."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        row = la.catalog.by_number(run)
        if row is not None and row.state == "closed" and row.complete:
            return time.monotonic()
        if row is not None and row.state in ("aborted", "failed"):
            raise SystemExit(f"run {run} ended {row.state}: {row.reason}")
        time.sleep(0.005)
    raise SystemExit(f"run {run} not complete after {timeout:g} s")


def memory_of(la: labledger.Archive, run: int, channels: int) -> int:
    client = la.live.client
    with client.pipeline(transaction=False) as pipe:
        for key in la.live.keys(run).all(channels):
            pipe.memory_usage(key, samples=0)
        return sum(m or 0 for m in pipe.execute())


class Sampler:
    """The run's keys' memory in Redis, every ``every`` s, in a thread."""

    def __init__(self, la: labledger.Archive, channels: int, every: float = 1.0) -> None:
        self.la, self.channels, self.every = la, channels, every
        self.samples: list[int] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.wait(self.every):
            self.samples.append(memory_of(self.la, RUN, self.channels))

    def done(self) -> list[int]:
        self.stop.set()
        self.thread.join()
        return self.samples


def tdms_ingest(work: Path, channels: int, rate: float, seconds: float) -> float:
    """Seconds `la.ingest` takes for the same samples as a TDMS file (float32, a segment a s)."""
    path = work / "same.tdms"
    n = round(seconds * rate)
    per = round(rate)
    with TdmsWriter(path) as writer:
        for first in range(0, n, per):
            head = [RootObject({"shot": RUN}), GroupObject("daq")] if first == 0 else []
            chans = [
                ChannelObject(
                    "daq",
                    f"ch{c}",
                    values(c, first, min(per, n - first)),
                    {"wf_increment": 1 / rate},
                )
                for c in range(channels)
            ]
            writer.write_segment(head + chans)
    os.sync()
    with labledger.init(work / "ingested") as la:
        began = time.monotonic()
        la.ingest([path])
        took = time.monotonic() - began
    path.unlink()
    return took


def latency(
    work: Path, channels: int, rate: float, block: int, seconds: float
) -> tuple[float, float, int]:
    """(a) once: (seal to complete, TDMS ingest, Redis memory max during the shot)."""
    with labledger.init(work / "live") as la:
        proc, _ = saver(la.path)
        try:
            sampler = Sampler(la, channels, every=0.5)
            blocks = round(seconds * rate / block)
            _, sealed = write_live(la, channels, rate, block, lambda k: k >= blocks)
            complete = until_complete(la, RUN)
            peak = max(sampler.done() or [0])
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)
    took = tdms_ingest(work, channels, rate, seconds)
    return complete - sealed, took, peak


def kills(work: Path, channels: int, rate: float, block: int, count: int) -> None:
    """(b): the saver killed ``count`` times at random moments during one live run."""
    la = labledger.init(work / "kills")
    rng = random.Random(0)
    killed: list[float] = []
    done = threading.Event()
    final: list[subprocess.Popen[str]] = []
    resumed: list[float] = []

    def kept() -> int:  # the run's segments in the store
        row = la.catalog.by_number(RUN)
        return 0 if row is None else len(list(segments.keys(la.store, row.store_prefix)))

    def supervise() -> None:
        while len(killed) < count:
            before = kept()
            proc, ready = saver(la.path)
            while kept() <= before:  # it has resumed and keeps segments again
                time.sleep(0.01)
            time.sleep(rng.uniform(0.0, 1.0))
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            killed.append(time.monotonic() - ready)
        before = kept()
        proc, ready = saver(la.path)
        final.append(proc)
        while kept() <= before:
            time.sleep(0.01)
        resumed.append(time.monotonic() - ready)
        done.set()

    boss = threading.Thread(target=supervise, daemon=True)
    began = time.monotonic()
    boss.start()
    extra: list[int] = []

    def enough(k: int) -> bool:  # one more second of blocks once the last saver runs
        if done.is_set() and not extra:
            extra.append(k + round(rate / block))
        return bool(extra) and k >= extra[0]

    written, sealed = write_live(la, channels, rate, block, enough)
    complete = until_complete(la, RUN)
    final[0].send_signal(signal.SIGTERM)
    final[0].wait(30)
    run = la.runs[RUN]
    n = written * block
    gaps = duplicates = disorder = wrong = 0
    for c in range(channels):
        got = np.asarray(run.channels[f"ch{c}"][:])
        index = got.astype(np.int64) - c
        fine = (got == np.round(got)) & (index >= 0) & (index < n)  # some i + c
        wrong += int((~fine).sum())
        unique = np.unique(index[fine])
        gaps += n - len(unique)
        duplicates += int(fine.sum()) - len(unique)
        disorder += int((np.diff(index) != 1).sum())
    print(
        f"(b) kill -9: {len(killed)} kills (each 0 to 1 s after the saver kept its first new "
        f"segment; {statistics.median(killed):.2f} s after it started, median), "
        f"{len(killed) + 1} savers; the writer wrote {written * block / rate:.0f} s of data in "
        f"{sealed - began:.0f} s"
    )
    print(
        f"    {channels} channels x {n:,} samples checked: gaps {gaps}, duplicates {duplicates}, "
        f"out of order {disorder}, wrong values {wrong}; complete {run.complete} "
        f"({run.reason or 'no reason given'})"
    )
    print(
        f"    the last saver: {resumed[0]:.2f} s from its start to its first new segment (it "
        f"rebuilds the arrays from the {written * block * channels * 4 / 1e6:.0f} MB of "
        f"segments first); then, 1 s of blocks later, last seal to complete "
        f"{complete - sealed:.3f} s"
    )
    la.close()


def memory(work: Path, channels: int, rate: float, block: int, seconds: float) -> None:
    """(c): Redis memory of a long run while the saver runs."""
    with labledger.init(work / "memory") as la:
        proc, _ = saver(la.path)
        try:
            sampler = Sampler(la, channels)
            blocks = round(seconds * rate / block)
            write_live(la, channels, rate, block, lambda k: k >= blocks)
            until_complete(la, RUN)
            samples = sampler.done()
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)
    written = channels * round(seconds * rate) * 4
    half = samples[len(samples) // 2 :]
    print(
        f"(c) Redis memory of the run's keys, sampled each second for {seconds:g} s: max "
        f"{max(samples) / 1e6:.2f} MB, median of the second half "
        f"{statistics.median(half) / 1e6:.2f} MB; "
        f"written {written / 1e6:.0f} MB ({max(samples) / written:.3f}x)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--channels", type=int, default=50)
    parser.add_argument("--rate", type=float, default=10_000.0)
    parser.add_argument("--shots", default="10,1", help="shot lengths in s for (a)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--memory-seconds", type=float, default=30.0)
    parser.add_argument("--block-ms", type=float, default=20.0)
    parser.add_argument("--dir", default=None)
    parser.add_argument("--skip", default="", help="parts to skip: a, b, c")
    args = parser.parse_args()
    block = round(args.block_ms / 1000 * args.rate)
    print(
        f"{args.channels} float32 channels at {args.rate:g} Hz, {block}-sample blocks; load "
        f"{os.getloadavg()[0]:.1f}, {os.cpu_count()} cores"
    )
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        work = Path(tmp)
        if "a" not in args.skip:
            for seconds in [float(s) for s in args.shots.split(",")]:
                found: list[tuple[float, float, int]] = []
                for i in range(args.repeat):
                    folder = work / f"a{seconds:g}-{i}"
                    folder.mkdir()
                    found.append(latency(folder, args.channels, args.rate, block, seconds))
                    lat, ing, peak = found[-1]
                    print(
                        f"  {seconds:g} s shot, repeat {i + 1}: seal to complete {lat:.3f} s; "
                        f"TDMS ingest {ing:.3f} s; Redis max {peak / 1e6:.2f} MB"
                    )
                lat = statistics.median(f[0] for f in found)
                ing = statistics.median(f[1] for f in found)
                mb = args.channels * seconds * args.rate * 4 / 1e6
                print(
                    f"(a) {seconds:g} s shot ({mb:.0f} MB): "
                    f"last seal to closed and complete {lat:.3f} s (target < 1 s: "
                    f"{'met' if lat < 1 else 'NOT met'}); the same data from a TDMS file: "
                    f"ingest {ing:.3f} s; ratio {lat / ing:.2f}x (medians of {args.repeat})"
                )
        if "b" not in args.skip:
            kills(work, args.channels, args.rate, block, args.kills)
        if "c" not in args.skip:
            memory(work, args.channels, args.rate, block, args.memory_seconds)


if __name__ == "__main__":
    main()
