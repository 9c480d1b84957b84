"""How labledger's objects show themselves to people: sizes in words, and the HTML tables that
Jupyter draws for runs, channels, products, flags, configurations and calibrations.

Every cell is text from a user or a raw file (a channel's name, a flag's reason), so every cell
is escaped: a name such as ``<script>`` is shown, never run.

>>> human_size(1_234_567)
'1.2 MB'
>>> html_table([("<script>", 1234)])
'<table><tbody><tr><td>&lt;script&gt;</td><td>1234</td></tr></tbody></table>'
"""

from __future__ import annotations

import html
from collections.abc import Sequence

HTML_ROWS = 50  # rows a notebook table shows; the rest are counted


def human_size(n: float) -> str:
    """A byte count in decimal units, as people read them.

    >>> human_size(999), human_size(1000), human_size(3.5e12)
    ('999 B', '1.0 kB', '3.5 TB')
    """
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


def html_table(
    rows: Sequence[Sequence[object]],
    *,
    header: Sequence[str] = (),
    title: str | None = None,
    limit: int | None = HTML_ROWS,
) -> str:
    """An HTML table of ``rows`` (each cell shown as ``str``, None as nothing, all escaped),
    under ``header`` and a ``title`` caption; beyond ``limit`` rows (None: no limit), the rest
    are counted in a last row, not shown.

    >>> "… and 3 more" in html_table([(1, None)] * 5, header=["a", "b"], limit=2)
    True
    """
    more = len(rows) - limit if limit is not None else 0
    if more > 0:
        rows = rows[:limit]
    parts = ["<table>"]
    if title is not None:
        parts.append(f"<caption>{_cell(title)}</caption>")
    if header:
        parts.append("<thead><tr>" + "".join(f"<th>{_cell(h)}</th>" for h in header))
        parts.append("</tr></thead>")
    parts.append("<tbody>")
    width = len(header)
    for row in rows:
        width = max(width, len(row))
        parts.append("<tr>" + "".join(f"<td>{_cell(c)}</td>" for c in row) + "</tr>")
    if more > 0:
        parts.append(f'<tr><td colspan="{max(width, 1)}">… and {more} more</td></tr>')
    parts.append("</tbody></table>")
    return "".join(parts)


def _cell(value: object) -> str:
    return "" if value is None else html.escape(str(value))
