"""Validation findings and the report that collects them (seed §3.1–3.3)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from nam_mmm.errors import DataError, _format_rows

SEVERITIES = ("error", "warning", "info")


@dataclass
class Finding:
    """One validation result.

    Attributes:
        severity: ``error`` stops the run, ``warning`` is printed and saved, ``info`` is saved.
        check: short name of the check (``duplicates``, ``continuity``, ``bounds`` ...).
        message: what is wrong, in one sentence.
        file: the source file (or ``synthetic``).
        column: the column as it is named in the source file, when one is involved.
        rows: 1-based line numbers of the source file (header = line 1), when rows are involved.
        periods: ISO dates of the periods involved, when periods are involved.
    """

    severity: str
    check: str
    message: str
    file: str = ""
    column: str | None = None
    rows: list[int] = field(default_factory=list)
    periods: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity must be one of {SEVERITIES}, got {self.severity!r}")

    def one_line(self) -> str:
        where = [self.file] if self.file else []
        if self.column:
            where.append(f"column '{self.column}'")
        if self.rows:
            where.append(f"rows {_format_rows(self.rows)}")
        if self.periods:
            where.append(f"periods {_format_rows(self.periods)}")
        prefix = ", ".join(where)
        return f"[{self.severity}] {self.check}: {prefix + ': ' if prefix else ''}{self.message}"

    def to_error(self) -> DataError:
        rows = self.rows or self.periods or None
        label = "rows" if self.rows else "periods"
        return DataError(self.message, file=self.file or None, column=self.column, rows=rows, row_label=label)


@dataclass
class ValidationReport:
    """Findings plus counters (imputed cells, flagged outliers) for one loaded panel."""

    findings: list[Finding] = field(default_factory=list)
    imputed_cells: dict[str, int] = field(default_factory=dict)

    def add(self, finding: Finding) -> None:
        self.findings.append(finding)

    def extend(self, findings: list[Finding]) -> None:
        self.findings.extend(findings)

    def count_imputed(self, column: str, n: int) -> None:
        if n:
            self.imputed_cells[column] = self.imputed_cells.get(column, 0) + int(n)

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "error"]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "warning"]

    def by_check(self, check: str) -> list[Finding]:
        return [f for f in self.findings if f.check == check]

    def raise_on_errors(self) -> None:
        """Raise the first error as a one-line :class:`DataError` (the rest are in the report)."""
        errs = self.errors
        if errs:
            err = errs[0].to_error()
            if len(errs) > 1:
                err.args = (f"{err.args[0]} (and {len(errs) - 1} more errors)",)
            raise err

    def lines(self) -> list[str]:
        out = [f.one_line() for f in self.findings]
        for col, n in sorted(self.imputed_cells.items()):
            out.append(f"[info] imputed: column '{col}': {n} cells imputed")
        return out

    def to_text(self) -> str:
        if not self.findings and not self.imputed_cells:
            return "validation: no findings"
        return "\n".join(self.lines())

    def to_dict(self) -> dict:
        return {"findings": [asdict(f) for f in self.findings], "imputed_cells": dict(self.imputed_cells)}

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2))
