"""What an ingest and a check report: plain records, the same from a local archive and from a
server (which sends them as JSON).

>>> IngestResult(number=1234, files=["01234_Data.tdms"], channels=4).message()
'01234_Data.tdms: ingested as run 1234 (4 channels)'
>>> CheckReport(runs=5, files=5).ok
True
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class IngestResult:
    """What happened to one run of an ingest."""

    number: int
    files: list[str]
    already: bool = False
    run_id: str | None = None
    channels: int = 0
    data_bytes: int = 0
    problems: list[str] = field(default_factory=list)
    numbered: str = (
        ""  # where the number came from, in words (see :func:`labledger.ingest.ingest.number_of`)
    )
    incomplete: str | None = None  # why the run lacks what its structure says is always saved

    def message(self) -> str:
        names = ", ".join(self.files)
        if self.already:
            return f"{names}: already ingested as run {self.number}"
        numbered = f"; number: {self.numbered}" if self.numbered else ""
        text = f"{names}: ingested as run {self.number} ({self.channels} channels{numbered})"
        if self.problems:
            text += f"; not ingested, kept in the raw file only: {'; '.join(self.problems)}"
        if self.incomplete:
            text += f"; {self.incomplete}"
        return text

    def to_json(self) -> dict[str, Any]:
        return {
            "run": self.number,
            "id": self.run_id,
            "files": self.files,
            "status": "already ingested" if self.already else "ingested",
            "channels": self.channels,
            "data_bytes": self.data_bytes,
            "problems": self.problems,
            "numbered": self.numbered,
            "incomplete": self.incomplete,
        }


@dataclass
class Problem:
    """Something recorded that the store does not hold as recorded."""

    run: int
    file: str  # a raw file's name, or a channel's key
    what: str  # "raw file" or "array"
    reason: str

    def message(self) -> str:
        return f"run {self.run}: {self.what} {self.file}: {self.reason}"


@dataclass
class Orphan:
    """A folder below ``runs/`` that no run names."""

    key: str
    bytes: int
    age_s: float | None  # since its newest object was written (None: it holds none)
    removed: bool = False
    kept: str | None = None  # why a repair left it


@dataclass
class CheckReport:
    """What :func:`labledger.integrity.check` found. ``ok``: every recorded byte is there as
    recorded (orphan folders are waste, not damage)."""

    runs: int = 0
    files: int = 0
    arrays: int = 0
    bytes_read: int = 0
    repair: bool = False
    problems: list[Problem] = field(default_factory=list)
    orphans: list[Orphan] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, **asdict(self)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CheckReport:
        return cls(
            runs=data["runs"],
            files=data["files"],
            arrays=data["arrays"],
            bytes_read=data["bytes_read"],
            repair=data["repair"],
            problems=[Problem(**p) for p in data["problems"]],
            orphans=[Orphan(**o) for o in data["orphans"]],
        )
