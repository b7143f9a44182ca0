"""Tables for chapters: rows of dicts rendered as Markdown (stable text for nbval)."""
from __future__ import annotations

from typing import Callable


def markdown_table(rows: list[dict], columns: dict[str, str],
                   formats: dict[str, Callable | str] | None = None):
    """Render ``rows`` as an IPython Markdown table.

    ``columns`` maps a row key to its header; ``formats`` maps a key to a
    format spec (``",d"``, ``".3g"``) or a callable; ``None`` shows as "–".
    """
    from IPython.display import Markdown

    formats = formats or {}

    def cell(key, value):
        if value is None:
            return "–"
        fmt = formats.get(key)
        if callable(fmt):
            return fmt(value)
        return format(value, fmt) if fmt else str(value)

    lines = ["| " + " | ".join(columns.values()) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(k, r.get(k)) for k in columns) + " |" for r in rows]
    return Markdown("\n".join(lines))
