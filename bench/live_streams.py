"""Live streams on Redis: 50 channels at 10 kHz float32 written in real time into an archive,
one saver and 5 followers checking every sample, against raw redis-py XADD/XREAD of the same
blocks on the same Redis.

Target (issue 15): sustained (60 s here, 5 min with --long), follower lag p99 under 100 ms, the
saver's backlog bounded, nothing lost (every sample of every channel checked by every follower,
and in the arrays saved), Redis memory bounded (the saver trims what it saved; a follower
started --late seconds after the others reads the trimmed blocks from the store), and the run
closed and complete soon after its last seal. Printed: lag p50/p99/max, the saver's backlog and
CPU, the time from the last seal to complete, the sustained and the top throughput of
labledger.live beside raw redis-py's, measured in this run.

    python bench/live_streams.py [--seconds 60 | --long] [--channels 50] [--rate 10000]
        [--followers 5] [--block-ms 20] [--late 8] [--url redis://127.0.0.1:6379/0]

A block is what the DAQ hands over at once: 20 ms (200 samples a channel) by default, a common
read size of a DAQ card's buffer; the lag is from the write of a block to its arrival.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import redis

sys.path.insert(0, str(Path(__file__).parent))
import labledger as ll
from labledger.acquire.following import Kept
from labledger.live import Acquisition, Block, Follower, RunKeys, connect, discard, run_info

RUN = 1271


_CYCLE = np.tile(np.arange(65536, dtype="float32"), 2)  # two turns: any n <= 65536 is a slice


def values(channel: int, first: int, n: int) -> np.ndarray:
    """Samples ``first`` to ``first + n - 1`` of a channel: ``(channel * 7919 + i) % 65536``,
    whole numbers, exact in float32 (a slice of a table: the check stays cheap)."""
    start = (channel * 7919 + first) % 65536
    return _CYCLE[start : start + n]


class Counted:
    """The archive's saved blocks (what the saver kept), counted as a follower reads them."""

    def __init__(self, kept: Kept) -> None:
        self.kept, self.given = kept, 0

    def blocks(self, run: int, channel: str, start: int, stop: int) -> Iterator[Block]:
        for found in self.kept.blocks(run, channel, start, stop):
            self.given += 1
            yield found


def follower(
    path: str, names: list[str], block: int, out: Any, ready: Any, late: float = 0
) -> None:
    """Follow every channel to its seal, checking every sample; send lags and counts back. A
    ``late`` follower starts that many seconds after the others (so it needs trimmed blocks)."""
    la = ll.open(path)
    client, prefix = la.live.client, la.live.prefix
    specs = run_info(client, la.live.keys(RUN)).channels
    store = Counted(Kept(la.store, la.catalog.by_number(RUN).store_prefix, specs))
    index = {n: i for i, n in enumerate(names)}
    expected = dict.fromkeys(names, 0)  # the next sample of each channel
    lags, bad, samples = [], 0, 0
    reader = Follower(client, RUN, prefix=prefix, saved=store)
    values(0, 0, block)  # numpy's first call, before the clock runs
    ready.release()
    time.sleep(late)
    for b in reader:
        lags.append(time.time() - b.written)
        if b.first != expected[b.channel] or not np.array_equal(
            b.data, values(index[b.channel], b.first, b.samples)
        ):
            bad += 1
        expected[b.channel] = b.first + b.samples
        samples += b.samples
    sealed = sum(s.samples for s in reader.seals.values())
    ends = sorted({s.end for s in reader.seals.values()})
    out.put({"lags": np.array(lags), "bad": bad, "samples": samples, "sealed": sealed,
             "from_store": store.given, "cpu": time.process_time(), "ends": ends,
             "late": late})  # fmt: skip


def saver(path: str, stop: Any, out: Any) -> None:
    """The saver, in a process of its own, as `labledger saver` runs; its CPU seconds back."""
    la = ll.open(path)
    la.saver().serve(stop)
    out.put(time.process_time())


def raw(url: str, prefix: str, channels: int, block: int, seconds: float) -> tuple[float, float]:
    """redis-py alone: XADD of the same blocks (a pipeline of one per channel, as the writer
    sends them), then XREAD of them all (COUNT 1000, every stream at once); entries a second."""
    client = redis.Redis.from_url(url)
    keys = [f"{prefix}:raw:{c}" for c in range(channels)]
    payloads = [values(c, 0, block).tobytes() for c in range(channels)]
    written, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        with client.pipeline(transaction=False) as pipe:
            for key, data in zip(keys, payloads):
                pipe.xadd(key, {"i": written, "t": time.time(), "d": data})
            pipe.execute()
        written += channels
    add_rate = written / (time.perf_counter() - started)
    read, positions, started = 0, dict.fromkeys(keys, "0-0"), time.perf_counter()
    while read < written:
        for key, found in client.xread(positions, count=1000):  # type: ignore[union-attr]
            read += len(found)
            positions[key.decode()] = found[-1][0]
            for _, fields in found:
                np.frombuffer(fields[b"d"], dtype="float32")
    read_rate = read / (time.perf_counter() - started)
    client.delete(*keys)
    return add_rate, read_rate


def top_speed(
    url: str, prefix: str, channels: int, block: int, seconds: float
) -> tuple[float, float]:
    """labledger.live at full speed, the same blocks: Acquisition.write of one block per
    channel a round trip, then a Follower reading them all; blocks a second."""
    client = connect(url)
    acq = Acquisition(client, run=RUN + 1, structure="bench", prefix=prefix)
    streams = [acq.stream(f"ai{c}", dtype="float32", rate=1e4) for c in range(channels)]
    acq.start()
    payloads = [values(c, 0, block) for c in range(channels)]
    written, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        acq.write(dict(zip(streams, payloads)))
        written += channels
    add_rate = written / (time.perf_counter() - started)
    acq.close()
    read, started = 0, time.perf_counter()
    for _ in Follower(client, RUN + 1, prefix=prefix, count=1000):
        read += 1
    read_rate = read / (time.perf_counter() - started)
    discard(client, RunKeys(prefix, RUN + 1))
    return add_rate, read_rate


def redis_cpu(client: redis.Redis) -> float:
    """CPU seconds the Redis server has used."""
    info: dict[str, Any] = client.info("cpu")  # type: ignore[assignment]
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--long", action="store_true", help="5 minutes sustained")
    parser.add_argument("--channels", type=int, default=50)
    parser.add_argument("--rate", type=float, default=10_000.0)
    parser.add_argument("--followers", type=int, default=5)
    parser.add_argument("--block-ms", type=float, default=20.0)
    parser.add_argument("--url", default="redis://127.0.0.1:6379/0")
    parser.add_argument(
        "--late", type=float, default=8.0, help="one more follower starts this late (0: none)"
    )
    args = parser.parse_args()
    seconds = 300.0 if args.long else args.seconds
    block = round(args.rate * args.block_ms / 1000)
    ticks_per_s = 1000 / args.block_ms
    prefix = f"bench:{uuid.uuid4().hex[:8]}"
    client = connect(args.url)
    names = [f"PXI/ai{c}" for c in range(args.channels)]
    print(f"{args.channels} channels x {args.rate:g} Hz float32, blocks of {block} samples "
          f"({args.block_ms:g} ms), {args.followers} followers, {seconds:g} s, "
          f"Redis at {args.url}")  # fmt: skip

    raw_add, raw_read = raw(args.url, prefix, args.channels, block, 5.0)
    top_add, top_read = top_speed(args.url, prefix, args.channels, block, 5.0)

    os.environ["LABLEDGER_REDIS"] = args.url  # the archive's live runs there, in every process
    folder = tempfile.mkdtemp(prefix="labledger-bench-")
    la = ll.init(Path(folder) / "archive")
    path = str(la.path)
    ctx = mp.get_context("spawn")
    out, ready, saver_out = ctx.Queue(), ctx.Semaphore(0), ctx.Queue()
    stop_saver = ctx.Event()
    saving = ctx.Process(target=saver, args=(path, stop_saver, saver_out))
    saving.start()
    acq = la.acquisition(run=RUN, structure="bench")
    streams = [acq.stream(n, dtype="float32", rate=args.rate) for n in names]
    acq.start()
    readers = [ctx.Process(target=follower, args=(path, names, block, out, ready))
               for _ in range(args.followers)]  # fmt: skip
    if args.late:
        readers.append(ctx.Process(target=follower,
                       args=(path, names, block, out, ready, args.late)))  # fmt: skip
    for p in readers:
        p.start()
    for _ in readers:  # each follower is at block 0 before the first is written
        ready.acquire()
    load = os.getloadavg()[0]
    cpu_before = time.process_time()
    redis_before = redis_cpu(client)
    memory: list[int] = []
    backlog: list[int] = []  # blocks written and not yet saved, all channels, every second
    stop_watch = threading.Event()
    keys = la.live.keys(RUN)
    run_keys = keys.all(args.channels)

    def watch() -> None:
        """The bytes the run's keys take in Redis (MEMORY USAGE), and the saver's backlog,
        every second: the Redis may be shared, so its used_memory would count others' keys."""
        watcher = connect(args.url)
        while not stop_watch.wait(1.0):
            with watcher.pipeline(transaction=False) as pipe:
                for key in run_keys:
                    pipe.memory_usage(key)  # a stream's from 5 of its nodes
                for c in range(args.channels):
                    pipe.hmget(keys.meta(c), "next", "trimmed")
                found = pipe.execute()
            memory.append(sum(n or 0 for n in found[: len(run_keys)]))
            backlog.append(sum(int(n or 0) - int(t or -1) - 1 for n, t in found[len(run_keys) :]))

    watching = threading.Thread(target=watch, daemon=True)
    watching.start()
    ticks = int(seconds * ticks_per_s)
    late, started = 0, time.perf_counter()
    for tick in range(ticks):
        due = started + tick / ticks_per_s
        wait = due - time.perf_counter()
        if wait > 0:
            time.sleep(wait)
        elif wait < -args.block_ms / 1000:
            late += 1
        first = tick * block
        acq.write({s: values(c, first, block) for c, s in enumerate(streams)})
    took = time.perf_counter() - started
    writer_cpu = time.process_time() - cpu_before
    redis_used = redis_cpu(client) - redis_before
    acq.close()
    sealed_at = time.perf_counter()
    while not la.catalog.by_number(RUN).complete:  # type: ignore[union-attr]
        time.sleep(0.005)
    to_complete = time.perf_counter() - sealed_at
    results = sorted((out.get(timeout=600) for _ in readers), key=lambda r: r["late"])
    late_one = results.pop() if args.late else None
    for p in readers:
        p.join()
    stop_saver.set()
    saver_cpu = saver_out.get(timeout=60)
    saving.join()
    stop_watch.set()
    watching.join()
    run = la.runs[RUN]
    saved_bad = sum(
        # the formula itself (values() slices a table of two turns: too short for a whole run)
        not np.array_equal(
            run.channels[n][:], ((c * 7919 + np.arange(ticks * block)) % 65536).astype("float32")
        )
        for c, n in enumerate(names)
    )
    segments_kept = len(la.store.children(f"{run._row.store_prefix}/live"))
    discard(client, RunKeys(la.live.prefix, RUN))
    shutil.rmtree(folder)

    written = ticks * block * args.channels
    lags = np.concatenate([r["lags"] for r in results]) * 1000
    p50, p99 = np.percentile(lags, [50, 99])
    print()
    print("throughput, blocks (entries) a second, same Redis, same blocks:")
    print(f"  raw redis-py XADD, pipelined    {raw_add:10,.0f}   XREAD  {raw_read:10,.0f}")
    print(f"  labledger.live write, top speed {top_add:10,.0f}   follow {top_read:10,.0f}"
          f"   ({top_add / raw_add:.2f}x and {top_read / raw_read:.2f}x raw)")  # fmt: skip
    print(f"  needed: {args.channels * ticks_per_s:,.0f} blocks/s written, "
          f"{args.channels * ticks_per_s * args.followers:,.0f} read "
          f"({written * 4 / took / 1e6:.1f} MB/s in, x{args.followers} out)")  # fmt: skip
    cpus = ", ".join(f"{r['cpu']:.1f}" for r in results)
    print(f"sustained {took:.1f} s: {written:,} samples written, {late} of {ticks} ticks late "
          f"(machine load {load:.1f} on {os.cpu_count()} cores; CPU seconds: writer "
          f"{writer_cpu:.1f}, followers {cpus}, Redis {redis_used:.1f})")  # fmt: skip
    for k, r in enumerate(results):
        status = "all" if r["samples"] == written == r["sealed"] and not r["bad"] else "MISSING"
        print(f"  follower {k}: {r['samples']:,} samples checked ({status}), {r['bad']} bad "
              f"blocks, {r['from_store']} blocks from the store, seals: {r['ends']}")  # fmt: skip
    if late_one is not None:
        r = late_one
        status = "all" if r["samples"] == written == r["sealed"] and not r["bad"] else "MISSING"
        print(f"  a follower {args.late:g} s late: {r['samples']:,} samples checked ({status}), "
              f"{r['bad']} bad blocks, {r['from_store']:,} blocks from the store (trimmed from "
              f"Redis), then {len(r['lags']) - r['from_store']:,} from Redis")  # fmt: skip
    print(f"follower lag (the {args.followers}): p50 {p50:.1f} ms, p99 {p99:.1f} ms, "
          f"max {lags.max():.1f} ms "
          f"(target p99 < 100 ms: {'met' if p99 < 100 else 'NOT met'})")  # fmt: skip
    per_s = args.channels * ticks_per_s
    print(f"saver: CPU {saver_cpu:.1f} s; backlog (blocks written, not yet saved) median "
          f"{statistics.median(backlog):,.0f}, max {max(backlog, default=0):,} "
          f"({max(backlog, default=0) / per_s:.2f} s of data); {segments_kept} segments; the "
          f"saved arrays: {args.channels - saved_bad} of {args.channels} channels equal to "
          f"what was written, sample for sample")  # fmt: skip
    print(f"closed and complete {to_complete * 1000:.0f} ms after the last seal (target < 1 s; "
          f"{run.state}, complete {run.complete})")  # fmt: skip
    print(f"Redis memory of the run's keys: {max(memory, default=0) / 1e6:.1f} MB at most, "
          f"{statistics.median(memory) / 1e6:.1f} MB median "
          f"({written * 4 / 1e6:.0f} MB written in all)")  # fmt: skip


if __name__ == "__main__":
    main()
