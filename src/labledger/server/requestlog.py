"""The request log: one JSON line per request, written when its answer has been sent.

A line holds when the request came (``time``, UTC, ISO 8601), from where (``remote``), who
(``user``: the key's user, ``"-"`` when anonymous or not authenticated), ``method``, ``path``,
``query`` (the values of parameters named like a secret replaced by ``***``), ``status``, the
``bytes`` of the body sent, ``duration_ms`` and the client's ``agent``. Headers are never
logged, so neither is an API key (``Authorization``, ``X-API-Key``). JSON lines rather than
Apache's combined format: a user name or a path may hold spaces and quotes, and ``jq`` or
``pandas.read_json(lines=True)`` read it as it is.

>>> import logging
>>> from labledger.server import create_app
>>> app = RequestLog(create_app(la), logging.getLogger("labledger.requests"))
"""

from __future__ import annotations

import json
import logging
import re
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode

USER_KEY = "labledger_user"  # where a request's state holds its user, for the log
_SECRET = re.compile(r"key|token|secret|pass|auth|sig|credential|session|cookie", re.I)
_MOST_QUERY = 2000  # characters of a query kept: a line stays a line


def redacted(query: bytes) -> str:
    """A query string with the value of every parameter named like a secret replaced.

    >>> redacted(b"api_key=ll_1_s3cret&slice=0:100&where=%7B%7D")
    'api_key=***&slice=0:100&where=%7B%7D'
    """
    text = query.decode("latin-1")
    if _SECRET.search(unquote(text)):  # else as sent: parsing costs, and most name no secret
        pairs = parse_qsl(text, keep_blank_values=True)
        text = urlencode([(k, "***" if _SECRET.search(k) else v) for k, v in pairs], safe="*:,/")
    return text if len(text) <= _MOST_QUERY else text[:_MOST_QUERY] + "…"


class RequestLog:
    """ASGI middleware writing a line to ``logger`` (at INFO) for each HTTP request. The user
    is what the route's authentication put in the request's state under :data:`USER_KEY`."""

    def __init__(self, app: Any, logger: logging.Logger):
        self.app, self.logger = app, logger

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not self.logger.isEnabledFor(logging.INFO):
            return await self.app(scope, receive, send)
        scope.setdefault("state", {})  # the dict the route's Request.state writes into
        began, clock = datetime.now(UTC), time.perf_counter()
        answer = {"status": 0, "bytes": 0}

        async def sending(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                answer["status"] = message["status"]
            elif message["type"] == "http.response.body":
                answer["bytes"] += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, sending)
        except BaseException:
            answer["status"] = answer["status"] or 500  # what the server sends for a crash
            raise
        finally:
            self.logger.info(_line(scope, began, time.perf_counter() - clock, answer))


def _line(scope: dict[str, Any], began: datetime, seconds: float, answer: dict[str, int]) -> str:
    headers = dict(scope.get("headers", []))
    client = scope.get("client")
    user = scope["state"].get(USER_KEY)
    return json.dumps(
        {
            "time": began.isoformat(timespec="milliseconds"),
            "remote": client[0] if client else "-",
            "user": user or "-",
            "method": scope["method"],
            "path": scope["path"],
            "query": redacted(scope.get("query_string", b"")),
            "status": answer["status"],
            "bytes": answer["bytes"],
            "duration_ms": round(seconds * 1000, 3),
            "agent": headers.get(b"user-agent", b"").decode("latin-1"),
        },
        ensure_ascii=False,
    )
