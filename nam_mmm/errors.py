"""User-facing errors: each carries a one-line message naming the file, column and rows/periods."""

from __future__ import annotations

from collections.abc import Iterable


def _format_rows(rows: Iterable[object] | None, limit: int = 8) -> str:
    if rows is None:
        return ""
    items = [str(r) for r in rows]
    if not items:
        return ""
    shown = ", ".join(items[:limit])
    more = f" (+{len(items) - limit} more)" if len(items) > limit else ""
    return shown + more


class NamMMMError(Exception):
    """Base class of every error a user should see as one line, without a traceback."""


class DataError(NamMMMError):
    """Bad input data or data configuration.

    The message is assembled as ``<file>: column '<col>', rows <r1, r2>: <problem>`` so the user
    can open the file and find the cell.
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        column: str | None = None,
        rows: Iterable[object] | None = None,
        row_label: str = "rows",
    ) -> None:
        self.problem = message
        self.file = file
        self.column = column
        self.rows = list(rows) if rows is not None else None
        where = []
        if file:
            where.append(str(file))
        if column:
            where.append(f"column '{column}'")
        rows_text = _format_rows(self.rows)
        if rows_text:
            where.append(f"{row_label} {rows_text}")
        prefix = ", ".join(where)
        super().__init__(f"{prefix}: {message}" if prefix else message)


class ConfigError(NamMMMError):
    """A configuration that cannot be built into objects (unknown name, bad value)."""


class TrainingError(NamMMMError):
    """Training cannot go on (the loss diverged to NaN or infinity)."""
