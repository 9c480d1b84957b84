"""Named points of a write where a crash test stops the process, to kill it exactly there.

``LABLEDGER_STOP_AT="ingest.block:3"`` makes a process stop itself (SIGSTOP) the third time it
reaches ``stop_point("ingest.block")``; the test sees it stopped and sends SIGKILL, so the kill
lands at a known moment instead of after a guessed delay. Several points: comma-separated.
Without the variable (always, outside tests) a point costs one dictionary lookup.

>>> stop_point("ingest.block")  # nothing asked to stop here: goes on
"""

from __future__ import annotations

import os
import re
import signal
from collections import Counter
from functools import cache

from labledger.errors import InvalidArgument

VARIABLE = "LABLEDGER_STOP_AT"
POINTS = ("ingest.planned", "ingest.block", "ingest.persisted", "ingest.committed")


@cache
def _wanted(text: str) -> dict[str, int]:
    wanted = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, _, count = item.partition(":")
        if (
            name not in POINTS
            or not re.fullmatch(r"[0-9]{1,9}", count or "1")
            or int(count or 1) < 1
        ):
            raise InvalidArgument(
                f"{VARIABLE}={text!r}: each item is POINT[:N] with POINT one of "
                f"{', '.join(POINTS)} and N >= 1; unset it to run normally"
            )
        wanted[name] = int(count or 1)
    return wanted


_WANTED = os.environ.get(VARIABLE, "")
_seen: Counter[str] = Counter()


def stop_point(name: str) -> None:
    """Stop this process here if ``LABLEDGER_STOP_AT`` asks for this point, this time."""
    if not _WANTED:
        return
    count = _wanted(_WANTED).get(name)
    _seen[name] += 1
    if count == _seen[name]:
        os.kill(os.getpid(), signal.SIGSTOP)
