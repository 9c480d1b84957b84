"""The saver: the subscriber that keeps live runs in the archive, as ingest keeps files.

For each live run under the archive's prefix it records the run in the catalog as soon as it
sees it (each state as reached), keeps the blocks it reads as checksummed segments in the store
(:mod:`labledger.acquire.segments`), trims from Redis only what a durable segment holds, and
streams the same blocks into the run's Zarr arrays. Once every stream is sealed it writes the
arrays' last chunks and the run's manifest, and one catalog commit names them and says the run
``closed`` (or ``aborted``/``failed``) and whether it is ``complete``.

Killed at any moment (``kill -9``) and started again, a saver resumes each run from its newest
whole segment: the arrays are made again from the segments, the rest is read from Redis, where
nothing unsaved was trimmed. No block is lost or kept twice.

>>> import threading
>>> saver, stop = Saver(la.catalog, la.store, la.live), threading.Event()
>>> stop.set()                              # `labledger saver` sets it on Ctrl-C or SIGTERM
>>> saver.serve(stop)                       # saves until stop is set: here, returns at once
>>> saver.saved
[]
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

import numpy as np
import redis

import labledger.acquire.mirror as mirror
import labledger.acquire.segments as segments
from labledger.acquire.site import LiveSite
from labledger.catalog import Catalog
from labledger.catalog import live as catalog_live
from labledger.errors import Busy, Conflict, RunConflict, first_line
from labledger.formats.base import tree_node
from labledger.ids import author
from labledger.live import (
    Block,
    ChannelSpec,
    Cursor,
    Follower,
    RunInfo,
    State,
    abandon,
    run_info,
    trim,
)
from labledger.machine.configuration import wiring_resolver
from labledger.machine.logs import Logs
from labledger.records import (
    ENDED,
    LIVE,
    ChannelRecord,
    RunRecord,
    RunStateRecord,
    SourceRecord,
)
from labledger.store import ArrayWriter, Store, write_group
from labledger.store.dtypes import to_text
from labledger.store.layout import data_path, source_key
from labledger.structures import WAIVED_KEY, Against, Structures

log = logging.getLogger(__name__)

FLUSH_BYTES = 4 << 20  # a segment once this much is read...
FLUSH_SECONDS = 0.5  # ...or this long after the first block not yet kept
READ_TIMEOUT = 0.1  # a read's wait: how soon a seal is seen
KEPT_IN_REDIS = 600  # seconds a saved run's (trimmed) keys stay in Redis for late followers
MANIFEST = "live.json"
_CLOSING = 0.01  # s between looks at a run whose streams are sealed and that is not closed yet
HOLD_SECONDS = 3.0  # a saver's hold on a run: renewed at each read, lost 3 s after a kill

# One saver a run: two would write segments of the same numbers. KEYS: hold; ARGV: token, ms
_HOLD = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
"""
_LET_GO = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


@dataclass
class SavedRun:
    """What one run's save did: its number, final state, blocks kept, segments written."""

    run: int
    state: str
    blocks: int
    segments: int
    complete: bool


class RunSaver:
    """Saves one live run, from where a previous saver left it."""

    def __init__(
        self,
        catalog: Catalog,
        store: Store,
        site: LiveSite,
        run: int,
        *,
        flush_bytes: int = FLUSH_BYTES,
        flush_seconds: float = FLUSH_SECONDS,
    ) -> None:
        self.catalog, self.store, self.site, self.run = catalog, store, site, run
        self.client: redis.Redis = site.client
        self.keys = site.keys(run)
        self.structures = Structures(catalog)  # a run's tree and always-saved channels
        self.resolver = wiring_resolver(Logs(catalog))
        self.flush_bytes, self.flush_seconds = flush_bytes, flush_seconds
        self.blocks = 0
        self.segments = 0
        self._token = uuid.uuid4().hex
        self._hold_key = f"{self.keys.info}:saver"
        self._hold_script = self.client.register_script(_HOLD)

    def _hold(self) -> None:
        """Take or keep this saver's hold on the run; :class:`Busy` if another saver has it."""
        args: list[str | int] = [self._token, int(HOLD_SECONDS * 1000)]
        if not self._hold_script(keys=[self._hold_key], args=args):
            raise Busy(f"run {self.run} is being saved by another saver; it is left to that one")

    def save(self, stop: threading.Event | None = None) -> SavedRun | None:
        """Save the run until it has ended and is recorded (None: ``stop`` was set first).
        :class:`Busy` if another saver is saving it. The hold is renewed by a thread for as
        long as this runs (a rebuild or a close may take longer than the hold), and checked
        again before each segment and before the run's end is recorded."""
        self._hold()
        done = threading.Event()

        def renew() -> None:
            while not done.wait(HOLD_SECONDS / 3):
                try:
                    self._hold()
                except (Busy, redis.RedisError):
                    return  # lost: the next check in the saving thread says so

        keeper = threading.Thread(target=renew, name=f"labledger-hold-{self.run}", daemon=True)
        keeper.start()
        try:
            return self._save(stop)
        finally:
            done.set()
            keeper.join()
            with contextlib.suppress(redis.RedisError):
                self.client.register_script(_LET_GO)(keys=[self._hold_key], args=[self._token])

    def _save(self, stop: threading.Event | None) -> SavedRun | None:
        row, info = mirror.record(self.catalog, self.client, self.keys)
        if row.state in ENDED:  # saved before: what is left is Redis's copy
            self._release(info)
            return SavedRun(self.run, row.state, 0, 0, row.complete)
        prefix = row.store_prefix
        newest = segments.newest(self.store, prefix)
        self.segments = 0 if newest is None else newest.number + 1
        cursor = Cursor(self.run, newest.next) if newest is not None else None
        follower = Follower(self.client, self.run, cursor=cursor, prefix=self.site.prefix)
        writers: dict[str, ArrayWriter] = {}
        pending: list[Block] = []
        size, since, state = 0, 0.0, follower.state
        try:
            while stop is None or not stop.is_set():
                self._hold()
                found = follower.read(timeout=READ_TIMEOUT)
                if not writers and follower.specs:
                    writers = self._rebuild(prefix, follower.specs)
                if follower.state is not state:
                    state = follower.state
                    mirror.record(self.catalog, self.client, self.keys)
                if found and not pending:
                    since = time.monotonic()
                pending += found
                size += sum(b.data.nbytes for b in found)
                due = size >= self.flush_bytes or time.monotonic() - since >= self.flush_seconds
                if pending and (due or follower.sealed):
                    self._keep(prefix, pending, follower.positions, writers)
                    pending, size = [], 0
                if follower.sealed:
                    saved = self._finish(row, follower, writers, stop)
                    if saved is None:  # stopped before the run's last step
                        for writer in writers.values():
                            writer.abort()
                    return saved
            for writer in writers.values():
                writer.abort()
            return None
        except BaseException:
            for writer in writers.values():
                writer.abort()
            raise

    def _rebuild(self, prefix: str, specs: Mapping[str, ChannelSpec]) -> dict[str, ArrayWriter]:
        """The run's arrays made again from its segments, open for the blocks still to come."""
        self.store.delete(data_path(prefix))
        writers = {
            name: ArrayWriter(self.store, _array_path(prefix, name), spec.shape, spec.dtype)
            for name, spec in specs.items()
        }
        for key in segments.keys(self.store, prefix):
            for block in segments.read(self.store, key, specs).blocks:
                writers[block.channel].write(block.data)
        return writers

    def _keep(
        self,
        prefix: str,
        blocks: list[Block],
        after: Mapping[str, int],
        writers: Mapping[str, ArrayWriter],
    ) -> None:
        """Blocks read: a durable segment first, then trimmed from Redis, then into arrays."""
        self._hold()
        segments.write(self.store, prefix, self.segments, blocks, after)
        self.segments += 1
        self.blocks += len(blocks)
        last: dict[str, int] = {}
        for block in blocks:
            last[block.channel] = block.seq
        for channel, seq in last.items():
            trim(self.client, self.keys, channel, seq)
        for block in blocks:
            writers[block.channel].write(block.data)

    def _finish(
        self,
        row: RunRecord,
        follower: Follower,
        writers: Mapping[str, ArrayWriter],
        stop: threading.Event | None,
    ) -> SavedRun | None:
        """The arrays closed, the manifest written, and one commit that says the run ended
        (None: ``stop`` was set while the run had not ended)."""
        info = self._ended(stop)
        if info is None:
            return None
        for writer in writers.values():
            writer.close()
        prefix = row.store_prefix
        channels = [
            ChannelRecord(
                key=name,
                store_path=_array_path(prefix, name),
                shape=[writers[name].rows, *spec.shape] if name in writers else [0, *spec.shape],
                dtype=to_text(np.dtype(spec.dtype)),
                attrs={"rate": spec.rate},
                axes=[{"name": "time", "unit": "s", "start": 0.0, "step": 1.0 / spec.rate}],
            )
            for name, spec in info.channels.items()
        ]
        kind = self.structures.get(info.structure)
        tree = kind.tree(info.metadata, channels) if kind else plain_tree(info, channels)
        write_group(self.store, data_path(prefix), {"run": self.run, "id": row.id})
        write_group(self.store, data_path(prefix, 0), tree.get("attrs"))
        manifest = self._manifest(prefix, info, follower)
        key = source_key(prefix, 0, MANIFEST)
        self.store.write(key, manifest)
        self.store.persist(prefix)
        final = info.state
        reached = mirror.reached(self.client, self.keys)
        at = next((s.at for s in reached if s.state == final.value), datetime.now(UTC))
        unsealed = sorted(n for n, s in follower.seals.items() if s.end != "sealed")
        run = mirror.as_record(info)
        run.id, run.store_prefix = row.id, prefix
        run.n_channels = len(channels)
        run.data_bytes = sum(int(np.prod(c.shape)) * np.dtype(c.dtype).itemsize for c in channels)
        run.started = next((s.at for s in reached if s.state == "started"), row.created)
        run.ended = at
        if final is not State.CLOSED:
            run.complete, run.reason = False, info.reason or final.value
        elif unsealed:
            run.complete, run.reason = False, f"incomplete: {', '.join(unsealed)} not sealed"
        elif kind is not None:  # complete unless an always-saved channel is missing
            waivers = kind.check_waivers(info.metadata.get(WAIVED_KEY))
            Against(kind, waivers, self.resolver).judge(run, [c.key for c in channels])
        else:
            run.complete, run.reason = True, None
        source = SourceRecord(
            run_id=row.id,
            position=0,
            name=MANIFEST,
            size=len(manifest),
            format=LIVE,
            sha256=hashlib.sha256(manifest).hexdigest(),
            store_key=key,
            original_path=f"redis://{self.site.url.split('://', 1)[-1]} {self.keys.info}",
            modified=at,
            ingested=datetime.now(UTC),
            ingested_by=author(),
            tree=tree,
            problems=[run.reason] if run.reason else [],
        )
        if not any(s.state == final.value for s in reached):
            reached.append(RunStateRecord(run_id=row.id, state=final.value, at=at))
        for state in reached:
            if state.state == final.value:
                state.reason = run.reason
        self._hold()  # still this saver's run: no other took it over meanwhile
        catalog_live.finish(self.catalog, run, reached, [(source, channels)])
        self._release(info)
        return SavedRun(self.run, final.value, self.blocks, self.segments, run.complete)

    def _ended(self, stop: threading.Event | None) -> RunInfo | None:
        """The run once it has ended: its streams are sealed before it is closed, so wait for
        the writer's last step; a run whose writer is gone is marked failed, in Redis first.
        None if ``stop`` is set meanwhile."""
        info = run_info(self.client, self.keys)
        while not info.state.final:
            if stop is not None and stop.is_set():
                return None
            if not info.writer:
                with contextlib.suppress(Conflict):  # it ended meanwhile
                    abandon(self.client, self.keys, "its writer stopped renewing its lease")
            else:
                time.sleep(_CLOSING)
            info = run_info(self.client, self.keys)
        return info

    def _manifest(self, prefix: str, info: RunInfo, follower: Follower) -> bytes:
        """The run's one raw "file": its declaration, how each stream ended, and every segment
        with its sha256 (the segments hold the raw blocks)."""
        kept = [
            {"key": key, "sha256": key.rsplit("-", 1)[-1]}
            for key in segments.keys(self.store, prefix)
        ]
        seals = {
            name: {"end": s.end, "blocks": s.blocks, "samples": s.samples}
            for name, s in follower.seals.items()
        }
        document = {
            "run": info.run,
            "structure": info.structure,
            "metadata": info.metadata,
            "channels": [json.loads(spec.to_json()) for spec in info.channels.values()],
            "seals": seals,
            "segments": kept,
        }
        return json.dumps(document, indent=1, sort_keys=True).encode()

    def _release(self, info: RunInfo) -> None:
        """Redis keeps a saved run a while for late followers (its blocks trimmed), then
        forgets it."""
        try:
            names = self.keys.all(len(info.channels))
            with self.client.pipeline(transaction=False) as pipe:
                for name in names:
                    pipe.expire(name, KEPT_IN_REDIS)
                pipe.execute()
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            log.warning("run %s: its keys stay in Redis (%s)", self.run, first_line(exc))


def plain_tree(info: RunInfo, channels: list[ChannelRecord]) -> dict[str, Any]:
    """A live run's tree when its structure is not one the archive has: its channels side by
    side."""
    root = tree_node(f"run {info.run}", "file", {"structure": info.structure, **info.metadata})
    for channel in channels:
        root["children"].append(
            tree_node(
                channel.key,
                "channel",
                channel.attrs,
                key=channel.key,
                shape=channel.shape,
                dtype=channel.dtype,
            )
        )
    return root


def _array_path(prefix: str, channel: str) -> str:
    return data_path(prefix, 0, [channel])


class Saver:
    """Saves every live run under the archive's prefix: one thread a run, for as long as it
    serves. Runs Redis already holds when it starts (a saver restarted) are taken up first."""

    def __init__(self, catalog: Catalog, store: Store, site: LiveSite, **options: Any) -> None:
        self.catalog, self.store, self.site, self.options = catalog, store, site, options
        self.saved: list[SavedRun] = []
        self.failures: dict[int, str] = {}  # run -> why its save stopped
        self._busy: dict[int, threading.Thread] = {}
        self._refused: set[int] = set()
        self._lock = threading.Lock()

    def serve(self, stop: threading.Event | None = None, *, poll: float = 0.5) -> None:
        """Save runs until ``stop`` is set: those live now, then each as it is created."""
        stop = stop or threading.Event()
        events = f"{self.site.prefix}:runs"
        last = "$"
        try:
            while not stop.is_set():
                try:
                    for run in self.waiting():
                        self._start(run, stop)
                    wait = int(poll * 1000)
                    reply = self.site.client.xread({events: last}, count=1000, block=wait)
                except (redis.ConnectionError, redis.TimeoutError) as exc:
                    log.warning("Redis at %s is not answering (%s)", self.site.url, first_line(exc))
                    stop.wait(poll)
                    continue
                for _, entries in cast(list[Any], reply or []):
                    last = entries[-1][0].decode()
        finally:
            stop.set()
            for thread in list(self._busy.values()):
                thread.join()

    def waiting(self) -> list[int]:
        """The runs Redis holds under the prefix that no thread is saving and that are not
        recorded as ended (by number)."""
        pattern = f"{self.site.prefix}:run:*"
        numbers = []
        for key in self.site.client.scan_iter(match=pattern, count=1000):
            tail = key.decode()[len(pattern) - 1 :]
            if tail.isdigit():
                numbers.append(int(tail))
        with self._lock:
            busy = {n for n, t in self._busy.items() if t.is_alive()}
        done = {r.number for r in self.catalog.by_numbers(numbers) if r.state in ENDED}
        return sorted(set(numbers) - busy - done - self._refused)

    def _start(self, run: int, stop: threading.Event) -> None:
        def save() -> None:
            try:
                saver = RunSaver(self.catalog, self.store, self.site, run, **self.options)
                found = saver.save(stop)
                if found is not None:
                    self.saved.append(found)
                    self.failures.pop(run, None)
            except Busy:  # another saver (another process) is saving it
                pass
            except RunConflict as exc:  # its number is another run's: trying again cannot help
                self.failures[run] = first_line(exc)
                self._refused.add(run)
                log.error("run %s is not saved: %s", run, first_line(exc))
            except Exception as exc:  # told, and tried again at the next poll
                self.failures[run] = first_line(exc)
                log.error("run %s was not saved: %s; trying again", run, first_line(exc))
                stop.wait(1.0)

        thread = threading.Thread(target=save, name=f"labledger-saver-{run}", daemon=True)
        with self._lock:
            self._busy[run] = thread
        thread.start()
