"""The drop folder's latency: a 1 GB LabVIEW TDMS file written into a watched folder, from its
last write to its run in the catalog, against the ingest bench's time for the same file.

Target (issue 15): ingested within the ingest bench's time plus 1 s of its last write.

    python bench/watch_tdms.py [--gb 1] [--repeat 3] [--dir /tmp] [--settle 0.5]

Each repeat, interleaved: (a) `labledger watch --json` runs on an empty folder of a new
archive; this process writes the file into the folder segment by segment as a DAQ does,
closes it (its last write: the clock starts), fsyncs it, and times until the watcher's line
saying the run is ingested arrives; (b) `labledger ingest` of the same file into a new
archive, timed as bench/ingest_tdms.py times it (after an untimed sync, the command's whole
wall time). Medians are compared. The run (a) made is checked to hold the whole file's
sha256. (a) is repeated with the watcher in this process, to split its time into the wait
before the ingest and the ingest itself.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import labledger
from ingest_tdms import timed, write_tdms
from labledger.dropfolder import DropFolder, Outcome


def watched(labledger_cmd: str, work: Path, source: Path, gb: float, settle: float) -> float:
    """Seconds from the last write of a file written into a watched folder to the line saying
    it is ingested; checks that the run holds the whole file."""
    archive, outbox = work / "watched-archive", work / "outbox"
    outbox.mkdir()
    subprocess.run([labledger_cmd, "init", str(archive)], check=True, stdout=subprocess.DEVNULL)
    watcher = subprocess.Popen(
        [labledger_cmd, "watch", str(outbox), "-a", str(archive), "--json",
         "--settle", str(settle)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert watcher.stderr is not None
        watcher.stderr.readline()  # "watching ...": started, before the file is written
        target = outbox / source.name
        write_tdms(target, gb)  # segment by segment, as a DAQ writes, and closed
        last_write = time.perf_counter()
        with open(target, "rb+") as f:
            os.fsync(f.fileno())  # durable, as the file of a finished shot is
        assert watcher.stdout is not None
        line = json.loads(watcher.stdout.readline())
        latency = time.perf_counter() - last_write
    finally:
        watcher.send_signal(signal.SIGTERM)  # SIGINT: ignored when started in the background
        watcher.wait(timeout=60)
    if line["kind"] != "ingested":
        raise SystemExit(f"the watcher said: {line['message']}")
    with labledger.open(archive) as la:
        [kept] = la.runs[line["run"]].sources
    with open(source, "rb") as f:  # the file written into the folder is the same, whole
        whole = hashlib.file_digest(f, "sha256").hexdigest()
    if kept.sha256 != whole:
        raise SystemExit("the watcher ingested a file that was not whole")
    shutil.rmtree(archive)
    shutil.rmtree(outbox)
    return latency


def in_process(work: Path, source: Path, gb: float, settle: float) -> tuple[float, float]:
    """The same with the watcher in this process (labledger.dropfolder in a thread): seconds
    from the last write to the start of the ingest (the settle window, the next look, the
    writer check), and from then to the run in the catalog."""
    archive, outbox = work / "inproc-archive", work / "outbox"
    outbox.mkdir()
    la = labledger.init(archive)
    started: list[float] = []
    real = la.ingest

    def ingest(paths: Any, **kwargs: Any) -> Any:
        started.append(time.perf_counter())
        return real(paths, **kwargs)

    la.ingest = ingest  # type: ignore[method-assign]
    done: list[tuple[float, Outcome]] = []
    arrived = threading.Event()

    def announce(outcome: Outcome) -> None:
        done.append((time.perf_counter(), outcome))
        arrived.set()

    stop = threading.Event()
    drop = DropFolder(la, outbox, settle=settle)
    watcher = threading.Thread(target=drop.run, args=(stop,), kwargs={"announce": announce})
    watcher.start()
    try:
        target = outbox / source.name
        write_tdms(target, gb)
        last_write = time.perf_counter()
        with open(target, "rb+") as f:
            os.fsync(f.fileno())
        arrived.wait()
    finally:
        stop.set()
        watcher.join()
        la.close()
    [(finished, outcome)] = done
    if outcome.kind != "ingested" or len(started) != 1:
        raise SystemExit(f"the watcher said: {outcome.message} ({len(started)} ingests)")
    shutil.rmtree(archive)
    shutil.rmtree(outbox)
    return started[0] - last_write, finished - started[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gb", type=float, default=1.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--dir", default=tempfile.gettempdir())
    parser.add_argument("--settle", type=float, default=0.5)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="labledger-bench-", dir=args.dir))
    labledger_cmd = str(Path(sys.executable).with_name("labledger"))
    try:
        source = work / "02001_Data.tdms"
        print(f"writing a {args.gb:g} GB TDMS file ...", flush=True)
        write_tdms(source, args.gb)
        size = source.stat().st_size
        latencies, ingests, waits, inside = [], [], [], []
        for i in range(args.repeat):
            latencies.append(watched(labledger_cmd, work, source, args.gb, args.settle))
            wait, took = in_process(work, source, args.gb, args.settle)
            waits.append(wait)
            inside.append(took)
            archive = work / f"archive{i}"
            subprocess.run([labledger_cmd, "init", str(archive)], check=True,
                           stdout=subprocess.DEVNULL)  # fmt: skip
            t, _ = timed([labledger_cmd, "ingest", "--archive", str(archive), str(source)])
            ingests.append(t)
            shutil.rmtree(archive)
            said = f"watch {latencies[-1]:.2f} s, ingest {t:.2f} s"
            said += f"; in process: waited {wait:.2f} s, ingested in {took:.2f} s"
            print(f"  repeat {i + 1}: {said}", flush=True)
        w, g = statistics.median(latencies), statistics.median(ingests)
        print(f"file: {size / 1e6:,.0f} MB; settle {args.settle:g} s; medians of {args.repeat}")
        print(f"labledger ingest (the ingest bench's time):  {g:6.2f} s")
        print(f"labledger watch, last write to ingested:     {w:6.2f} s")
        print(f"difference:                                  {w - g:+6.2f} s  (target <= +1.00 s)")
        print(f"in process: last write to ingest start       {statistics.median(waits):6.2f} s"
              f"  (settle {args.settle:g} s + the next look + the writer check)")  # fmt: skip
        print(f"in process: ingest start to ingested         {statistics.median(inside):6.2f} s")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
