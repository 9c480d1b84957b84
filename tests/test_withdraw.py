"""Withdrawn runs: a run ingested by mistake (another test stand's scope trace)
is withdrawn with a reason and restored with another, append-only. Listings, searches and
good-run lists leave it out; by number and id it is read as before and says so; products that
read it become stale. On SQLite and PostgreSQL, on the command line and through a server, and
from a catalog made by the previous schema version."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from alembic import command
from alembic.config import Config
from nptdms import TdmsFile
from sqlalchemy import select

import labledger as ll
from labledger.access import Access
from labledger.catalog import database
from labledger.catalog.schema import WithdrawalRow, withdrawal_table
from labledger.errors import Conflict, Forbidden, InvalidArgument, LabledgerError, NotFound
from labledger.notifications import Watcher
from labledger.sim import write_shot
from tests.conftest import cli, snapshot

SHOTS = [1256, 1257, 1258, 1259, 1260, 1261]  # argon up to 1259, helium from 1260
NOTE = 1264  # the mistake: another test stand's scope trace ingested as a run
NOTE_VALUES = [0.5, 0.25]
REASON = "another test stand's scope trace"


@ll.step(version="1")
def first_sample(run):  # type: ignore[no-untyped-def]
    """Reads one raw sample: enough to be a product of the run."""
    return int(run.channels["PXI M6251/ai0"][0])


def _note(folder: Path) -> Path:
    path = folder / f"{NOTE}_scope.csv"
    path.write_text("t,U\n" + "".join(f"{i},{v}\n" for i, v in enumerate(NOTE_VALUES)))
    return path


@pytest.fixture
def shots(archive: ll.Archive, tmp_path: Path) -> ll.Archive:
    """Six simulated shots and the note, on SQLite and on PostgreSQL."""
    archive.ingest([write_shot(tmp_path, n) for n in SHOTS])
    archive.ingest([_note(tmp_path)], format="csv")
    return archive


def numbers(runs: list[ll.Run]) -> list[int]:
    return [r.number for r in runs]


def rows(la: ll.Archive) -> list[tuple[str, int, int, int | None]]:
    """The withdrawals log as (action, run, seq, target), in the order written."""
    with la.catalog.reading() as session:
        found = session.scalars(select(WithdrawalRow).order_by(withdrawal_table.c.id))
        return [(r.action, r.run_number, r.seq, r.target) for r in found]


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


def test_a_withdrawn_run_leaves_listings_and_is_read_by_number_and_id(
    shots: ll.Archive, tmp_path: Path
) -> None:
    everything = [*SHOTS, NOTE]
    assert numbers(list(shots.runs)) == everything and shots.runs[-1].number == NOTE
    note_id = shots.runs[NOTE].id

    done = shots.withdraw(NOTE, reason=f"  {REASON} ")
    assert done.run == NOTE and done.run_id == note_id and done.reason == REASON
    assert done.active and done.restored_by is None and "@" in done.author

    # out of every listing and search ...
    assert numbers(list(shots.runs)) == SHOTS and len(shots.runs) == len(SHOTS)
    assert shots.runs[-1].number == 1261 and numbers(shots.runs.last(2)) == [1260, 1261]
    assert numbers(shots.runs[1250:1300]) == SHOTS
    assert numbers(shots.runs.search(state=None)) == SHOTS
    assert numbers(shots.runs.search(source=f"{NOTE}_scope.csv")) == []
    assert numbers(shots.runs.search(quality="good")) == SHOTS
    grl = shots.good_runs("all", query={"since": "2000-01-01"})
    assert list(grl) == SHOTS
    # ... shown where withdrawn runs are asked for ...
    assert numbers(shots.runs.withdrawn()) == [NOTE]
    # ... and read by number and by id as before, saying so
    for run in (shots.runs[NOTE], shots.runs[note_id]):
        assert run.number == NOTE and run.id == note_id
        assert run.withdrawn == done
        assert repr(run).endswith(f" WITHDRAWN ({REASON})>")
        assert list(run.channels["U"][:]) == NOTE_VALUES  # its values, as written
        assert run.to_dict()["withdrawn"]["reason"] == REASON
    assert shots.runs[1256].withdrawn is None and "WITHDRAWN" not in repr(shots.runs[1256])

    # a shot withdrawn too: its arrays stay readable, byte for byte what the DAQ wrote
    shots.withdraw(shots.runs[1257], reason="the trigger fired twice")
    raw = TdmsFile.read(tmp_path / "01257_Data.tdms")["PXI M6251"]["ai3"].raw_data
    assert (shots.runs[1257].channels["PXI M6251/ai3"][:] == raw).all()
    assert numbers(shots.runs.search(gas="Ar")) == [1256, 1258, 1259]
    assert numbers(shots.runs.withdrawn()) == [1257, NOTE]
    assert list(shots.good_runs("all", query={"since": "2000-01-01"})) == [1256, *SHOTS[2:]]


def test_restore_brings_it_back_and_the_history_keeps_every_record(shots: ll.Archive) -> None:
    first = shots.withdraw(NOTE, reason=REASON)
    back = shots.restore(NOTE, reason="the note holds the shot's probe settings")
    assert back.id == first.id and not back.active
    assert (back.reason, back.restore_reason) == (
        REASON,
        "the note holds the shot's probe settings",
    )
    assert back.restored is not None and back.restored >= back.created
    assert numbers(list(shots.runs)) == [*SHOTS, NOTE] and shots.runs[-1].number == NOTE
    assert shots.runs[NOTE].withdrawn is None and shots.runs.withdrawn() == []

    again = shots.withdraw(NOTE, reason="no: the settings are in the shot's own file")
    assert again.id != first.id and shots.runs[NOTE].withdrawn == again
    history = shots.withdrawals.list()
    assert [(w.id, w.active, w.reason) for w in history] == [
        (first.id, False, REASON),
        (again.id, True, "no: the settings are in the shot's own file"),
    ]
    assert shots.withdrawals.list(include_restored=False) == [again]
    assert shots.withdrawals.list(run=1256) == []
    # nothing was updated: a row per withdrawal and per restoration, each run's numbered
    assert rows(shots) == [
        ("withdraw", NOTE, 1, None),
        ("restore", NOTE, 2, first.id),
        ("withdraw", NOTE, 3, None),
    ]


def test_check_keeps_and_checks_a_withdrawn_run(sqlite_archive: ll.Archive, tmp_path: Path) -> None:
    la = sqlite_archive
    la.ingest([write_shot(tmp_path, 1256), _note(tmp_path)])
    la.withdraw(NOTE, reason=REASON)
    folders = sorted(la.store.children("runs"))
    report = la.check(repair=True, older_than=0)
    assert report.ok and report.orphans == [] and report.runs == 2 and report.files == 2
    assert sorted(la.store.children("runs")) == folders  # nothing of it removed
    assert list(la.runs[NOTE].channels["U"][:]) == NOTE_VALUES


def test_products_that_read_a_withdrawn_run_are_stale_with_the_reason(shots: ll.Archive) -> None:
    made = shots.compute(first_sample, [1256, 1257])
    assert shots.stale() == []
    shots.withdraw(1257, reason="the trigger fired twice")
    stale = {s.product.id: s.reasons for s in shots.stale()}
    part = next(p for p in made.parts if p.run == 1257)
    by = shots.runs[1257].withdrawn.author
    assert stale[part.id] == [f"run 1257: withdrawn since (the trigger fired twice; by {by})"]
    assert "the trigger fired twice" in stale[made.id][0]  # the set, through its part
    assert next(p for p in made.parts if p.run == 1256).id not in stale
    shots.restore(1257, reason="it fired once")
    assert shots.stale() == []  # what it read is what the archive says again
    assert shots.compute(first_sample, [1256, 1257]).reused

    # computed while its run is withdrawn, a product records it: a restoration makes it stale
    again = shots.withdraw(1257, reason="it fired twice after all")
    made = shots.compute(first_sample, 1257)
    assert not made.reused and made.provenance["inputs"]["runs"][0]["withdrawn"] == again.id
    assert made.id not in {s.product.id for s in shots.stale()}
    shots.restore(1257, reason="once, really")
    stale = {s.product.id: s.reasons for s in shots.stale()}
    assert stale[made.id] == ["run 1257: restored since (it was withdrawn when read)"]


BAD = [
    (lambda la: la.withdraw(4242, reason="x"), NotFound, r"^run 4242 does not exist"),
    (lambda la: la.withdraw("no-such-id", reason="x"), NotFound, "no run has the id"),
    (lambda la: la.restore(4242, reason="x"), NotFound, r"^run 4242 does not exist"),
    (lambda la: la.withdraw(1261, reason="once more"), Conflict,
     rf"^run 1261 is withdrawn already \({REASON}; by .*restore it first"),
    (lambda la: la.restore(1256, reason="x"), Conflict,
     r"^run 1256 is not withdrawn, so there is nothing to restore"),
    (lambda la: la.withdraw(1256, reason=""), InvalidArgument, "a withdrawal needs a reason"),
    (lambda la: la.withdraw(1256, reason=" \n "), InvalidArgument,
     "a withdrawal needs a reason"),
    (lambda la: la.withdraw(1256, reason=None), InvalidArgument,
     "a withdrawal needs a reason"),
    (lambda la: la.restore(1261, reason=""), InvalidArgument,
     "a restoration needs a reason"),
    (lambda la: la.withdraw(-1, reason="x"), InvalidArgument, "-1 is not a run number"),
    (lambda la: la.withdraw(True, reason="x"), InvalidArgument, "give a run number"),
]  # fmt: skip


def test_a_bad_withdrawal_or_restoration_is_refused_and_nothing_changes(shots: ll.Archive) -> None:
    shots.withdraw(1261, reason=REASON)
    for action, error, message in BAD:  # one archive for all: each leaves it as it was
        refused(shots, error, message, lambda action=action: action(shots))
    assert rows(shots) == [("withdraw", 1261, 1, None)]


def test_two_writers_at_once_record_only_the_first(
    shots: ll.Archive, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check runs inside the transaction, but two writers under READ COMMITTED can both
    pass it: the unique (run, seq) refuses the second."""
    from labledger.catalog import withdrawals

    shots.withdraw(1256, reason="first")
    newest = withdrawals._newest
    monkeypatch.setattr(withdrawals, "_newest", lambda session, run_id: None)  # saw nothing yet
    refused(shots, Conflict, "withdrawn or restored by another writer meanwhile",
            lambda: shots.withdraw(1256, reason="second"))  # fmt: skip
    monkeypatch.setattr(withdrawals, "_newest", newest)
    assert [w.reason for w in shots.withdrawals.list()] == ["first"]


def test_listing_is_one_query_whatever_is_withdrawn(shots: ll.Archive) -> None:
    from sqlalchemy import event

    shots.withdraw(NOTE, reason=REASON)
    statements: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    event.listen(shots.catalog.engine, "before_cursor_execute", count)
    try:
        found = shots.runs.search(gas="Ar", quality="good")
        assert len(statements) == 1  # withdrawals and flags in the search's own query
        assert [repr(r) for r in found]  # a listing's runs are known not withdrawn: no query
        assert len(statements) == 1
    finally:
        event.remove(shots.catalog.engine, "before_cursor_execute", count)
    assert numbers(found) == [1256, 1257, 1258, 1259]


def test_a_catalog_of_the_previous_version_is_migrated(archive: ll.Archive, tmp_path: Path) -> None:
    archive.ingest([write_shot(tmp_path, 1256)])
    archive.ingest([_note(tmp_path)], format="csv")
    url, folder = archive.catalog.url, archive.path
    archive.close()
    engine = database.connect(url)
    config = Config()
    config.set_main_option("script_location", str(database.MIGRATIONS))
    with engine.begin() as conn:  # as the previous labledger left it
        config.attributes["connection"] = conn
        command.downgrade(config, "0004")
    assert database.current_revision(engine) == "0004"
    engine.dispose()
    with pytest.raises(LabledgerError, match="run `labledger migrate`"):
        ll.open(folder)
    result = cli("migrate", "-a", str(folder))
    assert result.returncode == 0, result.stderr
    assert f"schema version {database.head_revision()}" in result.stdout
    with ll.open(folder) as la:
        assert numbers(list(la.runs)) == [1256, NOTE]
        la.withdraw(NOTE, reason=REASON)
        assert numbers(list(la.runs)) == [1256] and la.runs[NOTE].withdrawn.reason == REASON


def test_withdrawals_are_news_to_those_who_ask(shots: ll.Archive) -> None:
    watcher = Watcher(shots.catalog, kinds=["withdrawal"])
    others = Watcher(shots.catalog, kinds=["run", "flag", "product"])  # la.subscribe()'s default
    done = shots.withdraw(NOTE, reason=REASON)
    shots.restore(NOTE, reason="undone")
    heard = watcher.poll()
    assert [(e["kind"], e["action"], e["run"], e["reason"]) for e in heard] == [
        ("withdrawal", "withdraw", NOTE, REASON),
        ("withdrawal", "restore", NOTE, "undone"),
    ]
    assert heard[1]["target"] == done.id
    assert others.poll() == []


# -- the command line -----------------------------------------------------------------------------


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    path = tmp_path / "archive"
    with ll.init(path) as la:
        la.ingest([write_shot(tmp_path, n) for n in SHOTS[:3]])
        la.ingest([_note(tmp_path)], format="csv")
    return path


def test_withdraw_and_restore_commands(folder: Path) -> None:
    a = ("-a", str(folder))

    def ok(*args: str) -> str:
        result = cli(*args, *a)
        assert result.returncode == 0, result.stderr
        return result.stdout

    said = ok("withdraw", str(NOTE), "--reason", REASON)
    assert f"run {NOTE} withdrawn ({REASON})" in said and "labledger restore" in said
    listed = json.loads(ok("runs", "--json"))
    assert [r["number"] for r in listed] == SHOTS[:3]
    assert all(r["withdrawn"] is None for r in listed)
    withdrawn = ok("runs", "--withdrawn")
    assert str(NOTE) in withdrawn and REASON in withdrawn and "1256" not in withdrawn
    shown = ok("show", str(NOTE))
    assert "WITHDRAWN: withdrawn " in shown and REASON in shown and "U  [2 <f8]" in shown
    assert json.loads(ok("show", str(NOTE), "--json"))["withdrawn"]["reason"] == REASON

    said = ok("restore", str(NOTE), "--reason", "needed after all")
    assert f"run {NOTE} restored (needed after all); it was withdrawn: {REASON}" in said
    assert [r["number"] for r in json.loads(ok("runs", "--json"))] == [*SHOTS[:3], NOTE]
    shown = ok("show", str(NOTE))
    assert "WITHDRAWN" not in shown and "was withdrawn: " in shown and "needed after all" in shown
    assert "no withdrawn runs" in ok("runs", "--withdrawn")
    with ll.open(folder) as la:
        history = la.withdrawals.list(run=NOTE)
    assert [(w.reason, w.restore_reason) for w in history] == [(REASON, "needed after all")]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["withdraw", "4242", "--reason", "x"], "run 4242 does not exist"),
        (["withdraw", "1256"], "a withdrawal needs a reason"),
        (["withdraw", "1256", "--reason", "  "], "a withdrawal needs a reason"),
        (["withdraw", str(NOTE), "--reason", "twice"], f"run {NOTE} is withdrawn already"),
        (["restore", "1256", "--reason", "x"], "run 1256 is not withdrawn"),
        (["restore", "1256"], "a restoration needs a reason"),
        (["runs", "--withdrawn", "--where", "gas=Ar"], "--withdrawn lists every withdrawn run"),
    ],
)
def test_the_commands_refuse_bad_input_in_one_line(
    folder: Path, args: list[str], message: str
) -> None:
    with ll.open(folder) as la:
        la.withdraw(NOTE, reason=REASON)
    with ll.open(folder) as la:  # closed once: the catalog file as a refusal will find it
        before = snapshot(la)
    result = cli(*args, "-a", str(folder))
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.startswith("error: ") and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    with ll.open(folder) as la:
        assert snapshot(la) == before


# -- through a server -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def served(two_projects: ll.Archive) -> Iterator[tuple[ll.Archive, str, dict[str, str]]]:
    """Run 1233 of project default, 1240 of other; alice reads default, bob reads other,
    carol writes default."""
    from labledger.server import create_app, serving

    access = Access(two_projects.catalog)
    keys = {who: access.create_key(who, scopes=["read", "write"]) for who in ("alice", "carol")}
    keys["bob"] = access.create_key("bob", scopes=["read"])
    with serving(create_app(two_projects)) as url:
        yield two_projects, url, keys


def test_writers_withdraw_and_restore_through_the_server(
    served: tuple[ll.Archive, str, dict[str, str]],
) -> None:
    la, url, keys = served
    carol, alice, bob = (ll.connect(url, api_key=keys[w]) for w in ("carol", "alice", "bob"))
    assert numbers(list(alice.runs)) == [1233]
    done = carol.withdraw(1233, reason="a test shot, not physics")
    try:
        assert (done.author, done.reason) == (
            "carol (through the server)",
            "a test shot, not physics",
        )
        assert la.runs[1233].withdrawn == done  # the same log as local
        assert list(alice.runs) == [] and len(alice.runs) == 0
        assert alice.runs.search(state=None) == []
        assert numbers(alice.runs.withdrawn()) == [1233]
        run = alice.runs[1233]
        assert run.withdrawn == done and "WITHDRAWN (a test shot, not physics)" in repr(run)
        assert run.channels["PXI M6251/ai3"][:4].tolist() == (
            la.runs[1233].channels["PXI M6251/ai3"][:4].tolist()
        )
        assert alice.withdrawals.list() == [done]
        assert bob.withdrawals.list() == [] and bob.runs.withdrawn() == []  # not bob's project
        with pytest.raises(Conflict, match="run 1233 is withdrawn already"):
            carol.withdraw(1233, reason="again")
    finally:
        back = carol.restore(1233, reason="physics after all")
    assert back.id == done.id and back.restore_author == "carol (through the server)"
    assert numbers(list(alice.runs)) == [1233] and alice.runs[1233].withdrawn is None
    with pytest.raises(Conflict, match="run 1233 is not withdrawn"):
        carol.restore(1233, reason="again")
    audit = Access(la.catalog).audit(limit=2)
    assert [(e["action"], e["target"], e["who"]) for e in audit] == [
        ("run.restore", "1233", "carol"),
        ("run.withdraw", "1233", "carol"),
    ]


def test_what_a_server_refuses_changes_nothing(
    served: tuple[ll.Archive, str, dict[str, str]],
) -> None:
    la, url, keys = served
    before = snapshot(la)
    alice = ll.connect(url, api_key=keys["alice"])  # a reader of default, with a write scope
    with pytest.raises(Forbidden, match="alice may not write in project 'default'"):
        alice.withdraw(1233, reason="not hers to withdraw")
    with pytest.raises(NotFound, match="run 1240 does not exist"):  # another project's
        alice.withdraw(1240, reason="x")
    for who, path, body, status in [
        ("alice", "/runs/1233/withdraw", {"reason": "x"}, 403),
        ("alice", "/runs/1233/restore", {"reason": "x"}, 403),
        ("bob", "/runs/1233/withdraw", {"reason": "x"}, 404),  # read scope only, other project
        (None, "/runs/1233/withdraw", {"reason": "x"}, 401),
        ("carol", "/runs/4242/withdraw", {"reason": "x"}, 404),
        ("carol", "/runs/1233/withdraw", {"reason": " "}, 400),
        ("carol", "/runs/1233/withdraw", {}, 422),
        ("carol", "/runs/1233/restore", {"reason": "x"}, 409),
    ]:
        headers = {"Authorization": f"Bearer {keys[who]}"} if who else {}
        answer = httpx.post(f"{url}/api/v1{path}", json=body, headers=headers, timeout=30)
        assert answer.status_code == status, (who, path, answer.text[:200])
        assert "detail" in answer.json()
    carol = ll.connect(url, api_key=keys["carol"])
    with pytest.raises(InvalidArgument, match="a withdrawal needs a reason"):
        carol.withdraw(1233, reason="")
    search = httpx.get(f"{url}/api/v1/runs/search", params={"withdrawn": "maybe"},
                       headers={"Authorization": f"Bearer {keys['alice']}"})  # fmt: skip
    assert search.status_code == 400 and "withdrawn='maybe'" in search.text
    assert snapshot(la) == before


def test_the_summary_and_the_notebook_view_know_withdrawn_runs(shots: ll.Archive) -> None:
    before = shots.summary()
    assert before.runs == len(SHOTS) + 1 and before.raw_files == len(SHOTS) + 1
    shots.withdraw(NOTE, reason=REASON)
    after = shots.summary()
    assert after.runs == len(SHOTS) and after.raw_files == len(SHOTS)
    assert (after.first, after.last, after.newest) == (min(SHOTS), max(SHOTS), max(SHOTS))
    assert "csv" not in after.formats
    shown = shots.runs[NOTE]._repr_html_()
    assert "WITHDRAWN" in shown and "another test stand&#x27;s scope trace" in shown
    assert "WITHDRAWN" not in shots.runs[1256]._repr_html_()


def test_a_run_typed_oddly_gets_one_line(folder: Path) -> None:
    before = cli("runs", "-a", str(folder), "--json").stdout
    for ref in ("²", "9" * 5000):
        done = cli("withdraw", ref, "-a", str(folder), "--reason", "x")
        assert done.returncode != 0 and "Traceback" not in done.stderr, ref
        assert done.stderr.count("\n") == 1, done.stderr
    assert cli("runs", "-a", str(folder), "--json").stdout == before
