"""Identifiers: of records (time-sortable UUIDv7, RFC 9562), and of who made them (user@host)."""

from __future__ import annotations

import getpass
import os
import re
import socket
import time
import uuid
from collections.abc import Iterable, Iterator
from typing import Any

from labledger.errors import InvalidArgument


def uuid7() -> str:
    """A new UUIDv7 as text: 48 bits of Unix milliseconds, then randomness.

    Ids made later sort after ids made earlier (to the millisecond), which keeps catalog indexes
    append-only and lets a listing by id read in creation order.

    >>> a, b = uuid7(), uuid7()
    >>> len(a), a[14]
    (36, '7')
    """
    ms = time.time_ns() // 1_000_000
    value = (ms & ((1 << 48) - 1)) << 80 | int.from_bytes(os.urandom(10), "big")
    value = (value & ~(0xF << 76)) | (0x7 << 76)  # version 7
    value = (value & ~(0x3 << 62)) | (0x2 << 62)  # RFC 4122 variant
    return str(uuid.UUID(int=value))


def made_at(record_id: str) -> float | None:
    """When a UUIDv7 was made (Unix seconds, to the millisecond); None if it is not one.

    >>> made_at("019ad2fc-5f18-7abc-8def-0123456789ab"), made_at("runs")
    (1764476346.136, None)
    """
    try:
        value = uuid.UUID(record_id)
    except ValueError:
        return None
    return (value.int >> 80) / 1000 if value.version == 7 else None


DEFAULT_PROJECT = "default"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def check_reason(reason: object, what: str) -> str:
    """A reason that says something, stripped: a flag, a withdrawal or a restoration keeps it
    for whoever reads the history.

    >>> check_reason("  probe arcing ", "a flag")
    'probe arcing'
    """
    if not isinstance(reason, str) or not reason.strip():
        raise InvalidArgument(
            f"{what} needs a reason: say why (e.g. reason='power outage'); it is kept with it "
            "for whoever reads the history"
        )
    return reason.strip()


def check_name(name: object, what: str) -> None:
    """Refuse a name of a user or a project that is not 1 to 64 letters, digits, ``_.-``.

    >>> check_name("ishtar-2026", "project")
    """
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InvalidArgument(
            f"{what} {name!r}: 1 to 64 letters, digits, '_', '.' or '-', starting with a letter "
            "or digit"
        )


def short(record_id: str) -> str:
    """The id as people read and type it: its millisecond and 12 random bits. Ids made in one
    millisecond share their first 13 characters, so fewer would often name several records.

    >>> short("01a2001e-ed2a-7abc-8def-0123456789ab")
    '01a2001e-ed2a-7abc'
    """
    return record_id[:18]


def author() -> str:
    """Who is doing this, as ``user@host``, for the records that say who made what."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # a container's user with no passwd entry
        user = f"uid {os.getuid()}"
    return f"{user}@{socket.gethostname()}"


# SQLite refuses statements with more than 32,766 parameters, and long IN lists plan badly on
# both databases: long lists of ids or numbers are asked this many at a time
IN_BATCH = 5000


def batches(values: Iterable[Any], size: int = IN_BATCH) -> Iterator[list[Any]]:
    """``values`` without repeats, in lists of at most ``size``, for ``IN (...)`` queries.

    >>> [len(b) for b in batches(range(12_000))]
    [5000, 5000, 2000]
    """
    unique = list(dict.fromkeys(values))
    for i in range(0, len(unique), size):
        yield unique[i : i + size]
