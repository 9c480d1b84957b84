"""A local archive and one through a server answer the same calls with the same parameters
(labledger.interface.ArchiveAPI): what mypy holds them to in src, checked here as the suite runs.
What each call does on both is tests/test_local_remote.py's."""

from __future__ import annotations

import inspect

import pytest

from labledger.archive import Archive
from labledger.client.remote import RemoteArchive, RemoteCatalog
from labledger.interface import ArchiveAPI
from labledger.records import RunCatalog


def members(protocol: type) -> list[str]:
    """The calls and attributes a protocol declares (not those typing adds to every one)."""
    declared = {n for n, v in vars(protocol).items() if callable(v) or isinstance(v, property)}
    return sorted((declared | set(protocol.__annotations__)) - {"__init__", "__subclasshook__"})


CALLS = members(ArchiveAPI)
CATALOG_CALLS = members(RunCatalog)


def parameters(owner: type, name: str) -> list[tuple[str, object, object]]:
    """A call's parameters as (name, kind, default); [] for an attribute or a property."""
    member = inspect.getattr_static(owner, name, None)
    if member is None:  # an attribute set in __init__, declared on the class
        assert name in owner.__annotations__, f"{owner.__name__} has no {name!r}"
        return []
    if not callable(member) or isinstance(member, type):
        return []
    return [(p.name, p.kind, p.default) for p in inspect.signature(member).parameters.values()]


def same_call(owner: type, protocol: type, name: str) -> None:
    """``owner.name`` takes the protocol's parameters, in order, and anything more it takes is
    optional (a local ingest may also take ``limits=``)."""
    expected = parameters(protocol, name)
    found = parameters(owner, name)
    names = {p[0] for p in expected}
    assert [p for p in found if p[0] in names] == expected, f"{owner.__name__}.{name}"
    extra = [p for p in found if p[0] not in names]
    assert all(p[2] is not inspect.Parameter.empty for p in extra), f"{owner.__name__}.{name}"


def test_the_interface_names_the_calls_users_make() -> None:
    # independent of the code: the calls DESIGN.md and the README show on an archive
    shown = {"runs", "summary", "signals", "events", "subscribe", "ingest", "check", "products",
             "compute", "lineage", "stale", "recompute", "reproduce", "openlineage", "withdraw",
             "restore", "withdrawals", "flags", "flag", "good_runs", "config", "calibrations",
             "close"}  # fmt: skip
    assert shown <= set(CALLS)


@pytest.mark.parametrize("name", CALLS)
def test_both_archives_answer_each_call_with_its_parameters(name: str) -> None:
    same_call(Archive, ArchiveAPI, name)
    same_call(RemoteArchive, ArchiveAPI, name)


@pytest.mark.parametrize("name", CATALOG_CALLS)
def test_the_remote_catalog_answers_what_runs_ask_of_a_catalog(name: str) -> None:
    same_call(RemoteCatalog, RunCatalog, name)


def test_a_call_missing_or_changed_is_seen() -> None:
    class Partial:
        catalog: object

        def withdraw(self, run: object, *, why: str) -> None: ...

    with pytest.raises(AssertionError):
        same_call(Partial, ArchiveAPI, "restore")
    with pytest.raises(AssertionError):
        same_call(Partial, ArchiveAPI, "withdraw")
    same_call(Partial, ArchiveAPI, "catalog")
