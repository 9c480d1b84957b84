"""The notification streams (server-sent events): one poller shared by every subscriber, and
the caps on how many streams one key and the whole server may hold open.

Each stream once polled the catalog from a worker thread of its own twice a second: 150 idle
streams kept the thread pool busy and a fresh request waited seconds (bench/streams.py). Now
one task polls, in one worker thread, finds once which projects each event is about, and
queues each subscriber the events it may read; a subscriber only waits on its queue.

The per-key cap counts the key as authenticated (its id), not as spelled: ``Bearer``, ``bearer``
and ``X-API-Key`` are one key. Anonymous callers (``--public``) are counted by client address.
A refusal tells the caller the limit's name, never how many streams the server holds; that
goes to the server's log, for its admin.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import anyio
from fastapi.responses import StreamingResponse
from sqlalchemy.exc import SQLAlchemyError
from starlette.types import Receive, Scope, Send

from labledger.access import Principal
from labledger.catalog import Catalog
from labledger.errors import Busy, InvalidArgument, LabledgerError
from labledger.notifications import KINDS, Watcher, public
from labledger.wire import SUBSCRIBED

POLL_S, HEARTBEAT_S, REAUTHENTICATE_S = 0.5, 15.0, 5.0
_QUEUED_MOST = 1000  # events waiting for a subscriber that does not read: it is ended
_log = logging.getLogger(__name__)


@dataclass(eq=False)
class Subscriber:
    """One open stream: who (re-authenticated as the stream lasts), what it listens to."""

    who: Principal
    headers: Mapping[str, str]
    kinds: frozenset[str]
    key: str  # what the per-key cap counts: the key's identity, see _holder()
    queue: asyncio.Queue[dict[str, Any]] = field(
        default_factory=lambda: asyncio.Queue(_QUEUED_MOST)
    )
    # set once the poller's rounds include it: from then on it hears whatever is recorded
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    ended: bool = False
    why: str = ""  # told to the client as the stream's last line

    def end(self, why: str) -> None:
        self.ended, self.why = True, why
        self.ready.set()
        with contextlib.suppress(asyncio.QueueFull):  # full: it ends once it reads them
            self.queue.put_nowait({})  # wakes it

    def may_read(self, projects: frozenset[str] | None) -> bool:
        return projects is not None and all(self.who.can("read", p) for p in projects)


class Streams:
    """The open notification streams of one server, at most ``total`` of them and
    ``per_key`` with one key, fed by one poller of ``catalog`` while any is open; their keys
    are checked again every ``recheck_s`` seconds."""

    def __init__(
        self,
        catalog: Catalog,
        authenticate: Callable[[Mapping[str, str]], Principal],
        *,
        total: int,
        per_key: int,
        recheck_s: float = REAUTHENTICATE_S,
    ):
        self._catalog, self._authenticate = catalog, authenticate
        self.total, self.per_key, self.recheck_s = total, per_key, recheck_s
        self._open: set[Subscriber] = set()
        self._keys: Counter[str] = Counter()
        self._poller: asyncio.Task[None] | None = None

    def open(
        self, who: Principal, headers: Mapping[str, str], kinds: str, address: str
    ) -> Subscriber:
        """A new subscriber for ``who``, calling from ``address``, or :class:`Busy` naming the
        cap it is over. Called in the event loop (as are :meth:`close` and the poller's
        fan-out): no lock is needed."""
        wanted = frozenset(k.strip() for k in kinds.split(",") if k.strip())
        if not wanted or wanted - set(KINDS):
            raise InvalidArgument(f"kinds={kinds[:80]!r}: some of {', '.join(KINDS)}")
        key = _holder(who, address)
        if len(self._open) >= self.total:
            _log.warning(
                "%d notification streams are open, the most this server allows (max_streams): "
                "a new one was refused; raise it with `labledger serve --max-streams N`",
                len(self._open),
            )
            raise Busy(
                "this server holds as many notification streams as it allows (max_streams); "
                "try again later"
            )
        if self._keys[key] >= self.per_key:
            raise Busy(
                f"{who.name} holds as many notification streams as one key (or one address "
                f"without a key) may (max_streams_per_key={self.per_key}); close one first"
            )
        subscriber = Subscriber(who, dict(headers), wanted, key)
        self._open.add(subscriber)
        self._keys[key] += 1
        if self._poller is None:
            self._poller = asyncio.get_running_loop().create_task(self._poll())
        return subscriber

    def close(self, subscriber: Subscriber) -> None:
        if subscriber in self._open:
            self._open.discard(subscriber)
            self._keys[subscriber.key] -= 1
            if self._keys[subscriber.key] <= 0:
                del self._keys[subscriber.key]

    def response(self, subscriber: Subscriber, ends: float) -> StreamingResponse:
        """The stream's HTTP response: it holds its place until the response is done, however
        it ends (timeout, client gone, key revoked)."""
        return _Held(
            self._events(subscriber, ends),
            release=lambda: self.close(subscriber),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache"},
        )

    async def _events(self, subscriber: Subscriber, ends: float) -> AsyncIterator[str]:
        # it waits on its queue only: the server ends it when the client goes (Starlette
        # listens for the disconnect, or a heartbeat's write fails), the poller when its key
        # stops being valid. Its first line is sent once it is subscribed, so a client that
        # waits for it knows that whatever is recorded from then on reaches it
        while not subscriber.ready.is_set() and time.monotonic() < ends:
            with anyio.move_on_after(max(0.0, min(ends - time.monotonic(), HEARTBEAT_S))):
                await subscriber.ready.wait()
            if not subscriber.ready.is_set():  # the catalog does not answer yet: still here
                yield ": still here\n\n"
        yield f"{SUBSCRIBED}\n\n"
        beat = time.monotonic()
        while not subscriber.ended and time.monotonic() < ends:
            wait = min(ends, beat + HEARTBEAT_S) - time.monotonic()
            event: dict[str, Any] = {}
            with anyio.move_on_after(max(0.0, wait)):
                event = await subscriber.queue.get()
            while event and not subscriber.ended:
                yield f"event: {event['kind']}\ndata: {json.dumps(event)}\n\n"
                event = {} if subscriber.queue.empty() else subscriber.queue.get_nowait()
            if time.monotonic() - beat >= HEARTBEAT_S:
                beat = time.monotonic()
                yield ": still here\n\n"
        if subscriber.why:
            yield f": ended: {subscriber.why}\n\n"

    async def _poll(self) -> None:
        """Poll while any stream is open; news is what is recorded after the poller starts."""
        try:
            watcher: Watcher | None = None
            checked = time.monotonic()
            while self._open:
                subscribers = list(self._open)
                recheck = time.monotonic() - checked > self.recheck_s
                checked = time.monotonic() if recheck else checked
                try:
                    if watcher is None:  # what is recorded before it is made is not news
                        watcher = await anyio.to_thread.run_sync(Watcher, self._catalog)
                    news, invalid = await anyio.to_thread.run_sync(
                        self._round, watcher, subscribers if recheck else []
                    )
                except (LabledgerError, SQLAlchemyError):  # the catalog did not answer: the
                    news, invalid = [], []  # streams stay open, the next round asks again
                else:
                    for subscriber in subscribers:  # this round's news and all later reach it
                        subscriber.ready.set()
                for subscriber in invalid:  # a revoked or expired key ends its streams
                    subscriber.end("the API key is no longer valid")
                for subscriber in subscribers:
                    for event, projects in news:
                        if event["kind"] in subscriber.kinds and subscriber.may_read(projects):
                            try:
                                subscriber.queue.put_nowait(event)
                            except asyncio.QueueFull:  # it does not read: it ends
                                subscriber.ended = True
                                break
                await anyio.sleep(POLL_S)
        finally:
            self._poller = None

    def _round(
        self, watcher: Watcher, recheck: list[Subscriber]
    ) -> tuple[list[tuple[dict[str, Any], frozenset[str] | None]], list[Subscriber]]:
        """In a worker thread: the news, each with the projects of its runs (None: no runs,
        or some that do not exist); and of ``recheck``, those whose key is no longer valid
        (the others get their principal afresh: roles may have changed)."""
        invalid = []
        for subscriber in recheck:
            try:
                subscriber.who = self._authenticate(subscriber.headers)
            except LabledgerError:
                invalid.append(subscriber)
        news = watcher.news()
        numbers = sorted({n for event in news for n in event["_runs"]})
        project = {r.number: r.project for r in self._catalog.by_numbers(numbers)}
        found = []
        for event in news:
            runs = event["_runs"]
            known = bool(runs) and all(n in project for n in runs)
            found.append((public(event), frozenset(project[n] for n in runs) if known else None))
        return found, invalid


def _holder(who: Principal, address: str) -> str:
    """What the per-key cap counts for ``who``: the key as authenticated (its id), else the
    user (another front), else, for anonymous callers, their client address."""
    if who.key is not None:
        return f"key {who.key}"
    if who.user is not None:
        return f"user {who.user}"
    return f"anonymous from {address}"


class _Held(StreamingResponse):
    """A streaming response that calls ``release`` when it is done, however it ends."""

    def __init__(self, content: Any, *, release: Callable[[], None], **kwargs: Any):
        super().__init__(content, **kwargs)
        self._release = release

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._release()
