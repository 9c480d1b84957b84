"""Data quality: flags on whole runs and intervals (append-only, with supersede and withdraw),
runs.search(quality=...), good-run lists as versioned, hashed snapshots with livetime, the CLI,
and every refusal leaving the catalog as it was. Real archives of simulated shots, on SQLite
and PostgreSQL."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, func, select

import labledger as ll
from labledger.catalog import quality as records
from labledger.catalog.schema import flag_table, good_run_list_table
from labledger.errors import Conflict, DataWarning, InvalidArgument, LabledgerError, NotFound
from labledger.quality import Flag, GoodRunList, Period
from labledger.sim import write_shot
from tests.conftest import cli, snapshot

SHOTS = range(1256, 1264)  # argon up to 1259, helium from 1260; each 0.7 s long
ARGON = [1256, 1257, 1258, 1259]
DURATION = 0.7


@pytest.fixture
def shots(archive: ll.Archive, tmp_path: Path) -> ll.Archive:
    """An archive of eight simulated shots, on SQLite and on PostgreSQL."""
    archive.ingest([write_shot(tmp_path, n) for n in SHOTS])
    return archive


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """An archive folder (SQLite) of the same shots, for the command line."""
    path = tmp_path / "archive"
    with ll.init(path) as la:
        la.ingest([write_shot(tmp_path, n) for n in SHOTS])
    return path


def numbers(runs: list[ll.Run]) -> list[int]:
    return [r.number for r in runs]


def rows(la: ll.Archive, table: Any) -> int:
    with la.catalog.reading() as session:
        return int(session.scalar(select(func.count()).select_from(table)) or 0)


def refused(
    la: ll.Archive, error: type[Exception], match: str, action: Callable[[], object]
) -> None:
    """``action`` fails with ``error`` in one line, and the archive is exactly as it was."""
    before = snapshot(la)
    with pytest.raises(error, match=match) as caught:
        action()
    assert isinstance(caught.value, LabledgerError)
    assert len(str(caught.value).splitlines()) == 1
    assert snapshot(la) == before


# -- flags -----------------------------------------------------------------------------------------


def test_whole_run_flags_and_search_by_quality(shots: ll.Archive) -> None:
    flag = shots.flag(runs=range(1256, 1258), subsystem="power", severity="bad", reason="outage")
    assert isinstance(flag, Flag) and flag.status == "active" and flag.supersedes is None
    assert flag.periods == (Period(1256), Period(1257)) and flag.whole_runs
    assert flag.subsystem == "power" and flag.reason == "outage" and "@" in flag.author
    assert flag.where == "runs 1256-1257"
    # a warning and an interval do not make a run bad; a bad flag on a helium run does
    shots.flag(run=1258, subsystem="probe", severity="warning", reason="noisy")
    shots.flag(run=1259, start=0.1, stop=0.2, subsystem="probe", severity="bad", reason="arc")
    shots.flag(runs=[shots.runs[1261]], subsystem="vacuum", severity="bad", reason="leak")

    assert numbers(shots.runs.search(quality="good")) == [1258, 1259, 1260, 1262, 1263]
    assert numbers(shots.runs.search(quality="bad")) == [1256, 1257, 1261]
    assert numbers(shots.runs.search(quality="good", gas="Ar")) == [1258, 1259]
    assert numbers(shots.runs.search(quality="bad", gas="He")) == [1261]
    assert numbers(shots.runs.search()) == list(SHOTS)  # no quality: all of them

    assert shots.runs[1256].flags == [flag]
    assert [f.severity for f in shots.runs[1258].flags] == ["warning"]
    assert shots.runs[1260].flags == []
    active = shots.flags.active(range(1256, 1261))
    assert sorted(active) == [1256, 1257, 1258, 1259, 1260]
    assert active[1257] == [flag] and active[1260] == []
    assert shots.flags[flag.id] == flag
    assert [f.subsystem for f in shots.flags.list(subsystem="probe")] == ["probe", "probe"]
    assert shots.flags.list(run=1261)[0].reason == "leak"
    assert shots.flags.version == 4


def test_an_interval_flag(shots: ll.Archive) -> None:
    flag = shots.flag(
        run=1258, start=0.1, stop=0.35, subsystem="probe", severity="bad", reason="arc"
    )
    assert flag.periods == (Period(1258, 0.1, 0.35),) and not flag.whole_runs
    assert not flag.periods[0].whole and str(flag.periods[0]) == "run 1258 from 0.1 to 0.35 s"
    assert flag.covers(1258) and not flag.covers(1259)
    # the same interval on several runs
    many = shots.flag(runs=[1256, 1257], start=0, stop=0.05, subsystem="rf", severity="bad",
                      reason="late trigger")  # fmt: skip
    assert many.where == "runs 1256-1257 from 0 to 0.05 s"
    assert 1258 in numbers(shots.runs.search(quality="good"))  # part of a run is not all of it
    assert shots.runs.search(quality="bad") == []


def test_a_correction_supersedes_and_the_history_stays(shots: ll.Archive) -> None:
    old = shots.flag(runs=[1256, 1257], subsystem="power", severity="bad", reason="outage")
    new = shots.flag(runs=range(1256, 1260), subsystem="power", severity="bad",
                     reason="outage: longer than first thought", supersedes=old.id)  # fmt: skip
    assert new.supersedes == old.id and new.runs == ARGON
    assert shots.flags[old.id].status == "superseded"
    assert shots.flags[old.id].replaced_by == new.id
    assert shots.flags[old.id].runs == [1256, 1257]  # the old one is readable as it was
    assert shots.flags.list() == [new]
    history = shots.flags.list(include_inactive=True)
    assert [(f.id, f.status) for f in history] == [(old.id, "superseded"), (new.id, "active")]
    assert numbers(shots.runs.search(quality="bad")) == ARGON

    # a correction that names no runs keeps the old flag's: here it lowers the severity
    milder = shots.flag(subsystem="power", severity="warning", reason="it was a brown-out",
                        supersedes=new.id)  # fmt: skip
    assert milder.runs == ARGON and milder.severity == "warning"
    assert shots.runs.search(quality="bad") == []
    # ... or keeps the runs and gives them an interval
    interval = shots.flag(start=0.2, stop=0.3, subsystem="power", severity="bad",
                          reason="only the flat-top", supersedes=milder.id)  # fmt: skip
    assert interval.periods == tuple(Period(n, 0.2, 0.3) for n in ARGON)
    assert shots.flags.version == 4

    # a superseded flag cannot be superseded again: the one that replaced it can
    refused(shots, Conflict, rf"flag {old.id}: it is superseded by flag {new.id}",
            lambda: shots.flag(run=1256, subsystem="power", severity="bad", reason="again",
                               supersedes=old.id))  # fmt: skip
    refused(shots, NotFound, "there is no flag 99",
            lambda: shots.flag(run=1256, subsystem="power", severity="bad", reason="x",
                               supersedes=99))  # fmt: skip


def test_a_withdrawal_ends_a_flag_and_keeps_it(shots: ll.Archive) -> None:
    flag = shots.flag(run=1260, subsystem="power", severity="bad", reason="outage")
    assert numbers(shots.runs.search(quality="bad")) == [1260]
    assert shots.flags.withdraw(flag.id, reason="the outage was on the other testbed") is None
    assert shots.runs.search(quality="bad") == [] and shots.runs[1260].flags == []
    assert shots.flags.list() == []
    kept = shots.flags.list(include_inactive=True)
    assert [(f.id, f.status, f.reason) for f in kept] == [(flag.id, "withdrawn", "outage")]
    assert shots.flags.version == 2 and rows(shots, flag_table) == 2

    refused(shots, Conflict, rf"cannot withdraw flag {flag.id}: it is withdrawn",
            lambda: shots.flags.withdraw(flag.id, reason="again"))  # fmt: skip
    refused(shots, Conflict, rf"cannot supersede flag {flag.id}: it is withdrawn",
            lambda: shots.flag(run=1260, subsystem="power", severity="bad", reason="x",
                               supersedes=flag.id))  # fmt: skip
    refused(shots, NotFound, "there is no flag 42 to withdraw",
            lambda: shots.flags.withdraw(42, reason="x"))  # fmt: skip
    refused(shots, InvalidArgument, "a withdrawal needs a reason",
            lambda: shots.flags.withdraw(flag.id, reason=" "))  # fmt: skip
    withdrawal = flag.id + 1
    refused(shots, NotFound, f"row {withdrawal} is the withdrawal of flag {flag.id}",
            lambda: shots.flags[withdrawal])  # fmt: skip


def test_two_corrections_of_one_flag_at_once_record_only_the_first(
    shots: ll.Archive, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check that a flag is still active runs inside the transaction, but two writers under
    READ COMMITTED can both pass it: the unique target column refuses the second."""
    old = shots.flag(run=1256, subsystem="power", severity="bad", reason="outage")
    first = shots.flag(run=1256, subsystem="power", severity="bad", reason="a", supersedes=old.id)
    # the second writer checked while the first had not committed: both checks passed
    monkeypatch.setattr(records, "_check_replaceable", lambda *a: None)
    monkeypatch.setattr(ll.quality.flags.Flag, "active", property(lambda self: True))
    refused(shots, Conflict, rf"flag {old.id}: it was superseded or withdrawn meanwhile",
            lambda: shots.flag(run=1256, subsystem="power", severity="bad", reason="b",
                               supersedes=old.id))  # fmt: skip
    refused(shots, Conflict, "meanwhile",
            lambda: shots.flags.withdraw(old.id, reason="c"))  # fmt: skip
    assert shots.flags[old.id].replaced_by == first.id


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"runs": [1256, 1300, 1301]}, NotFound,
         r"run 1300 does not exist \(nor do 1 more of the 3 given\); nothing was flagged"),
        ({"run": 1999}, NotFound, r"^run 1999 does not exist; nothing was flagged"),
        ({"run": 1256, "start": 0.5, "stop": 0.2}, InvalidArgument,
         "stop=0.2 is not after start=0.5"),
        ({"run": 1256, "start": 0.5, "stop": 0.5}, InvalidArgument,
         "stop=0.5 is not after start=0.5"),
        ({"run": 1256, "start": 0.5}, InvalidArgument, "give both start and stop"),
        ({"run": 1256, "start": float("nan"), "stop": 1.0}, InvalidArgument, "finite"),
        ({"run": 1256, "start": "0.1", "stop": 1.0}, InvalidArgument, "a time in s"),
        ({"run": 1256, "reason": None}, InvalidArgument, "a flag needs a reason"),
        ({"run": 1256, "reason": ""}, InvalidArgument, "a flag needs a reason"),
        ({"run": 1256, "reason": "  \n "}, InvalidArgument, "a flag needs a reason"),
        ({"run": 1256, "severity": "fatal"}, InvalidArgument,
         "severity='fatal': a flag's severity is one of good, warning, bad"),
        ({"run": 1256, "severity": None}, InvalidArgument, "a flag needs a severity"),
        ({"run": 1256, "subsystem": "power supply"}, InvalidArgument,
         "subsystem='power supply': a subsystem is named with letters"),
        ({"run": 1256, "subsystem": None}, InvalidArgument, "say whose verdict it is"),
        ({"run": 1256, "runs": [1257]}, InvalidArgument, "not both"),
        ({}, InvalidArgument, "say which runs the flag is on"),
        ({"runs": []}, InvalidArgument, "runs names no run; nothing was flagged"),
        ({"runs": "1256-1258"}, InvalidArgument, "give run numbers or runs"),
        ({"runs": [1256, True]}, InvalidArgument, "True is not a run number"),
        ({"run": -3}, InvalidArgument, "-3 is not a run number"),
        ({"run": 1256, "supersedes": 0}, InvalidArgument, "a flag is named by its id"),
    ],
)  # fmt: skip
def test_a_bad_flag_is_refused_and_nothing_changes(
    shots: ll.Archive, kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    shots.flag(run=1260, subsystem="power", severity="bad", reason="there is one already")
    given = {"subsystem": "power", "severity": "bad", "reason": "outage", **kwargs}
    refused(shots, error, message, lambda: shots.flag(**given))
    assert shots.flags.version == 1 and rows(shots, flag_table) == 1


def test_asking_about_runs_and_quality_that_do_not_exist(shots: ll.Archive) -> None:
    refused(shots, InvalidArgument, "quality='excellent': search for quality 'good'",
            lambda: shots.runs.search(quality="excellent"))  # fmt: skip
    refused(shots, NotFound, "run 4242 does not exist",
            lambda: shots.flags.list(run=4242))  # fmt: skip
    refused(shots, NotFound, "there is no flag 7", lambda: shots.flags[7])
    assert shots.flags.active([]) == {}


def test_quality_is_one_query_however_many_runs(shots: ll.Archive) -> None:
    shots.flag(runs=SHOTS, start=0.1, stop=0.2, subsystem="probe", severity="bad", reason="x")
    shots.flag(runs=[1257, 1259], subsystem="power", severity="bad", reason="outage")
    statements: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    event.listen(shots.catalog.engine, "before_cursor_execute", count)
    try:
        good = shots.runs.search(quality="good")
        assert len(statements) == 1 and "NOT (EXISTS" in statements[0]
        active = shots.flags.active(SHOTS)
        assert len(statements) == 2
    finally:
        event.remove(shots.catalog.engine, "before_cursor_execute", count)
    assert numbers(good) == [n for n in SHOTS if n not in (1257, 1259)]
    assert [len(active[n]) for n in SHOTS] == [1, 2, 1, 2, 1, 1, 1, 1]


def test_listing_runs_does_not_load_the_quality_package() -> None:
    code = "import sys, labledger; print('labledger.quality' in sys.modules)"
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert loaded.stdout.strip() == "False"


# -- good-run lists --------------------------------------------------------------------------------


def test_good_run_lists_are_versioned_snapshots(shots: ll.Archive) -> None:
    query = {"gas": "Ar"}
    grl = shots.good_runs("standard", query=query, require=["power", "probe"], reason="paper")
    assert isinstance(grl, GoodRunList) and grl.label == "standard@1"
    assert list(grl) == grl.runs == ARGON and len(grl) == 4 and 1258 in grl
    assert shots.runs[1258] in grl and 1260 not in grl
    assert grl.livetimes == dict.fromkeys(ARGON, pytest.approx(DURATION))
    assert grl.livetime == pytest.approx(4 * DURATION)
    assert grl.query == {"where": {"gas": "Ar"}} and grl.require == ["power", "probe"]
    assert grl.flags_seen == 0 and grl.reason == "paper" and len(grl.hash) == 64

    # the same content: the same version, nothing recorded; however the query is spelled
    same = shots.good_runs("standard", query={"where": {"gas": ["Ar"]}}, require=["probe", "power"])
    assert same == grl and same.version == 1 and rows(shots, good_run_list_table) == 1
    # a flag the list does not care about (not required, or not bad) changes nothing either
    shots.flag(run=1257, subsystem="vacuum", severity="bad", reason="leak")
    shots.flag(run=1258, subsystem="power", severity="warning", reason="sag")
    again = shots.good_runs("standard", query=query, require=["power", "probe"])
    assert again.version == 1 and again.hash == grl.hash and again.flags_seen == 0

    # a bad flag on a required subsystem: a new version without the run
    flag = shots.flag(run=1257, subsystem="power", severity="bad", reason="outage")
    v2 = shots.good_runs("standard", query=query, require=["power", "probe"])
    assert v2.label == "standard@2" and v2.runs == [1256, 1258, 1259] and v2.hash != grl.hash
    assert v2.flags_seen == 3
    assert shots.good_runs("standard") == v2  # the newest
    old = shots.good_runs("standard", version=1)
    assert old.runs == ARGON and old.hash == grl.hash and old.created == grl.created
    assert shots.good_runs("standard@1") == old
    # withdrawing the flag brings the run back: the content of version 1, as a new version
    shots.flags.withdraw(flag.id, reason="wrong run")
    v3 = shots.good_runs("standard", query=query, require=["power", "probe"])
    assert v3.label == "standard@3" and v3.runs == ARGON and v3.hash == grl.hash

    # the hash is the sha256 of the canonical content, and stays what it was when read back
    content = {
        "query": grl.query,
        "require": grl.require,
        "runs": [{"run": n, "livetime": grl.livetimes[n], "excluded": []} for n in grl.runs],
    }
    # worked out here with hashlib: canonical JSON is sorted keys and no spaces
    text = json.dumps(content, sort_keys=True, separators=(",", ":"))
    assert hashlib.sha256(text.encode()).hexdigest() == grl.hash
    data = shots.good_runs("standard@1").to_dict()
    assert data["label"] == "standard@1" and data["hash"] == grl.hash
    assert data["runs"][0] == {"run": 1256, "livetime": pytest.approx(DURATION), "excluded": []}
    json.dumps(data)


def test_livetime_leaves_out_the_bad_intervals_of_required_subsystems(shots: ll.Archive) -> None:
    shots.flag(run=1258, start=0.1, stop=0.3, subsystem="probe", severity="bad", reason="arc")
    shots.flag(run=1258, start=0.2, stop=0.4, subsystem="power", severity="bad", reason="sag")
    shots.flag(run=1259, start=0.0, stop=0.1, subsystem="probe", severity="warning", reason="x")
    both = shots.good_runs("both", query={"gas": "Ar"}, require=["power", "probe"])
    assert both.runs == ARGON  # an interval does not exclude a run
    assert both.excluded[1258] == [(0.1, 0.4)]  # overlapping intervals counted once
    assert both.livetimes[1258] == pytest.approx(DURATION - 0.3)
    assert both.excluded[1259] == [] and both.livetimes[1259] == pytest.approx(DURATION)
    assert both.livetime == pytest.approx(4 * DURATION - 0.3)
    probe = shots.good_runs("probe", query={"gas": "Ar"}, require=["probe"])
    assert probe.excluded[1258] == [(0.1, 0.3)]
    assert probe.livetimes[1258] == pytest.approx(DURATION - 0.2)
    anything = shots.good_runs("any", query={"gas": "Ar"})  # no require: every subsystem
    assert anything.excluded[1258] == [(0.1, 0.4)]


def test_require_chooses_whose_bad_flags_exclude_a_run(shots: ll.Archive) -> None:
    shots.flag(runs=[1256, 1260], subsystem="rf", severity="bad", reason="reflected power")
    shots.flag(run=1261, subsystem="power", severity="bad", reason="outage")
    everything = {"since": "2026-01-01"}
    assert shots.good_runs("all", query=everything).runs == [1257, 1258, 1259, 1262, 1263]
    power = shots.good_runs("power", query=everything, require=["power"])
    assert power.runs == [n for n in SHOTS if n != 1261]
    assert power.query == {"since": "2026-01-01T00:00:00+00:00"}
    rf = shots.good_runs("rf", require="rf")  # require alone: all runs
    assert rf.runs == [n for n in SHOTS if n not in (1256, 1260)] and rf.query == {}
    assert rf.require == ["rf"]


def test_an_empty_good_run_list_is_recorded_with_a_warning(shots: ll.Archive) -> None:
    with pytest.warns(DataWarning, match="'xenon' is empty: the query matched no runs; recorded"):
        empty = shots.good_runs("xenon", query={"gas": "Xe"})
    assert empty.label == "xenon@1" and list(empty) == [] and empty.livetime == 0
    assert shots.good_runs("xenon") == empty

    shots.flag(runs=ARGON, subsystem="power", severity="bad", reason="outage")
    with pytest.warns(DataWarning, match="all 4 runs the query matched have an active bad flag"):
        flagged = shots.good_runs("argon", query={"gas": "Ar"}, require=["power"])
    assert len(flagged) == 0 and rows(shots, good_run_list_table) == 2
    with pytest.warns(DataWarning, match="unchanged, argon@1"):
        shots.good_runs("argon", query={"gas": "Ar"}, require=["power"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a list with runs says nothing
        shots.good_runs("helium", query={"gas": "He"})


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda la: la.good_runs("nothing"), NotFound,
         "there is no good-run list 'nothing'; there are standard"),
        (lambda la: la.good_runs("standard", version=4), NotFound,
         "'standard' has no version 4; it has standard@1"),
        (lambda la: la.good_runs("standard@0"), InvalidArgument, "numbered from 1"),
        (lambda la: la.good_runs("standard", query={"gas": "He"}, version=1), InvalidArgument,
         "version= reads a recorded list"),
        (lambda la: la.good_runs("a b", query={}), InvalidArgument,
         "good-run list 'a b': a name is letters"),
        (lambda la: la.good_runs("x", query="gas=Ar"), InvalidArgument,
         "a query is a dict of la.runs.search keywords"),
        (lambda la: la.good_runs("x", query={"since": "last week"}), InvalidArgument,
         "since='last week' is not a date"),
        (lambda la: la.good_runs("x", query={"gas": object()}), InvalidArgument,
         "text, numbers or booleans"),
        (lambda la: la.good_runs("x", query={"quality": "great"}), InvalidArgument,
         "quality='great'"),
        (lambda la: la.good_runs("x", require=["power supply"]), InvalidArgument,
         "subsystem='power supply'"),
    ],
)  # fmt: skip
def test_a_bad_good_run_list_request_is_refused_and_nothing_changes(
    shots: ll.Archive, call: Callable[[ll.Archive], object], error: type[Exception], message: str
) -> None:
    shots.good_runs("standard", query={"gas": "Ar"})
    refused(shots, error, message, lambda: call(shots))
    assert rows(shots, good_run_list_table) == 1


def test_no_good_run_list_yet_says_how_to_make_one(sqlite_archive: ll.Archive) -> None:
    refused(sqlite_archive, NotFound, r"make one with la.good_runs\(NAME, query=",
            lambda: sqlite_archive.good_runs("standard"))  # fmt: skip


# -- the command line ------------------------------------------------------------------------------


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_flag_commands(folder: Path) -> None:
    a = ("-a", str(folder))
    shown = ok(cli("flag", "add", *a, "--runs", "1256-1257,1259", "--subsystem", "power",
                   "--severity", "bad", "--reason", "outage"))  # fmt: skip
    assert shown.strip() == "flag 1 recorded: power bad on runs 1256-1257, 1259 (outage)"
    arc = json.loads(ok(cli("flag", "add", *a, "--run", "1258", "--start", "0.1", "--stop",
                            "0.3", "--subsystem", "probe", "--severity", "bad", "--reason",
                            "arc", "--json")))  # fmt: skip
    assert arc["id"] == 2 and arc["periods"] == [{"run": 1258, "start": 0.1, "stop": 0.3}]
    assert arc["status"] == "active" and arc["severity"] == "bad"
    fixed = ok(cli("flag", "add", *a, "--supersedes", "1", "--runs", "1256,1257", "--subsystem",
                   "power", "--severity", "bad", "--reason", "outage, not 1259"))  # fmt: skip
    assert "flag 3 recorded" in fixed and "it supersedes flag 1" in fixed

    listed = json.loads(ok(cli("flag", "list", *a, "--json")))
    assert [(f["id"], f["runs"]) for f in listed] == [(2, [1258]), (3, [1256, 1257])]
    table = ok(cli("flag", "list", *a, "--all"))
    assert "superseded by 3" in table and "runs 1256-1257, 1259" in table
    assert "run 1258 from 0.1 to 0.3 s" in table and "(corrects 1)" in table
    assert ok(cli("flag", "withdraw", "2", *a, "--reason", "no arc after all")).startswith(
        "flag 2 withdrawn"
    )
    on_1258 = json.loads(ok(cli("flag", "list", *a, "--run", "1258", "--all", "--json")))
    assert [(f["id"], f["status"]) for f in on_1258] == [(2, "withdrawn")]
    assert "no flags on run 1258" in ok(cli("flag", "list", *a, "--run", "1258"))

    good = json.loads(ok(cli("runs", *a, "--quality", "good", "--json")))
    assert [r["number"] for r in good] == [n for n in SHOTS if n not in (1256, 1257)]
    with ll.open(folder) as la:
        assert [f.id for f in la.flags.list()] == [3]


def test_goodruns_commands(folder: Path) -> None:
    a = ("-a", str(folder))
    assert "no good-run lists yet" in ok(cli("goodruns", *a))
    ok(cli("flag", "add", *a, "--run", "1257", "--subsystem", "power", "--severity", "bad",
           "--reason", "outage"))  # fmt: skip
    ok(cli("flag", "add", *a, "--run", "1258", "--start", "0.1", "--stop", "0.3", "--subsystem",
           "probe", "--severity", "bad", "--reason", "arc"))  # fmt: skip
    made = json.loads(ok(cli("goodruns", "standard", *a, "--where", "gas=Ar", "--require",
                             "power,probe", "--reason", "paper", "--json")))  # fmt: skip
    assert made["label"] == "standard@1" and made["recorded"] is True
    assert [r["run"] for r in made["runs"]] == [1256, 1258, 1259]
    assert made["runs"][1]["excluded"] == [[0.1, 0.3]]
    assert made["livetime"] == pytest.approx(3 * DURATION - 0.2)
    again = ok(cli("goodruns", "standard", *a, "--where", "gas=Ar", "--require", "probe,power"))
    assert "good-run list standard@1 unchanged" in again
    with ll.open(folder) as la:  # the command line and Python make the same list
        assert (
            la.good_runs("standard", query={"gas": "Ar"}, require=["power", "probe"]).version == 1
        )

    shown = ok(cli("goodruns", "standard", *a))
    assert "good-run list standard@1" in shown and made["hash"] in shown
    assert "1258" in shown and "0.1-0.3" in shown
    ok(cli("flag", "add", *a, "--run", "1259", "--subsystem", "power", "--severity", "bad",
           "--reason", "outage"))  # fmt: skip
    assert "the flags changed 1 times since" in ok(cli("goodruns", "standard", *a))
    second = ok(cli("goodruns", "standard", *a, "--where", "gas=Ar", "--require", "power,probe"))
    assert "good-run list standard@2 recorded: 2 runs" in second
    first = json.loads(ok(cli("goodruns", "standard", *a, "--version", "1", "--json")))
    assert first == {k: v for k, v in made.items() if k != "recorded"}
    assert json.loads(ok(cli("goodruns", *a, "--json"))) == [
        {"name": "standard", "versions": [1, 2]}
    ]

    empty = cli("goodruns", "xenon", *a, "--where", "gas=Xe")
    assert empty.returncode == 0 and "good-run list xenon@1 recorded: 0 runs" in empty.stdout
    assert empty.stderr.strip().startswith("note: good-run list 'xenon' is empty: the query")
    assert len(empty.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["flag", "add", "--runs", "1256-1300", "--subsystem", "power", "--severity", "bad",
          "--reason", "outage"], "run 1264 does not exist"),
        (["flag", "add", "--run", "1256", "--start", "0.5", "--stop", "0.1", "--subsystem", "p",
          "--severity", "bad", "--reason", "x"], "stop=0.1 is not after start=0.5"),
        (["flag", "add", "--run", "1256", "--subsystem", "power", "--severity", "bad"],
         "a flag needs a reason"),
        (["flag", "add", "--run", "1256", "--subsystem", "power", "--severity", "bad",
          "--reason", "  "], "a flag needs a reason"),
        (["flag", "add", "--run", "1256", "--subsystem", "power", "--severity", "awful",
          "--reason", "x"], "severity='awful'"),
        (["flag", "add", "--runs", "1259-1256", "--subsystem", "power", "--severity", "bad",
          "--reason", "x"], "--runs '1259-1256': give run numbers and spans, low to high"),
        (["flag", "withdraw", "5", "--reason", "x"], "there is no flag 5 to withdraw"),
        (["flag", "list", "--run", "99"], "run 99 does not exist"),
        (["goodruns", "nothing"], "there is no good-run list 'nothing'"),
        (["goodruns", "standard", "--where", "gas=Ar", "--version", "2"], "--version shows"),
        (["goodruns", "--where", "gas=Ar"], "name the good-run list"),
        (["runs", "--quality", "great"], "quality='great'"),
    ],
)  # fmt: skip
def test_quality_commands_refuse_bad_input_in_one_line(
    folder: Path, args: list[str], message: str
) -> None:
    with ll.open(folder) as la:
        before = snapshot(la)
    result = cli(*args, "-a", str(folder))
    assert result.returncode == 1, result.stdout
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    with ll.open(folder) as la:
        assert snapshot(la) == before
