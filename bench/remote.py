"""The server and the remote client against the local archive, measured in the same run.

Targets (server and remote client): a full channel read remotely at least 50% of the local
throughput; a 1 MB slice remotely under 5 ms median; ``la.runs[-1]`` remotely under 10 ms median
with 100,000 runs in a PostgreSQL catalog; a 2,000-point preview of a 10,000,000-sample signal
under 50 ms and under 64 KB on the wire. Each remote figure is printed beside the same operation
on the local archive (or, for the preview, beside reading the whole signal remotely); medians,
local and remote alternated, since this machine is noisy.

    python bench/remote.py [--mb 100] [--slices 200] [--repeat 5] [--runs 100000]
                           [--postgres postgresql://postgres@127.0.0.1:5432/test] [--skip-postgres]

The server is uvicorn on loopback, in a thread of this process (so client and server share
its interpreter and the machine's two cores), with an API key of a reader, as a user has.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import h5py
import httpx
import numpy as np
import uvicorn
from nptdms import ChannelObject, GroupObject, RootObject, TdmsWriter

sys.path.insert(0, str(Path(__file__).parent))
import labledger as ll
from catalog_scale import _new_database, populate
from labledger.access import Access
from labledger.server import create_app
from labledger.sim.campaign import record_history
from labledger.sim.testbed import VOLTS_PER_COUNT
from timing import median_time

BIG, SIGNAL_RUN = 1, 2  # run numbers of the 100 MB channel and of the long signal
SLICE = 1 << 17  # float64 samples: 1 MiB
SIGNAL, PORT = "RF_Pfwd", ("PXI M6251", "ai0")  # wired so in ishtar.yaml
POINTS = 2000


def write_big(path: Path, mb: float) -> None:
    """One float64 dataset of ``mb`` MB: a noisy sine, as a digitised waveform stored as
    floats (the mantissas' noise leaves blosc little to gain)."""
    n = int(mb * (1 << 20)) // 8
    rng = np.random.default_rng(0)
    with h5py.File(path, "w") as f:
        dset = f.create_dataset("data", shape=(n,), dtype="<f8")
        block = 1 << 22
        for start in range(0, n, block):
            t = np.arange(start, min(start + block, n)) * 2e-5
            dset[start : start + len(t)] = np.sin(2 * np.pi * 50 * t) + rng.normal(0, 0.05, len(t))


def write_long_signal(path: Path, samples: int) -> None:
    """A long acquisition of the RF forward power on its ISHTAR port: int16 counts with the
    DAQmx linear scaling, 50 kHz waveform timing."""
    props = {
        "NI_Number_Of_Scales": 1,
        "NI_Scale[0]_Scale_Type": "Linear",
        "NI_Scale[0]_Linear_Slope": VOLTS_PER_COUNT,
        "NI_Scale[0]_Linear_Y_Intercept": 0.0,
        "unit_string": "V",
        "wf_increment": 2e-5,
        "wf_start_offset": 0.0,
    }
    rng = np.random.default_rng(1)
    segment = 1 << 20
    with TdmsWriter(path) as writer:
        for start in range(0, samples, segment):
            t = np.arange(start, min(start + segment, samples)) * 2e-5
            volts = 1.5 + np.sin(2 * np.pi * 0.5 * t) + rng.normal(0, 0.02, len(t))
            counts = np.round(volts / VOLTS_PER_COUNT).astype(np.int16)
            head = [RootObject({"gas": "Ar"}), GroupObject(PORT[0])] if start == 0 else []
            writer.write_segment([*head, ChannelObject(*PORT, counts, props)])


@contextmanager
def serving(la: ll.Archive) -> Iterator[tuple[str, str]]:
    """The archive served by uvicorn on a free loopback port: its URL and a reader's API key."""
    access = Access(la.catalog)
    access.add_user("bench", project="default", role="reader", by="bench")
    key = access.create_key("bench", scopes=["read"])
    config = uvicorn.Config(
        create_app(la), host="127.0.0.1", port=0, log_level="warning", access_log=False
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("the server did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}", key
    finally:
        server.should_exit = True
        thread.join(10)


def alternated(
    local: Callable[[], object], remote: Callable[[], object], repeat: int
) -> tuple[float, float, float]:
    """Median seconds of ``local`` and of ``remote``, run in alternation, and the median of
    the per-pair ratios remote / local."""
    pairs = [(median_time(local), median_time(remote)) for _ in range(repeat)]
    return (
        statistics.median(a for a, _ in pairs),
        statistics.median(b for _, b in pairs),
        statistics.median(b / a for a, b in pairs),
    )


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def bench_reads(la: ll.Archive, remote: ll.Archive, args: argparse.Namespace) -> None:
    (key,) = list(la.runs[BIG].channels)
    here, there = la.runs[BIG].channels[key], remote.runs[BIG].channels[key]
    np.testing.assert_array_equal(here[...], there[...])  # the same values, and warm caches
    mb = here.nbytes / 1e6
    t_local, t_remote, ratio = alternated(lambda: here[...], lambda: there[...], args.repeat)
    print(f"1. full read of {key!r}: {here.nbytes / 2**20:,.0f} MiB of float64 "
          f"(median of {args.repeat} alternated pairs)")  # fmt: skip
    print(f"   local   {t_local * 1e3:8.1f} ms  {mb / t_local:7.0f} MB/s")
    print(f"   remote  {t_remote * 1e3:8.1f} ms  {mb / t_remote:7.0f} MB/s")
    share = 1 / ratio
    print(
        f"   remote throughput = {100 * share:.0f}% of local  (target >= 50%: "
        f"{verdict(share >= 0.5)})"
    )

    n = here.shape[0]
    starts = np.random.default_rng(2).integers(0, n - SLICE, args.slices)
    times: dict[str, list[float]] = {"local": [], "remote": []}
    for s in starts:  # each offset read locally, then remotely
        for name, ch in (("local", here), ("remote", there)):
            start = time.perf_counter()
            ch[s : s + SLICE]
            times[name].append(time.perf_counter() - start)
    ms_local, ms_remote = (1e3 * statistics.median(times[x]) for x in ("local", "remote"))
    print(f"2. {args.slices} slices of 1 MiB (131,072 float64) at random offsets, median each")
    print(f"   local   {ms_local:8.2f} ms")
    print(f"   remote  {ms_remote:8.2f} ms  ({ms_remote / ms_local:.1f}x local)")
    print(f"   remote median under 5 ms  (target: {verdict(ms_remote < 5)})")


def bench_newest(args: argparse.Namespace, work: Path) -> None:
    url = _new_database(args.postgres, DATABASE)
    try:
        la = ll.init(work / "pg-archive", catalog=url)
        start = time.perf_counter()
        populate(la, args.runs)
        print(f"   ({args.runs:,} runs inserted in {time.perf_counter() - start:.0f} s)")
        with serving(la) as (address, key):
            remote = ll.connect(address, api_key=key)
            assert remote.runs[-1].number == la.runs[-1].number == args.runs
            calls = 200
            t_local, t_remote, _ = alternated(
                lambda: [la.runs[-1] for _ in range(10)],
                lambda: [remote.runs[-1] for _ in range(10)],
                calls // 10,
            )
            with httpx.Client(base_url=address) as client:
                health = median_time(lambda: client.get("/api/v1/health"), calls)
            remote.close()
        ms_local, ms_remote = t_local * 100, t_remote * 100  # per call, in ms
        print(f"3. la.runs[-1] with {args.runs:,} runs in PostgreSQL (median of 20 x 10 calls)")
        print(f"   local   {ms_local:8.2f} ms")
        print(f"   remote  {ms_remote:8.2f} ms  ({ms_remote / ms_local:.1f}x local; an empty "
              f"GET /health takes {health * 1e3:.2f} ms)")  # fmt: skip
        print(f"   remote median under 10 ms  (target: {verdict(ms_remote < 10)})")
        la.close()
    finally:
        _drop_database(args.postgres, DATABASE)


DATABASE = "ll_bench_remote"


def _drop_database(admin: str, name: str) -> None:
    import psycopg

    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def bench_preview(
    la: ll.Archive, remote: ll.Archive, address: str, key: str, args: argparse.Namespace
) -> None:
    path = f"/api/v1/runs/{SIGNAL_RUN}/signals/{SIGNAL}"
    with httpx.Client(base_url=address, headers={"Authorization": f"Bearer {key}"}) as client:

        def get() -> httpx.Response:
            response = client.get(path, params={"points": POINTS})
            response.raise_for_status()
            return response

        response = get()
        t_endpoint = median_time(get, args.repeat * 3)
    lengths = [int(n) for n in response.headers["X-Lengths"].split(",")]
    header_bytes = sum(len(k) + len(v) + 4 for k, v in response.headers.raw)
    wire = response.num_bytes_downloaded
    coding = response.headers.get("content-encoding", "identity")
    sent = response.request.headers.get("accept-encoding")

    def preview(archive: ll.Archive) -> object:
        return archive.runs[SIGNAL_RUN].signal(SIGNAL, points=POINTS)

    def whole(archive: ll.Archive) -> object:
        return archive.runs[SIGNAL_RUN].signal(SIGNAL)

    shown = preview(remote)
    assert shown.sizes["time"] <= POINTS
    np.testing.assert_array_equal(shown.values, preview(la).values)
    n = whole(remote).sizes["time"]
    t_client = median_time(lambda: preview(remote), args.repeat * 3)
    t_local_preview = median_time(lambda: preview(la), args.repeat * 3)
    t_whole, t_whole_local = (median_time(lambda a=a: whole(a), args.repeat) for a in (remote, la))
    print(f"4. preview of {SIGNAL!r} ({n:,} samples) at {POINTS:,} points")
    print(
        f"   GET {path}?points={POINTS}: {t_endpoint * 1e3:.1f} ms median of {args.repeat * 3}"
    )
    print(
        f"   body {len(response.content):,} B ({lengths[0]:,} B time + {lengths[1]:,} B values), "
        f"{wire:,} B on the wire as {coding} (asked: {sent}), headers {header_bytes:,} B"
    )
    print(f"   remote run.signal(points={POINTS}): {t_client * 1e3:7.1f} ms  "
          f"(local archive: {t_local_preview * 1e3:.1f} ms)")  # fmt: skip
    print(f"   remote run.signal(), all of it:    {t_whole * 1e3:7.1f} ms  "
          f"(local archive: {t_whole_local * 1e3:.1f} ms); preview {t_whole / t_endpoint:.0f}x "
          "faster than the whole")  # fmt: skip
    print(f"   under 50 ms  (target: {verdict(t_endpoint < 0.05)}); under 64 KB on the wire "
          f"(target: {verdict(wire + header_bytes < 64_000)})")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=100.0, help="size of the big channel")
    parser.add_argument("--slices", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--samples", type=int, default=10_000_000, help="of the long signal")
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--skip-postgres", action="store_true", help="skip part 3")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ll-bench-remote-"))
    try:
        la = ll.init(work / "archive")
        record_history(la, upto=0)  # ISHTAR's description and calibrations
        start = time.perf_counter()
        write_big(work / "big.h5", args.mb)
        write_long_signal(work / "long.tdms", args.samples)
        la.ingest([work / "big.h5"], run=BIG)
        la.ingest([work / "long.tdms"], run=SIGNAL_RUN)
        print(f"archive written and ingested in {time.perf_counter() - start:.1f} s")
        with serving(la) as (address, key):
            remote = ll.connect(address, api_key=key)
            bench_reads(la, remote, args)
            if args.skip_postgres:
                print("3. la.runs[-1] on PostgreSQL: skipped (--skip-postgres)")
            else:
                bench_newest(args, work)
            bench_preview(la, remote, address, key, args)
            remote.close()
        la.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
