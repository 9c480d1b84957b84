"""Many clients at once: every answer checked, none lost or mixed (a short run of what
``bench/load.py`` does for a minute)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import labledger as ll
from labledger.access import Access
from labledger.server import create_app, serving
from labledger.server.loadcheck import Expected, load


def test_fifty_clients_each_get_their_own_bytes(tmp_path: Path) -> None:
    from labledger.sim import build

    la = ll.init(tmp_path / "archive")
    build(la, tmp_path / "daq", [1233, 1240])
    access = Access(la.catalog)
    access.add_user("load", project="default", role="reader", by="tests")
    key = access.create_key("load", scopes=["read"])
    channel = "PXI M6251/ai3"
    expected = Expected(1233, channel, la.runs[1233].channels[channel][...],
                        {"where": '{"gas": "Ar"}'}, [1233, 1240])  # fmt: skip
    with serving(create_app(la)) as url:
        report = asyncio.run(load(url, key, expected, clients=50, each=6))
    assert report.requests == 50 * 6, report  # every request answered; the rate is bench/load.py's
    assert report.errors == 0 and report.mismatches == 0, report.problems
    la.close()
