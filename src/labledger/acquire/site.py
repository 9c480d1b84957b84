"""Where an archive's live runs are: the Redis it uses and the key prefix its runs are under.

Two archives may share one Redis: each has a prefix of its own, made once and kept in its
catalog's settings. The Redis is ``[live] redis = "redis://host:6379/0"`` in the archive's
``labledger.toml``, else ``$LABLEDGER_REDIS``, else Redis on this machine.

>>> site = LiveSite("redis://127.0.0.1:6379/0", "labledger:doc")
>>> site.keys(1271).info
'labledger:doc:run:1271'
"""

from __future__ import annotations

import os
import uuid
from functools import cached_property
from typing import Any

import redis

from labledger.catalog import Catalog
from labledger.live import RunKeys, connect
from labledger.live.connection import DEFAULT_URL

ENVIRONMENT = "LABLEDGER_REDIS"
_PREFIX_SETTING = "live_prefix"


class LiveSite:
    """The Redis (``url``) and key ``prefix`` of an archive's live runs."""

    def __init__(self, url: str, prefix: str) -> None:
        self.url, self.prefix = url, prefix

    @classmethod
    def of(cls, catalog: Catalog, config: dict[str, Any] | None = None) -> LiveSite:
        """The site of the archive whose catalog is ``catalog`` and whose ``labledger.toml``
        says ``config`` (its ``[live]`` table, if any)."""
        url = (config or {}).get("redis") or os.environ.get(ENVIRONMENT) or DEFAULT_URL
        prefix = catalog.setting_once(_PREFIX_SETTING, f"labledger:{uuid.uuid4().hex[:12]}")
        return cls(str(url), str(prefix))

    @cached_property
    def client(self) -> redis.Redis:
        return connect(self.url)

    def keys(self, run: int) -> RunKeys:
        return RunKeys(self.prefix, run)

    def __repr__(self) -> str:
        return f"<LiveSite {self.url} {self.prefix}>"
