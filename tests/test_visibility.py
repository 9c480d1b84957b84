"""Who may see what, rule by rule, without a server in between: roles and scopes
(:class:`Principal`), API keys and their headers, and the server's visibility rules
(:class:`Context`) over an archive of two projects, with products, flags and good-run lists
of one project, of the other and of both. The expected answers are worked out by hand from
who reads which project: alice reads "default" (runs 1233 and 1234, the latter withdrawn),
bob reads "other" (run 1240), carol writes "default". (test_server.py proves the routes use
these rules; here each rule meets its edge cases.)"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

import labledger as ll
from labledger.access import ANONYMOUS, Access, ApiKeys, Principal
from labledger.catalog import products as product_queries
from labledger.catalog.schema import ApiKeyRow, product_table
from labledger.errors import Forbidden, InvalidArgument, NotFound, TooLarge, Unauthorized
from labledger.records import ProductInputRecord, ProductRecord
from labledger.server import Limits
from labledger.server.context import Context
from labledger.sim import write_shot
from labledger.sim.analysis import density
from tests.conftest import make_two_projects, snapshot

ALICE = Principal(user="alice", scopes=frozenset({"read"}), roles={"default": "reader"})
BOB = Principal(user="bob", scopes=frozenset({"read"}), roles={"other": "reader"})
CAROL = Principal(user="carol", scopes=frozenset({"read", "write"}), roles={"default": "writer"})
NOBODY = Principal(user="eve", scopes=frozenset({"read"}))  # a user of no project
LIMITS = Limits(max_runs=3, max_page=2)
PREFIX = "feedface"  # the first characters of the products made here to be found by prefix


@dataclass
class Two:
    la: ll.Archive
    ids: dict[int, str]  # run number -> run id
    products: dict[str, str]  # whose -> product id
    flags: dict[str, int]  # whose -> flag id

    @property
    def ctx(self) -> Context:
        """A new context each time: what one keeps (projects of runs) is not another's."""
        return Context(self.la, Access(self.la.catalog), LIMITS)


_SAME = object()


def _copy(la: ll.Archive, model: str, new_id: str, part_run: Any = _SAME, **changes: Any) -> str:
    """A copy of product ``model`` with id ``new_id`` (and ``changes`` to its row), with
    the same inputs unless ``changes`` say none (or ``part_run`` gives their run number):
    products whose ids and inputs are chosen."""
    no_inputs = changes.pop("no_inputs", False)
    row = product_queries.by_id(la.catalog, model)
    assert row is not None
    columns = {f.name: getattr(row, f.name) for f in fields(ProductRecord)}
    key = hashlib.sha256(new_id.encode()).hexdigest()
    copy = ProductRecord(**{**columns, "id": new_id, "key": key, **changes})
    inputs = [] if no_inputs else [
        ProductInputRecord(product_id=new_id, position=i.position, kind=i.kind, ref=i.ref,
                        run_number=i.run_number if part_run is _SAME else part_run)
        for i in product_queries.inputs_of(la.catalog, [model])[model]
    ]  # fmt: skip
    product_queries.publish(la.catalog, copy, inputs)
    return new_id


@pytest.fixture(scope="module")
def two(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Two]:
    """Made once, then only read by the tests."""
    folder = tmp_path_factory.mktemp("visibility")
    la = make_two_projects(folder)
    la.ingest([write_shot(folder / "daq", 1234)])  # of "default", then withdrawn
    la.withdraw(1234, reason="not a shot")
    ids = {n: la.runs[n].id for n in (1233, 1234, 1240)}
    made = {
        "alice": la.compute(density, 1233).id,
        "bob": la.compute(density, 1240).id,
        "alice-set": la.compute(density, [1233]).id,
        "both-set": la.compute(density, [1233, 1240]).id,
    }
    # made in the reverse order of their ids: a listing by id is not the order of insertion
    made["both-prefixed"] = _copy(la, made["both-set"], f"{PREFIX}-0003-7000-8000-000000000003")
    made["bob-prefixed"] = _copy(la, made["bob"], f"{PREFIX}-0002-7000-8000-000000000002")
    made["alice-prefixed"] = _copy(la, made["alice"], f"{PREFIX}-0001-7000-8000-000000000001")
    # a product of no run at all (not a set, no run): over no project's runs, so nobody's
    made["no-run"] = _copy(la, made["alice"], "0badc0de-0000-7000-8000-000000000000",
                           run_number=None, kind="value", no_inputs=True)  # fmt: skip
    # a set without a part of a run: nobody's either
    made["empty-set"] = _copy(la, made["alice-set"], "0badc0de-0001-7000-8000-000000000000",
                              no_inputs=True)  # fmt: skip
    # of no run, though its input is a run of "default": not a set, so its own run counts
    made["no-run-input"] = _copy(la, made["alice"], "0badc0de-0002-7000-8000-000000000000",
                                 run_number=None)  # fmt: skip
    # a set whose part is of no run: nobody's
    made["runless-part-set"] = _copy(
        la, made["alice-set"], "0badc0de-0003-7000-8000-000000000000", part_run=None
    )
    # a product of run 1233 that read run 1240 too: of 1233 (only a set counts its parts)
    made["alice-reading-1240"] = _copy(la, made["alice"], "0badc0de-0004-7000-8000-000000000000",
                                       part_run=1240)  # fmt: skip
    # the lists before the flags: a bad flag would take a run out of them
    la.good_runs("alice-only", query={"source": la.runs[1233].sources[0].sha256})
    la.good_runs("both", query={"since": "2000-01-01"})
    with pytest.warns(UserWarning, match="empty"):
        la.good_runs("empty", query={"source": "no-such-file"})
    flags = {
        "alice": la.flag(run=1233, subsystem="probe", severity="bad", reason="alice's").id,
        "bob": la.flag(run=1240, subsystem="probe", severity="bad", reason="bob's").id,
        "both": la.flag(runs=[1233, 1240], subsystem="power", severity="warning", reason="x").id,
    }
    yield Two(la, ids, made, flags)
    la.close()


# -- roles and scopes ------------------------------------------------------------------------


def test_a_role_allows_its_scope_and_the_weaker_ones_only() -> None:
    every = frozenset({"read", "write", "admin"})
    # role -> the scopes it allows in its project, by hand from the module's docstring
    allowed = {"reader": {"read"}, "writer": {"read", "write"},
               "admin": {"read", "write", "admin"}}  # fmt: skip
    for role, scopes in allowed.items():
        who = Principal(user="u", scopes=every, roles={"p": role})
        assert {s for s in ("read", "write", "admin") if who.can(s, "p")} == scopes, role
        assert not any(who.can(s, "q") for s in every), role  # no role in q: nothing
    # the key's scopes bound what a role allows: an admin with a read key only reads
    admin_reading = Principal(user="u", scopes=frozenset({"read"}), roles={"p": "admin"})
    assert [admin_reading.can(s, "p") for s in ("read", "write", "admin")] == [True, False, False]
    writer_without_read = Principal(user="u", scopes=frozenset({"write"}), roles={"p": "writer"})
    assert not writer_without_read.can("read", "p") and writer_without_read.can("write", "p")


def test_an_anonymous_reader_reads_every_project_and_nothing_more() -> None:
    assert ANONYMOUS.can("read", "default") and ANONYMOUS.can("read", "any-project")
    assert not ANONYMOUS.can("write", "default") and not ANONYMOUS.can("admin", "default")
    assert ANONYMOUS.projects("read") is None  # all of them
    assert ANONYMOUS.projects("write") == set() and ANONYMOUS.projects("admin") == set()
    assert ANONYMOUS.name == "anonymous" and ALICE.name == "alice"
    # anonymous with a write scope still only reads (a front that says so must not widen it)
    wide = Principal(user=None, scopes=frozenset({"read", "write"}), anonymous=True)
    assert wide.can("read", "p") and not wide.can("write", "p")
    assert wide.projects("write") == set()


def test_the_projects_of_a_principal_by_scope() -> None:
    who = Principal(user="u", scopes=frozenset({"read", "write"}),
                    roles={"a": "reader", "b": "writer", "c": "admin"})  # fmt: skip
    assert who.projects() == {"a", "b", "c"} == who.projects("read")
    assert who.projects("write") == {"b", "c"}
    assert who.projects("admin") == set()  # the key has no admin scope
    assert NOBODY.projects() == set()


# -- keys -----------------------------------------------------------------------------------


@pytest.fixture
def access(archive: ll.Archive) -> Access:
    """Users of a new archive, on SQLite and on PostgreSQL."""
    access = Access(archive.catalog)
    access.add_user("alice", project="default", role="reader", by="tests")
    access.add_user("alice", project="other", role="writer", by="tests")
    return access


def test_a_key_authenticates_its_user_with_the_roles_and_scopes(access: Access) -> None:
    key = access.create_key("alice", scopes=["write", "read", "read"], expires=None, note="n")
    who = access.authenticate(key)
    assert who.user == "alice" and who.scopes == frozenset({"read", "write"})
    assert who.roles == {"default": "reader", "other": "writer"} and not who.anonymous
    key_id = key.split("_")[1]
    assert who.key == key_id
    [listed] = access.keys()
    assert listed["id"] == key_id and listed["user"] == "alice" and listed["note"] == "n"
    assert listed["scopes"] == ["read", "write"] and listed["expires"] is None
    assert listed["revoked"] is None and datetime.fromisoformat(listed["created"]).tzinfo
    assert access.keys("alice") == [listed] and access.keys("bob") == []
    assert key.split("_")[2] not in str(access.keys())  # the secret is never kept


def test_keys_that_are_not_valid_are_refused_alike(access: Access, archive: ll.Archive) -> None:
    key = access.create_key("alice", scopes=["read"])
    _, key_id, secret = key.split("_", 2)
    revoked = access.create_key("alice", scopes=["read"])
    access.revoke_key(revoked.split("_")[1], by="tests")
    expired = access.create_key("alice", scopes=["read"])
    with archive.catalog.transaction("expiring a key") as session:
        past = datetime.now(UTC) - timedelta(seconds=1)
        session.execute(update(ApiKeyRow).where(ApiKeyRow.id == expired.split("_")[1])
                        .values(expires=past))  # fmt: skip
    other = "0" if secret[0] != "0" else "1"
    for bad in (
        "",
        f"ll_{key_id}_{other}{secret[1:]}",  # the right id, another secret
        f"ll_{'0' * 12}_{secret}",  # no such id
        f"xx_{key_id}_{secret}",
        f"ll_A{key_id[1:]}_{secret}",  # ids are lower-case hex
        f"ll_{key_id}_{secret[:19]}",  # too short a secret
        f"ll_{key_id}_{secret}!",
        f" {key}",
        revoked,
        expired,
    ):
        with pytest.raises(Unauthorized) as caught:
            access.authenticate(bad)
        assert str(caught.value) == "the API key is not valid (unknown, revoked or expired)", bad
    assert access.authenticate(key).user == "alice"  # the others changed nothing
    listed = access.keys()
    assert [k["revoked"] is not None for k in listed] == [False, True, False]


def test_bad_keys_are_refused_in_one_line_and_change_nothing(
    access: Access, archive: ll.Archive
) -> None:
    before = snapshot(archive)
    naive = datetime.now() + timedelta(days=1)  # the point: no zone
    for kwargs, says in (
        ({"scopes": []}, "scopes []: give one or more of read, write, admin"),
        ({"scopes": ["read", "root"]}, "scopes ['root']: give one or more of read, write, admin"),
        ({"expires": timedelta(seconds=-1)}, "a time in the future, with its zone"),
        ({"expires": timedelta(0)}, "a time in the future, with its zone"),
        ({"expires": naive}, "a time in the future, with its zone"),
    ):
        with pytest.raises(InvalidArgument) as caught:
            access.create_key("alice", **kwargs)
        assert says in str(caught.value) and "\n" not in str(caught.value), kwargs
    with pytest.raises(NotFound, match="there is no user 'nobody'; add one with `labledger user"):
        access.create_key("nobody")
    with pytest.raises(NotFound, match=r"there is no key 'nope' \(`labledger key list`\)"):
        access.revoke_key("nope", by="tests")
    assert snapshot(archive) == before


def test_a_key_expires_when_it_says(access: Access) -> None:
    soon = access.create_key("alice", expires=timedelta(hours=1))
    [listed] = access.keys()
    expires = datetime.fromisoformat(listed["expires"])
    created = datetime.fromisoformat(listed["created"])
    assert expires - created == timedelta(hours=1) and listed["note"] == ""
    assert access.authenticate(soon).user == "alice"
    at = datetime.now(UTC) + timedelta(days=2)
    later = access.create_key("alice", expires=at)
    assert datetime.fromisoformat(access.keys()[1]["expires"]) == at
    assert access.authenticate(later).user == "alice"
    [audited] = [a for a in access.audit() if a["target"] == listed["id"]]
    assert audited["action"] == "key.create" and audited["who"] == "alice"
    assert audited["detail"] == {"user": "alice", "scopes": ["read"]}


def test_a_key_is_refused_from_the_moment_it_expires(
    access: Access, monkeypatch: pytest.MonkeyPatch
) -> None:
    import labledger.access

    at = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
    key = access.create_key("alice", expires=at)

    class Then(datetime):
        moment = at - timedelta(microseconds=1)

        @classmethod
        def now(cls, tz: Any = None) -> Any:
            return cls.moment

    monkeypatch.setattr(labledger.access, "datetime", Then)
    assert access.authenticate(key).user == "alice"  # a microsecond before
    Then.moment = at
    with pytest.raises(Unauthorized):
        access.authenticate(key)


def test_revoking_a_key_is_recorded_with_who_did_it(access: Access) -> None:
    key = access.create_key("alice", by="admin")
    key_id = key.split("_")[1]
    access.revoke_key(key_id, by="root")
    [listed] = access.keys()
    assert listed["revoked"] is not None
    assert datetime.fromisoformat(listed["revoked"]) >= datetime.fromisoformat(listed["created"])
    last, first = access.audit(limit=2)
    assert (last["who"], last["action"], last["target"]) == ("root", "key.revoke", key_id)
    assert last["detail"] == {"user": "alice"}
    assert (first["who"], first["action"]) == ("admin", "key.create")


def test_the_headers_a_key_may_come_in(access: Access) -> None:
    key = access.create_key("alice")
    keys = ApiKeys(access)
    for headers in ({"authorization": f"Bearer {key}"}, {"authorization": f"bearer  {key} "},
                    {"x-api-key": key},
                    {"x-api-key": "ll_nope", "authorization": f"BEARER {key}"}):  # fmt: skip
        assert keys(headers).user == "alice", headers
    for headers, says in (
        ({"authorization": f"Basic {key}"}, "Authorization takes 'Bearer <API key>'"),
        ({"authorization": "Bearer "}, "Authorization takes 'Bearer <API key>'"),
        ({"authorization": "Bearer"}, "Authorization takes 'Bearer <API key>'"),
        ({}, "this server needs an API key: `labledger key create USER`, then send it as "
             "'Authorization: Bearer <key>'"),
        ({"x-api-key": ""}, "this server needs an API key"),
        ({"x-api-key": "ll_nope"}, "the API key is not valid"),
    ):  # fmt: skip
        with pytest.raises(Unauthorized) as caught:
            keys(headers)
        assert str(caught.value).startswith(says), headers
    public = ApiKeys(access, public=True)
    assert public({}) is ANONYMOUS
    assert public({"x-api-key": key}).user == "alice"  # a key still counts on a public server
    with pytest.raises(Unauthorized):
        public({"x-api-key": "ll_nope"})  # and a bad one is refused, not taken as anonymous
    with pytest.raises(Unauthorized):
        public({"authorization": "Basic x"})


def test_a_principal_is_kept_for_keep_s_then_asked_again(access: Access) -> None:
    key = access.create_key("alice")
    kept, asked = ApiKeys(access, keep_s=10**9), ApiKeys(access, keep_s=0)
    assert kept.keep_s == 10**9 and ApiKeys(access).keep_s == 5.0
    assert kept({"x-api-key": key}).user == asked({"x-api-key": key}).user == "alice"
    access.add_user("alice", project="third", role="admin", by="tests")
    access.revoke_key(key.split("_")[1], by="tests")
    # within keep_s: what was known when asked (documented: a revocation takes that long)
    assert "third" not in kept({"x-api-key": key}).roles
    with pytest.raises(Unauthorized):
        asked({"x-api-key": key})  # keep_s=0: asked each time


class _Clock:
    """What ``time.monotonic`` says, set by the test: the moment is the test's, not a guess."""

    def __init__(self, now: float) -> None:
        self.now = now

    def monotonic(self) -> float:
        return self.now


def test_a_principal_is_kept_exactly_keep_s_seconds(
    access: Access, monkeypatch: pytest.MonkeyPatch
) -> None:
    import labledger.access

    clock = _Clock(1000.0)
    monkeypatch.setattr(labledger.access, "time", clock)
    key = access.create_key("alice")
    keys = ApiKeys(access)  # keeps a principal 5 s
    assert keys({"x-api-key": key}).roles == {"default": "reader", "other": "writer"}
    access.add_user("alice", project="third", role="admin", by="tests")
    clock.now = 1004.999
    assert "third" not in keys({"x-api-key": key}).roles  # kept: the role counts 5 s later
    clock.now = 1005.0
    assert keys({"x-api-key": key}).roles["third"] == "admin"  # asked again, kept from now
    access.revoke_key(key.split("_")[1], by="tests")
    clock.now = 1009.0
    assert keys({"x-api-key": key}).user == "alice"
    clock.now = 1010.0
    with pytest.raises(Unauthorized):
        keys({"x-api-key": key})


# -- the server's rules ----------------------------------------------------------------------


def test_readable_projects_and_a_reader_of_none(two: Two) -> None:
    assert two.ctx.readable(ALICE) == {"default"} and two.ctx.readable(BOB) == {"other"}
    assert two.ctx.readable(ANONYMOUS) is None
    with pytest.raises(Forbidden) as caught:
        two.ctx.readable(NOBODY)
    assert str(caught.value) == "eve may not read any project of this archive"
    with pytest.raises(Forbidden):
        two.ctx.visible_ids(NOBODY, two.ids[1233])


def test_require_gives_the_runs_only_if_every_one_is_readable(two: Two) -> None:
    assert [r.number for r in two.ctx.require(ALICE, [1233])] == [1233]
    assert [r.number for r in two.ctx.require(ALICE, [1234, 1233, 1233])] == [1233, 1234]
    everything = two.ctx.require(ANONYMOUS, [1240, 1233, 1234])
    assert [r.number for r in everything] == [1233, 1234, 1240]
    assert two.ctx.require(ALICE, []) == []
    for numbers, first in (([1240], 1240), ([1233, 1240], 1240), ([9999, 1233], 9999),
                           ([9999, 9998], 9998)):  # fmt: skip
        with pytest.raises(NotFound) as caught:
            two.ctx.require(ALICE, numbers)
        assert str(caught.value) == f"run {first} does not exist (or is not yours to read)"
    with pytest.raises(TooLarge) as caught:
        two.ctx.require(ANONYMOUS, [1, 2, 3, 4])
    assert str(caught.value) == "4 runs; at most 3 in one request"
    with pytest.raises(NotFound, match="run 1 does"):
        two.ctx.require(ANONYMOUS, [1, 2, 3])  # three is the limit: checked, not refused


def test_require_a_scope_beyond_reading(two: Two) -> None:
    assert [r.number for r in two.ctx.require(CAROL, [1233, 1234], "write")] == [1233, 1234]
    with pytest.raises(Forbidden) as caught:
        two.ctx.require(ALICE, [1233], "write")
    assert str(caught.value) == "alice may not write in project 'default'"
    both = Principal(user="dan", scopes=frozenset({"read", "write"}),
                     roles={"default": "reader", "other": "writer"})  # fmt: skip
    assert [r.number for r in two.ctx.require(both, [1240], "write")] == [1240]
    with pytest.raises(Forbidden, match="dan may not write in project 'default'"):
        two.ctx.require(both, [1240, 1233], "write")
    with pytest.raises(NotFound, match="run 1240 does not exist"):
        two.ctx.require(CAROL, [1240], "write")  # not readable: not found, project unnamed


def test_may_read_only_a_non_empty_set_of_readable_runs(two: Two) -> None:
    assert two.ctx.may_read(ALICE, [1233]) and two.ctx.may_read(ALICE, {1233, 1234})
    assert not two.ctx.may_read(ALICE, [])  # nothing to read is not a licence
    assert not two.ctx.may_read(ANONYMOUS, [])
    assert not two.ctx.may_read(ALICE, [1240]) and not two.ctx.may_read(ALICE, [1233, 1240])
    assert not two.ctx.may_read(ALICE, [9999])
    assert two.ctx.may_read(ANONYMOUS, [1233, 1240])
    assert not two.ctx.may_read(ANONYMOUS, [1233, 1234, 1240, 9999])  # over max_runs


def test_a_run_of_another_project_is_not_found_like_no_run(two: Two) -> None:
    catalog = two.la.catalog
    row = catalog.by_number(1233)
    assert two.ctx.visible(ALICE, row, "run 1233") is row
    for who, hidden, what in ((ALICE, catalog.by_number(1240), "run 1240"),
                              (ALICE, None, "run 9999"), (BOB, row, "object 'x'")):  # fmt: skip
        with pytest.raises(NotFound) as caught:
            two.ctx.visible(who, hidden, what)
        assert str(caught.value) == f"{what} does not exist (or is not yours to read)"
    assert two.ctx.run_of(ALICE, 1234).id == two.ids[1234]  # withdrawn: read by number
    run = two.ctx.run_of(ALICE, 1233)  # a run of the archive served, to read from
    assert run.sources[0].sha256 == two.la.runs[1233].sources[0].sha256
    assert two.ctx.run_of(BOB, 1240).number == 1240
    with pytest.raises(NotFound, match=r"^run 1240 does not exist \(or is not yours to read\)$"):
        two.ctx.run_of(ALICE, 1240)
    ctx = two.ctx
    assert ctx.project_of(two.ids[1240]) == "other" and ctx.project_of("nope") is None
    assert ctx.project_of(two.ids[1233]) == "default" and ctx.project_of("nope") is None
    assert ctx.project_of(two.ids[1240]) == "other"  # kept: asked again


def test_visible_ids_keeps_the_callers_runs(two: Two) -> None:
    ids = two.ids
    assert two.ctx.visible_ids(ALICE, f"{ids[1233]},{ids[1240]}") == [ids[1233]]
    assert sorted(two.ctx.visible_ids(ANONYMOUS, f"{ids[1233]},,{ids[1240]},")) == sorted(
        [ids[1233], ids[1240]]
    )
    assert two.ctx.visible_ids(BOB, f"{ids[1233]},nope") == []
    for text in ("", ",", ",,", f"{ids[1233]},{ids[1234]},{ids[1240]}"):  # 0 or 3 > max_page 2
        with pytest.raises(InvalidArgument) as caught:
            two.ctx.visible_ids(ALICE, text)
        assert str(caught.value) == "runs: 1 to 2 comma-separated run ids", text


def test_a_product_is_read_if_all_its_runs_are(two: Two) -> None:
    made = two.products
    assert two.ctx.product_runs(product_queries.by_id(two.la.catalog, made["alice"])) == {1233}
    assert two.ctx.product_runs(product_queries.by_id(two.la.catalog, made["both-set"])) == {
        1233, 1240}  # fmt: skip
    for whose, readers in (("alice", {"alice", "anonymous"}), ("bob", {"bob", "anonymous"}),
                           ("alice-set", {"alice", "anonymous"}), ("both-set", {"anonymous"}),
                           ("no-run", set()), ("empty-set", set()), ("no-run-input", set()),
                           ("runless-part-set", set()),
                           ("alice-reading-1240", {"alice", "anonymous"})):  # fmt: skip
        for who in (ALICE, BOB, ANONYMOUS):
            if who.name in readers:
                assert two.ctx.product_of(who, made[whose]).id == made[whose], (whose, who)
            else:
                with pytest.raises(NotFound) as caught:
                    two.ctx.product_of(who, made[whose])
                assert str(caught.value) == (
                    f"product {made[whose]!r} does not exist (or is not yours to read)"
                ), (whose, who)


def test_a_product_prefix_answers_among_the_callers_products_only(two: Two) -> None:
    mine = two.products["alice-prefixed"]
    assert two.ctx.product_of(ALICE, PREFIX).id == mine  # bob's and the shared one don't count
    assert two.ctx.product_of(ALICE, mine[:13]).id == mine
    assert two.ctx.product_of(BOB, PREFIX).id == two.products["bob-prefixed"]
    with pytest.raises(NotFound) as caught:
        two.ctx.product_of(ANONYMOUS, PREFIX)  # three products begin so
    assert str(caught.value) == f"{PREFIX!r} begins the ids of several products; give more of it"
    with pytest.raises(NotFound, match="does not exist"):
        two.ctx.product_of(ALICE, PREFIX[:7])  # fewer than 8 characters: no prefix search
    with pytest.raises(NotFound, match="does not exist"):
        two.ctx.product_of(ALICE, two.products["bob-prefixed"][:13])
    with pytest.raises(Forbidden):
        two.ctx.product_of(NOBODY, mine)


def test_by_prefix_and_of_projects_in_sql(two: Two) -> None:
    catalog, made = two.la.catalog, two.products
    prefixed = [made["alice-prefixed"], made["bob-prefixed"], made["both-prefixed"]]

    def found(prefix: str, **kwargs: Any) -> list[str]:
        return [r.id for r in product_queries.by_prefix(catalog, prefix, **kwargs)]

    assert found(PREFIX) == prefixed[:2]  # two at most by default, by id
    assert found(PREFIX, limit=10) == prefixed
    assert found(PREFIX, limit=10, projects={"default"}) == prefixed[:1]
    assert found(PREFIX, limit=10, projects=["other"]) == prefixed[1:2]
    assert found(PREFIX, limit=10, projects={"default", "other"}) == prefixed
    assert found(PREFIX, limit=10, projects=set()) == []
    assert found(f"{PREFIX}-0003", projects={"default"}) == []
    # the prefix is text, not a pattern
    assert found("feedfac_", limit=10) == [] and found("feedface-000%", limit=10) == []
    # every product over "default"'s runs only: listed by hand from the fixture
    with catalog.reading() as session:
        of_default = set(session.scalars(
            select(product_table.c.id).where(product_queries.of_projects({"default"}))
        ))  # fmt: skip
        everyone = set(session.scalars(
            select(product_table.c.id).where(product_queries.of_projects({"default", "other"}))
        ))  # fmt: skip
        all_ids = set(session.scalars(select(product_table.c.id)))
    alice_parts = {i.ref for i in product_queries.inputs_of(catalog, [made["alice-set"]])[
        made["alice-set"]] if i.kind == "product"}  # fmt: skip
    nobodys = {made[p] for p in ("no-run", "empty-set", "no-run-input", "runless-part-set")}
    assert of_default >= {made["alice"], made["alice-set"], made["alice-prefixed"],
                          made["alice-reading-1240"]}  # fmt: skip
    assert not of_default & {made["bob"], made["both-set"], made["bob-prefixed"],
                             made["both-prefixed"], *nobodys}  # fmt: skip
    assert everyone == all_ids - nobodys
    assert alice_parts <= of_default | {None}


def test_listings_keep_the_projects_asked_and_leave_withdrawn_runs_out(two: Two) -> None:
    catalog = two.la.catalog

    def numbers(rows: list[Any]) -> list[int]:
        return [r.number for r in rows]

    assert numbers(catalog.page(None, 10)) == [1233, 1240]  # 1234 is withdrawn
    assert numbers(catalog.page(None, 10, {"default"})) == [1233]
    assert numbers(catalog.page(None, 10, ["other"])) == [1240]
    assert numbers(catalog.page(None, 10, set())) == []
    assert catalog.count() == 2 and catalog.count(projects={"default"}) == 1
    assert catalog.count(projects=set()) == 0
    assert numbers(catalog.last(5, {"default", "other"})) == [1233, 1240]
    assert catalog.newest(0, {"other"}).number == 1240
    assert catalog.newest(0, {"default"}).number == 1233
    assert numbers(catalog.search(projects={"default"})) == [1233]
    assert numbers(catalog.search(projects={"default"}, withdrawn=None)) == [1233, 1234]
    assert numbers(catalog.search(projects=["other"], withdrawn=None)) == [1240]
    assert numbers(catalog.search(withdrawn=True)) == [1234]


def test_a_flag_is_read_if_all_its_runs_are(two: Two) -> None:
    flags = two.flags
    assert two.ctx.flag_of(ALICE, flags["alice"]).reason == "alice's"
    assert two.ctx.flag_of(ANONYMOUS, flags["both"]).runs == [1233, 1240]
    for who, whose in ((ALICE, "bob"), (ALICE, "both"), (BOB, "alice"), (BOB, "both")):
        with pytest.raises(NotFound) as caught:
            two.ctx.flag_of(who, flags[whose])
        assert str(caught.value) == f"flag {flags[whose]} does not exist (or is not yours to read)"
    with pytest.raises(NotFound) as caught:
        two.ctx.flag_of(ANONYMOUS, 9999)  # none: the same words, not the local hint
    assert str(caught.value) == "flag 9999 does not exist (or is not yours to read)"


def test_a_good_run_list_is_read_if_it_has_runs_and_all_are_readable(two: Two) -> None:
    assert list(two.ctx.good_runs_of(ALICE, "alice-only")) == [1233]
    assert list(two.ctx.good_runs_of(ANONYMOUS, "both")) == [1233, 1240]
    assert list(two.ctx.good_runs_of(ANONYMOUS, "empty@1")) == []  # a reader of everything
    for who, label in ((ALICE, "both"), (BOB, "both"), (BOB, "alice-only"), (ALICE, "empty"),
                       (BOB, "empty"), (ALICE, "no-such-list"), (ANONYMOUS, "no-such-list"),
                       (ALICE, "alice-only@2")):  # fmt: skip
        with pytest.raises(NotFound) as caught:
            two.ctx.good_runs_of(who, label)
        # one message for all: the names there are are not for every caller
        assert str(caught.value) == (
            f"good-run list {label!r} does not exist (or is not yours to read)"
        ), (who, label)
    with pytest.raises(Forbidden):
        two.ctx.good_runs_of(NOBODY, "alice-only")
