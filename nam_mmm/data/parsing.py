"""Checked CSV reading shared by the loaders.

Every function here raises :class:`nam_mmm.errors.DataError` with a one-line message naming the file,
the column and the 1-based line numbers of the file, so a user can open the file and fix the cell.

Line numbers: the header is line 1, so the data row with 0-based position ``i`` is line ``i + 2``.
:func:`read_csv_checked` returns a frame whose index is that 0-based position (blank lines are dropped
but keep their numbering), and the other functions turn index labels into line numbers the same way,
so a series keeps pointing at the right lines after filtering as long as its index is not reset.
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from nam_mmm.errors import DataError

MISSING_MARKERS: frozenset[str] = frozenset({"", "NA", "NaN", "\\N", "nan"})
"""Cell texts read as a missing value (after stripping whitespace)."""

DEFAULT_DATE_FORMATS: tuple[str, ...] = ("ISO8601", "%m/%d/%Y")
"""Date formats tried, in order, when none is given: ISO (``2016-01-31``) and US ``M/D/YYYY``."""

HEADER_LINE = 1

_FORMAT_NAMES = {"ISO8601": "YYYY-MM-DD", "%m/%d/%Y": "M/D/YYYY"}


def _file_name(file: str | Path | None) -> str | None:
    return None if file is None else str(file)


def line_numbers(index: Iterable[object]) -> list[int]:
    """1-based file line numbers of data rows given their 0-based positions (header = line 1)."""
    return [int(i) + 2 for i in index]  # type: ignore[call-overload]


def _show(value: object, limit: int = 40) -> str:
    text = str(value).replace("\n", " ").replace("\r", " ")
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _read_header(path: Path) -> list[str]:
    """The header fields of ``path`` (stripped; blank names become ``Unnamed: <i>`` as in pandas)."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            header = next(csv.reader(fh), [])
    except UnicodeDecodeError as exc:
        raise DataError(f"not a UTF-8 text file ({exc.reason} at byte {exc.start})", file=str(path)) from None
    names = [name.strip() for name in header]
    if not any(names):
        raise DataError("file is empty (line 1 holds no column names)", file=str(path))
    return [name if name else f"Unnamed: {i}" for i, name in enumerate(names)]


def read_csv_checked(path: str | Path) -> pd.DataFrame:
    """Read a CSV file as text cells, ready for the checked conversions below.

    Every cell is read as a string with surrounding whitespace stripped; the texts in
    :data:`MISSING_MARKERS` (``""``, ``NA``, ``NaN``, ``\\N``, ``nan`` ...) become missing values (NaN).
    Column names are stripped of surrounding whitespace (DT Mart has ``" Affiliates"``).

    Args:
        path: the CSV file.

    Returns:
        The cells as strings; index = 0-based data row position (file line = index + 2).

    Raises:
        DataError: file not found, empty file (0 bytes or header only), not UTF-8, duplicate column
            names, or malformed CSV (a row with more fields than the header).
    """
    p = Path(path)
    file = str(path)
    if not p.exists():
        raise DataError("file not found", file=file)
    if p.is_dir():
        raise DataError("expected a CSV file, found a folder", file=file)
    if p.stat().st_size == 0:
        raise DataError("file is empty (0 bytes)", file=file)
    names = _read_header(p)
    counts = Counter(names)
    dupes = [name for name in names if counts[name] > 1]
    if dupes:
        raise DataError(
            "duplicate column name (after stripping spaces)", file=file, column=dupes[0], rows=[1], row_label="line"
        )
    try:
        df = pd.read_csv(
            p,
            dtype=str,
            keep_default_na=False,
            na_filter=False,
            skip_blank_lines=False,
            index_col=False,
            encoding="utf-8-sig",
        )
    except pd.errors.EmptyDataError:
        raise DataError("file is empty", file=file) from None
    except pd.errors.ParserError as exc:
        detail = " ".join(str(exc).split())
        raise DataError(f"malformed CSV: {detail}", file=file) from None
    except UnicodeDecodeError as exc:
        raise DataError(f"not a UTF-8 text file ({exc.reason} at byte {exc.start})", file=file) from None
    if len(df.columns) != len(names):
        raise DataError(
            f"malformed header: pandas found {len(df.columns)} columns, the header line has {len(names)}", file=file
        )
    df.columns = pd.Index(names)
    df = df.reset_index(drop=True)
    for col in df.columns:
        text = df[col].astype(str).str.strip()
        df[col] = text.where(~text.isin(MISSING_MARKERS), np.nan)
    blank = df.isna().all(axis=1)
    df = df.loc[~blank]
    if df.empty:
        raise DataError("file is empty (header only, no data rows)", file=file, rows=[1], row_label="line")
    return df


def require_columns(df: pd.DataFrame, columns: Iterable[str], file: str | Path) -> None:
    """Raise a :class:`DataError` naming the first of ``columns`` that ``df`` lacks.

    The message lists the columns that were found so a misspelt name is easy to spot.
    """
    present = set(df.columns)
    missing = [c for c in columns if c not in present]
    if missing:
        found = ", ".join(str(c) for c in df.columns)
        others = f" (and {len(missing) - 1} more: {', '.join(missing[1:])})" if len(missing) > 1 else ""
        raise DataError(
            f"required column missing{others}; found: {found}",
            file=_file_name(file),
            column=missing[0],
            rows=[HEADER_LINE],
            row_label="line",
        )


def _missing_mask(series: pd.Series) -> pd.Series:
    as_text = series.astype(str).str.strip()
    return series.isna() | as_text.isin(MISSING_MARKERS)


def parse_dates_checked(
    series: pd.Series,
    file: str | Path,
    column: str,
    formats: str | Sequence[str] | None = None,
) -> pd.Series:
    """Parse a column of date texts, cell by cell.

    Each cell is tried against ``formats`` in order (default :data:`DEFAULT_DATE_FORMATS`: ISO, then
    ``M/D/YYYY``); ``"ISO8601"`` means any ISO-8601 date or timestamp. Times of day are kept; the
    loaders snap dates to their period start.

    Args:
        series: the cells (strings or missing), index = 0-based data row position.
        file: the file, for messages.
        column: the column as named in the file, for messages.
        formats: one ``strftime`` format, several, or ``None`` for the defaults.

    Returns:
        ``datetime64[ns]`` series with the same index.

    Raises:
        DataError: a blank cell ("missing date") or a cell no format parses ("unparseable date 'foo'").
    """
    fmts: tuple[str, ...]
    if formats is None:
        fmts = DEFAULT_DATE_FORMATS
    elif isinstance(formats, str):
        fmts = (formats,)
    else:
        fmts = tuple(formats)
    missing = _missing_mask(series)
    if missing.any():
        raise DataError(
            "missing date", file=_file_name(file), column=column, rows=line_numbers(series.index[missing])
        )
    text = series.astype(str).str.strip()
    out = pd.Series(pd.NaT, index=series.index, dtype="datetime64[ns]")
    todo = pd.Series(True, index=series.index)
    for fmt in fmts:
        if not todo.any():
            break
        try:
            parsed = pd.to_datetime(text[todo], format=fmt, errors="coerce")
        except (ValueError, TypeError) as exc:
            raise DataError(f"invalid date format {fmt!r}: {exc}", file=_file_name(file), column=column) from None
        ok = parsed.notna()
        if ok.any():
            hit = parsed[ok]
            if getattr(hit.dt, "tz", None) is not None:
                hit = hit.dt.tz_localize(None)
            out.loc[hit.index] = hit.astype("datetime64[ns]")
            todo.loc[hit.index] = False
    if todo.any():
        bad = text[todo]
        tried = " or ".join(_FORMAT_NAMES.get(f, f) for f in fmts)
        raise DataError(
            f"unparseable date {_show(bad.iloc[0])!r} (expected {tried})",
            file=_file_name(file),
            column=column,
            rows=line_numbers(bad.index),
        )
    return out


def to_numeric_checked(series: pd.Series, file: str | Path, column: str) -> pd.Series:
    """Convert a column of number texts to float.

    Missing markers become NaN (allowed: cleaning decides later what a missing value means).

    Args:
        series: the cells (strings, numbers or missing), index = 0-based data row position.
        file: the file, for messages.
        column: the column as named in the file, for messages.

    Returns:
        ``float64`` series with the same index, in the unit of the file.

    Raises:
        DataError: a cell that is neither a number nor a missing marker ("non-numeric value 'abc'"),
            or an infinite value.
    """
    if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
        values = series.astype("float64")
        missing = values.isna()
        text = series.astype(str)
    else:
        missing = _missing_mask(series)
        text = series.astype(str).str.strip()
        values = pd.to_numeric(text.where(~missing, np.nan), errors="coerce").astype("float64")
    bad = values.isna() & ~missing
    if bad.any():
        first = text[bad].iloc[0]
        raise DataError(
            f"non-numeric value {_show(first)!r}",
            file=_file_name(file),
            column=column,
            rows=line_numbers(series.index[bad]),
        )
    infinite = np.isinf(values.to_numpy())
    if infinite.any():
        raise DataError(
            f"infinite value {_show(text[infinite].iloc[0])!r}",
            file=_file_name(file),
            column=column,
            rows=line_numbers(series.index[infinite]),
        )
    return values


def check_role_mapping(roles: Mapping[str, str | Sequence[str] | None], file: str | Path) -> None:
    """Raise a :class:`DataError` if one source column is mapped to two roles (or twice to one role).

    Args:
        roles: role name (``date``, ``target``, ``own_price``, ``media`` ...) -> the source column, or a
            list of columns (``hierarchy``, ``media``, ``controls``); ``None`` / empty = role unused.
        file: the file the columns belong to, for messages.
    """
    owner: dict[str, str] = {}
    for role, cols in roles.items():
        if cols is None:
            continue
        names = [cols] if isinstance(cols, str) else list(cols)
        for col in names:
            if col in owner:
                first = owner[col]
                problem = (
                    f"the column is listed twice in role {role}"
                    if first == role
                    else f"the column is mapped to two roles: {first} and {role}"
                )
                raise DataError(problem, file=_file_name(file), column=col)
            owner[col] = role
