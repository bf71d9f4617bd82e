"""Rich display of result objects: a text table for ``repr`` and an HTML table for Jupyter.

A result class builds one :class:`Table` (title, column names, rows, notes) in its
``_table()`` method and inherits :class:`TableRepr`: ``repr(result)`` is the table as
aligned text, and a notebook shows ``result._repr_html_()``, the same table in HTML. Both
are built from the same numbers, so what a notebook shows is what ``print`` shows.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass, field
from numbers import Integral, Real

__all__ = ["Table", "TableRepr", "format_value"]


def format_value(value) -> str:
    """A cell as text: floats to 4 significant digits, None and NaN as ``-``.

    Examples
    --------
    >>> format_value(0.0123456), format_value(12345.678), format_value(None), format_value(3)
    ('0.01235', '1.235e+04', '-', '3')
    """
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, Integral):
        return str(int(value))
    if isinstance(value, Real):
        v = float(value)
        return "-" if math.isnan(v) else f"{v:.4g}"
    if isinstance(value, (list, tuple)):
        return ", ".join(format_value(v) for v in value)
    return str(value)


@dataclass
class Table:
    """A small table: a title, column names, rows of cells and notes under it.

    Attributes
    ----------
    title : str
    columns : sequence of str
        One name per column (the first names the row labels).
    rows : list of sequence
        Cells, one sequence per row, as many as ``columns``; a row of one cell is a
        section heading spanning the table.
    notes : list of str
    """

    title: str
    columns: tuple = ("", "value")
    rows: list = field(default_factory=list)
    notes: list = field(default_factory=list)

    def text(self) -> str:
        """Aligned plain text (what ``repr`` shows)."""
        cells = [[format_value(c) for c in r] for r in self.rows]
        right = [[i > 0 and (r[i] is None or isinstance(r[i], (Real, bool))) for i in range(len(r))] for r in self.rows]
        width = len(self.columns)
        widths = [len(str(c)) for c in self.columns]
        for r in cells:
            if len(r) == width:
                widths = [max(w, len(c)) for w, c in zip(widths, r)]
        def line(r, rj):  # numbers right-aligned, text left-aligned
            return "  ".join(c.rjust(w) if j else c.ljust(w) for c, w, j in zip(r, widths, rj)).rstrip()

        out = [self.title]
        if any(self.columns[1:]) or self.columns[0]:
            out.append(line([str(c) for c in self.columns], [i > 0 for i in range(width)]))
        for r, rj in zip(cells, right):
            out.append(("  " + r[0]) if len(r) == 1 else line(r, rj))
        out += [f"note: {n}" for n in self.notes]
        return "\n".join(out)

    def html(self) -> str:
        """An HTML table (what a notebook shows)."""
        esc = lambda v: html.escape(format_value(v))  # noqa: E731
        n = len(self.columns)
        parts = ['<table class="densemap-table">', f'<caption style="text-align:left"><b>{html.escape(self.title)}</b></caption>']
        if any(self.columns[1:]) or self.columns[0]:
            parts.append("<thead><tr>" + "".join(f"<th>{html.escape(str(c))}</th>" for c in self.columns) + "</tr></thead>")
        parts.append("<tbody>")
        for r in self.rows:
            if len(r) == 1:
                parts.append(f'<tr><th colspan="{n}" style="text-align:left">{esc(r[0])}</th></tr>')
            else:
                parts.append("<tr>" + f'<td style="text-align:left">{esc(r[0])}</td>'
                             + "".join(f"<td>{esc(c)}</td>" for c in r[1:]) + "</tr>")
        parts.append("</tbody></table>")
        parts += [f"<p><i>{html.escape(n)}</i></p>" for n in self.notes]
        return "".join(parts)


class TableRepr:
    """Mixin: ``repr`` and ``_repr_html_`` from the class's ``_table() -> Table``."""

    def _table(self) -> Table:  # pragma: no cover - every user defines it
        raise NotImplementedError

    def __repr__(self) -> str:
        return self._table().text()

    def _repr_html_(self) -> str:
        return self._table().html()
