"""The Redis a live run is on: a client with timeouts, and Redis not answering turned into an
error the DAQ side can act on.

>>> client = connect("redis://127.0.0.1:6379/0")
>>> where(client)
'127.0.0.1:6379'
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from labledger.errors import first_line
from labledger.live.errors import LiveUnavailable

DEFAULT_URL = "redis://127.0.0.1:6379/0"


def connect(url: str = DEFAULT_URL, *, timeout: float = 10.0) -> redis.Redis:
    """A client of the Redis at ``url`` (nothing is sent until it is used): a command that gets
    no answer within ``timeout`` seconds is :class:`LiveUnavailable`, not a hang. A connection
    that breaks is tried again twice, 50 and 100 ms later, not for seconds: a DAQ keeps its
    blocks while Redis is away and needs to know soon."""
    return redis.Redis.from_url(
        url,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        decode_responses=False,
        retry=Retry(ExponentialBackoff(cap=0.1, base=0.05), retries=2),
    )


def where(client: redis.Redis) -> str:
    """``host:port`` (or the socket path) of a client's Redis, for messages."""
    kwargs = client.connection_pool.connection_kwargs
    if "path" in kwargs:
        return str(kwargs["path"])
    return f"{kwargs.get('host', 'localhost')}:{kwargs.get('port', 6379)}"


@contextmanager
def answering(client: redis.Redis, doing: str) -> Iterator[None]:
    """Run Redis commands; Redis not answering becomes one line saying what was not done."""
    try:
        yield
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        raise LiveUnavailable(
            f"Redis at {where(client)} is not answering ({first_line(exc)}): {doing}"
        ) from None
