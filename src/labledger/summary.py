"""What an archive holds, in a few numbers: its runs and their time span, raw files by format
and size, the newest run, the active flags and the current products (the catalog counts them:
``labledger.catalog.summary``; a server sends them).

>>> print(la.summary())
runs       5: 1234 to 1265, started 2026-11-07 12:23:59 to 2026-11-07 15:29:59 UTC
newest     run 1265, started 2026-11-07 15:29:59 UTC
raw files  5, 6.2 MB
formats    tdms 5 (6.2 MB)
...
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from labledger.display import html_table, human_size

_WHEN = "%Y-%m-%d %H:%M:%S"


@dataclass(frozen=True)
class Summary:
    """What an archive holds: ``runs`` (closed) numbered ``first`` to ``last`` and started
    from ``started`` to ``until``; the ``newest`` run (``runs[-1]``) and its start; their
    ``raw_files`` of ``raw_bytes`` in all and by format (``formats``: files and bytes of
    each); ``data_bytes`` their arrays decoded; the active ``flags`` by severity; how many
    ``products`` are current.

    >>> s = Summary(runs=0)
    >>> s.runs, s.raw_bytes, str(s).splitlines()[0]
    (0, 0, 'runs       none yet')
    """

    runs: int
    first: int | None = None
    last: int | None = None
    started: datetime | None = None
    until: datetime | None = None
    newest: int | None = None
    newest_started: datetime | None = None
    raw_files: int = 0
    raw_bytes: int = 0
    data_bytes: int = 0
    formats: dict[str, dict[str, int]] = field(default_factory=dict)  # format -> files, bytes
    flags: dict[str, int] = field(default_factory=dict)  # severity -> active flags
    products: int = 0

    def facts(self) -> list[tuple[str, str]]:
        """(what, how much) in words: the lines of ``str`` and the rows of the HTML table."""
        if not self.runs:
            runs = "none yet"
        else:
            runs = (
                f"{self.runs}: {self.first} to {self.last}, started "
                f"{self.started:{_WHEN}} to {self.until:{_WHEN}} UTC"
            )
        newest = []
        if self.newest is not None and self.newest_started is not None:
            newest = [("newest", f"run {self.newest}, started {self.newest_started:{_WHEN}} UTC")]
        formats = ", ".join(
            f"{name} {n['files']} ({human_size(n['bytes'])})"
            for name, n in sorted(self.formats.items())
        )
        flags = sum(self.flags.values())
        severities = ", ".join(f"{n} {s}" for s, n in sorted(self.flags.items()))
        return [
            ("runs", runs),
            *newest,
            ("raw files", f"{self.raw_files}, {human_size(self.raw_bytes)}"),
            *([("formats", formats)] if formats else []),
            ("arrays", f"{human_size(self.data_bytes)} decoded"),
            ("flags", f"{flags} active" + (f" ({severities})" if flags else "")),
            ("products", f"{self.products} current"),
        ]

    def __str__(self) -> str:
        return "\n".join(f"{what:<10} {text}" for what, text in self.facts())

    def __repr__(self) -> str:
        span = f" {self.first}-{self.last}" if self.runs else ""
        return (
            f"<Summary: {self.runs} runs{span}, {self.raw_files} raw files "
            f"({human_size(self.raw_bytes)}), {sum(self.flags.values())} active flags, "
            f"{self.products} products>"
        )

    def _repr_html_(self) -> str:
        return html_table(self.facts(), title="archive summary")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("started", "until", "newest_started"):
            data[key] = data[key].isoformat() if data[key] is not None else None
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Summary:
        """The summary :meth:`to_dict` gave (as a server sends it)."""
        times = {
            key: datetime.fromisoformat(data[key]) if data.get(key) else None
            for key in ("started", "until", "newest_started")
        }
        return cls(**{**data, **times})
