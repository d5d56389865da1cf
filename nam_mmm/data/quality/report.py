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

    def short_line(self, limit: int = 200) -> str:
        """The finding for the console: the message first, then where (file name, column, first rows).

        At most three rows (or periods) are listed; the line is cut to ``limit`` characters. The full
        finding is :meth:`one_line` (and validation.json).
        """
        where = [Path(self.file).name] if self.file else []
        if self.column:
            where.append(f"column '{self.column}'")
        if self.rows:
            where.append(f"rows {_format_rows(self.rows, limit=3)}")
        elif self.periods:
            where.append(f"periods {_format_rows(self.periods, limit=3)}")
        line = f"[{self.severity}] {self.check}: {self.message}" + (f" ({', '.join(where)})" if where else "")
        return line if len(line) <= limit else line[: limit - 1] + "…"

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

    @property
    def has_warnings(self) -> bool:
        """Whether the run has warnings: the final summary of a run should say so."""
        return bool(self.warnings)

    def counts(self) -> dict[str, int]:
        """Number of findings per severity, every severity present (``{"error": 0, "warning": 2, "info": 1}``)."""
        return {sev: sum(f.severity == sev for f in self.findings) for sev in SEVERITIES}

    def apply_strict(self, checks: list[str] | None = None) -> list[Finding]:
        """Turn warnings into errors (``strict: true``): those of ``checks``, or every warning when ``None``.

        The message of each promoted finding says why it is an error now. Returns the promoted findings.
        """
        promoted = []
        for f in self.findings:
            if f.severity == "warning" and (checks is None or f.check in checks):
                f.severity = "error"
                f.message = f"{f.message} [an error because cleaning.strict is true]"
                promoted.append(f)
        return promoted

    def console_summary(self, max_lines: int = 5) -> str:
        """A short summary for the console at the start of a run.

        The first line counts the findings by severity (and the imputed cells); then the first
        ``max_lines`` findings, errors first, then warnings, then info, one line each
        (:meth:`Finding.short_line`); then how many more there are. Example::

            validation: 0 errors, 2 warnings, 1 info; 4 cells imputed in 1 column
              [warning] coverage: SKU 'A2' has 5 of 6 periods (sales.csv, column 'sku', periods 2024-03-01)
              ...
              (+1 more in validation.json)
        """
        c = self.counts()
        head = f"validation: {c['error']} error{'s' * (c['error'] != 1)}, {c['warning']} warning{'s' * (c['warning'] != 1)}, {c['info']} info"
        if self.imputed_cells:
            n = sum(self.imputed_cells.values())
            head += f"; {n} cell{'s' * (n != 1)} imputed in {len(self.imputed_cells)} column{'s' * (len(self.imputed_cells) != 1)}"
        order = {sev: i for i, sev in enumerate(SEVERITIES)}
        ranked = sorted(self.findings, key=lambda f: order[f.severity])  # stable: file order within a severity
        shown = ranked[: max(int(max_lines), 0)]
        lines = [head, *(f"  {f.short_line()}" for f in shown)]
        if len(ranked) > len(shown):
            lines.append(f"  (+{len(ranked) - len(shown)} more in validation.json)")
        return "\n".join(lines)

    def warning_note(self) -> str:
        """One line for a run's final summary when it had warnings (``""`` when it had none)."""
        n = len(self.warnings)
        if not n:
            return ""
        checks = ", ".join(sorted({f.check for f in self.warnings}))
        return f"note: this run had {n} validation warning{'s' * (n != 1)} ({checks}); see validation.json"

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
