"""Withdrawn runs: a mistake undone, never rewritten.

A run that should not have been ingested (a ``.txt`` note that became a run of one junk
channel) is *withdrawn* with a reason: it leaves ``la.runs`` listings, searches and good-run
lists, stays readable by number and id (``run.withdrawn`` says why), and the products that read
it become stale. Nothing is deleted: its raw files and arrays stay, and a withdrawal is undone
by a *restoration*, a record with its own reason. Both stay in the history.

>>> import labledger as ll, tempfile
>>> from labledger.sim import write_shot
>>> folder = tempfile.mkdtemp()
>>> la = ll.init(folder + "/archive")
>>> _ = la.ingest([write_shot(folder, 1234)])
>>> la.withdraw(1234, reason="a note, not a shot").reason
'a note, not a shot'
>>> len(la.runs), la.runs[1234].withdrawn.reason
(0, 'a note, not a shot')
>>> la.restore(1234, reason="it was a shot after all").active
False
>>> len(la.runs), la.runs[1234].withdrawn is None
(1, True)
"""

from __future__ import annotations

import builtins  # `list` in class Withdrawals is its method
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np

from labledger.errors import InvalidArgument, NotFound
from labledger.ids import author, check_reason
from labledger.records import (
    MAX_RUN_NUMBER,
    RESTORE,
    WITHDRAW,
    RunCatalog,
    RunRecord,
    WithdrawalEntry,
    WithdrawalRecord,
)


@dataclass(frozen=True)
class Withdrawal:
    """A run's withdrawal, as recorded: ``run`` (number) and ``run_id``, ``reason``,
    ``author`` and ``created`` (UTC); and, once the run is restored, the restoration's id
    (``restored_by``), ``restore_reason``, ``restore_author`` and ``restored`` (when).

    >>> w = Withdrawal(1, 1234, "0190", "a note", "ana@lab", datetime(2026, 11, 30, tzinfo=UTC))
    >>> w.active, str(w)
    (True, 'withdrawn 2026-11-30 00:00:00 UTC by ana@lab: a note')
    """

    id: int
    run: int
    run_id: str
    reason: str
    author: str
    created: datetime
    restored_by: int | None = None
    restore_reason: str | None = None
    restore_author: str | None = None
    restored: datetime | None = None

    @classmethod
    def from_entry(cls, entry: WithdrawalEntry) -> Withdrawal:
        """The withdrawal a catalog entry holds (its row and the row that undid it, if any)."""
        row, undone = entry
        return cls(
            id=row.id,
            run=row.run_number,
            run_id=row.run_id,
            reason=row.reason,
            author=row.author,
            created=row.created,
            restored_by=undone.id if undone else None,
            restore_reason=undone.reason if undone else None,
            restore_author=undone.author if undone else None,
            restored=undone.created if undone else None,
        )

    @property
    def active(self) -> bool:
        """Whether the run is withdrawn still (not restored since)."""
        return self.restored_by is None

    def __str__(self) -> str:
        said = f"withdrawn {self.created:%Y-%m-%d %H:%M:%S} UTC by {self.author}: {self.reason}"
        if self.restored is None:
            return said
        return (
            f"{said}; restored {self.restored:%Y-%m-%d %H:%M:%S} UTC by {self.restore_author}: "
            f"{self.restore_reason}"
        )

    def __repr__(self) -> str:
        state = "active" if self.active else f"restored by {self.restored_by}"
        return f"<Withdrawal {self.id} of run {self.run} ({self.reason}), {state}>"

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "run": self.run,
            "run_id": self.run_id,
            "reason": self.reason,
            "author": self.author,
            "created": self.created.isoformat(),
            "active": self.active,
            "restored_by": self.restored_by,
            "restore_reason": self.restore_reason,
            "restore_author": self.restore_author,
            "restored": self.restored.isoformat() if self.restored else None,
        }


class Withdrawals:
    """An archive's withdrawn runs: :meth:`withdraw`, :meth:`restore`, :meth:`list`,
    :meth:`active` (what ``la.withdraw``, ``la.restore`` and ``run.withdrawn`` use).

    >>> _ = la.withdraw(1234, reason="a note, not a shot")
    >>> _ = la.restore(1234, reason="it was a shot after all")
    >>> la.withdrawals.list(run=1234)
    [<Withdrawal 1 of run 1234 (a note, not a shot), restored by 2>]
    """

    def __init__(self, catalog: RunCatalog, *, by: str | None = None):
        self._catalog = catalog
        self._by = by  # who withdraws: a server's caller; else this process's user@host

    def __repr__(self) -> str:
        return f"<Withdrawals in {self._catalog.display_url}>"

    def withdraw(self, run: Any, *, reason: str) -> Withdrawal:
        """Withdraw ``run`` (a number, an id or a :class:`~labledger.runs.Run`) with a reason:
        it leaves listings and searches, stays readable by number and id. Refused, with the
        catalog unchanged, for an unknown run, a run withdrawn already, or no reason.

        >>> la.withdrawals.withdraw(1234, reason="a note, not a shot")
        <Withdrawal 1 of run 1234 (a note, not a shot), active>
        """
        row = self._row(run, reason, WITHDRAW)
        return self._withdrawal(row.id, row.run_id)

    def restore(self, run: Any, *, reason: str) -> Withdrawal:
        """Undo the withdrawal of ``run``: it is listed and searched again. The withdrawal
        stays in the history, with this restoration's reason; it is returned. Refused for a
        run that is not withdrawn, an unknown run, or no reason.

        >>> la.withdrawals.withdraw(1234, reason="a note, not a shot")
        <Withdrawal 1 of run 1234 (a note, not a shot), active>
        >>> la.withdrawals.restore(1234, reason="it was a shot after all")
        <Withdrawal 1 of run 1234 (a note, not a shot), restored by 2>
        """
        row = self._row(run, reason, RESTORE)
        assert row.target is not None
        return self._withdrawal(row.target, row.run_id)

    def list(self, *, run: Any = None, include_restored: bool = True) -> list[Withdrawal]:
        """Every withdrawal, oldest first (of ``run`` only, if given); with
        ``include_restored=False``, only of the runs withdrawn now."""
        ids = None if run is None else [resolve(self._catalog, run, "run").id]
        entries = self._catalog.withdrawals(ids, active_only=not include_restored)
        return [Withdrawal.from_entry(e) for e in entries]

    def active(self, run_ids: builtins.list[str]) -> dict[str, Withdrawal]:
        """The withdrawal in force on each of these runs (by id) that is withdrawn."""
        entries = self._catalog.withdrawals(run_ids, active_only=True) if run_ids else []
        return {e[0].run_id: Withdrawal.from_entry(e) for e in entries}

    def _row(self, run: Any, reason: Any, action: str) -> WithdrawalRecord:
        found = resolve(self._catalog, run, "run")
        what = "a withdrawal" if action == WITHDRAW else "a restoration"
        row = WithdrawalRecord(
            action=action,
            run_id=found.id,
            run_number=found.number,
            seq=0,  # the next of the run's, taken in the transaction
            target=None,
            reason=check_reason(reason, what),
            author=self._by or author(),
            created=datetime.now(UTC),
        )
        return self._catalog.append_withdrawal(row, found.number)

    def _withdrawal(self, withdrawal_id: int, run_id: str) -> Withdrawal:
        entries = self._catalog.withdrawals([run_id])
        return next(Withdrawal.from_entry(e) for e in entries if e[0].id == withdrawal_id)


def resolve(catalog: Any, run: Any, name: str) -> RunRecord:
    """The catalog row of ``run``: a run number, a run id, or a Run (which must be this
    archive's); :class:`NotFound` if there is no such run."""
    number = getattr(run, "number", run)
    given_id = getattr(run, "id", None)
    row: RunRecord | None
    if isinstance(number, str):
        row = catalog.by_id(number)
        if row is None:
            raise NotFound(f"no run has the id {number!r} (list the runs with `labledger runs`)")
        return row
    if isinstance(number, bool) or not isinstance(number, (int, np.integer)):
        raise InvalidArgument(f"{name}={run!r}: give a run number, a run id or a Run")
    if not 0 <= number <= MAX_RUN_NUMBER:
        raise InvalidArgument(f"{name}: {number} is not a run number (0 to {MAX_RUN_NUMBER})")
    row = catalog.by_number(int(number))
    if row is None:
        raise NotFound(f"run {number} does not exist (list the runs with `labledger runs`)")
    if given_id is not None and row.id != given_id:
        raise InvalidArgument(
            f"run {number} given is not this archive's run {number} (another archive's?)"
        )
    return row
