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
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from nam_mmm.errors import DataError

MISSING_MARKERS: frozenset[str] = frozenset({"", "NA", "NaN", "\\N", "nan"})
"""Cell texts read as a missing value (after stripping whitespace)."""

DEFAULT_DATE_FORMATS: tuple[str, ...] = ("ISO8601", "%m/%d/%Y")
"""Date formats of the DT Mart files (tried in order). The generic loader passes no format and gets
:func:`parse_dates_checked`'s detection instead: ISO, plus day-first or month-first ``D/M/YYYY`` decided
from the whole column."""

DAY_FIRST = "day_first"
MONTH_FIRST = "month_first"
DATE_ORDERS = (DAY_FIRST, MONTH_FIRST)
"""``date_format`` values that fix the order of ``D/M/YYYY`` dates without giving a full format."""

HEADER_LINE = 1

_FORMAT_NAMES = {"ISO8601": "YYYY-MM-DD", "%m/%d/%Y": "M/D/YYYY"}

_DMY = re.compile(r"^(\d{1,2})([/.-])(\d{1,2})\2(\d{4})$")
"""A date written with the day and month as 1-2 digit numbers and a 4-digit year: ``1/7/2015``, ``31.01.2016``."""

_OTHER_SEPARATORS = ((";", "';'"), ("\t", "tab"), ("|", "'|'"))


def _file_name(file: str | Path | None) -> str | None:
    return None if file is None else str(file)


def line_numbers(index: Iterable[object]) -> list[int]:
    """1-based file line numbers of data rows given their 0-based positions (header = line 1)."""
    return [int(i) + 2 for i in index]  # type: ignore[call-overload]


def _show(value: object, limit: int = 40) -> str:
    text = str(value).replace("\n", " ").replace("\r", " ")
    return text if len(text) <= limit else text[: limit - 3] + "..."


def check_utf8(path: Path) -> None:
    """Raise a :class:`DataError` naming the line of the first byte that is not UTF-8 text.

    A UTF-16 file (a byte-order mark ``FF FE`` / ``FE FF``, as Excel's "Unicode text" writes) is named as
    such. Other encodings (Latin-1 / Windows-1252 exports) are reported with the line, the byte and the
    character it would be in Windows-1252, so the cell is easy to find.
    """
    data = path.read_bytes()
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        raise DataError("the file is UTF-16 encoded; save it as UTF-8 (CSV UTF-8)", file=str(path))
    try:
        data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        position = exc.start - data.rfind(b"\n", 0, exc.start)  # 1-based character column of the bad byte
        byte = data[exc.start]
        try:
            guess = f" ({bytes([byte]).decode('cp1252')!r} in Windows-1252)"
        except UnicodeDecodeError:
            guess = ""
        raise DataError(
            f"not a UTF-8 text file: byte 0x{byte:02x}{guess} at position {position} "
            "of the line; save the file as UTF-8 (CSV UTF-8)",
            file=str(path),
            rows=[line],
            row_label="line",
        ) from None


def _read_header(path: Path) -> list[str]:
    """The header fields of ``path`` (stripped; blank names become ``Unnamed: <i>`` as in pandas)."""
    with path.open(newline="", encoding="utf-8-sig") as fh:
        header = next(csv.reader(fh), [])
    names = [name.strip() for name in header]
    if not any(names):
        raise DataError("file is empty (line 1 holds no column names)", file=str(path))
    if len(names) == 1:
        for sep, label in _OTHER_SEPARATORS:
            if sep in names[0]:
                raise DataError(
                    f"the header has no ',' but {names[0].count(sep)} {label}: the file looks "
                    f"{label}-separated; save it comma-separated (a CSV file)",
                    file=str(path),
                    rows=[HEADER_LINE],
                    row_label="line",
                )
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
        DataError: file not found, empty file (0 bytes or header only), not UTF-8 (with the line), a
            header split by ``;``, tab or ``|`` instead of commas, duplicate column names, or malformed CSV
            (a row with more fields than the header).
    """
    p = Path(path)
    file = str(path)
    _check_file(p, file)
    names = _read_header(p)
    counts = Counter(names)
    dupes = [name for name in names if counts[name] > 1]
    if dupes:
        raise DataError(
            "duplicate column name (after stripping spaces)", file=file, column=dupes[0], rows=[1], row_label="line"
        )
    df = _read_cells(p, names, file)
    blank = df.isna().all(axis=1)
    df = df.loc[~blank]
    if df.empty:
        raise DataError("file is empty (header only, no data rows)", file=file, rows=[1], row_label="line")
    return df


def _check_file(p: Path, file: str) -> None:
    """Refuse a path that is not there, a folder, an empty file or a file that is not UTF-8 text."""
    if not p.exists():
        raise DataError("file not found", file=file)
    if p.is_dir():
        raise DataError("expected a CSV file, found a folder", file=file)
    if p.stat().st_size == 0:
        raise DataError("file is empty (0 bytes)", file=file)
    check_utf8(p)


def _read_cells(p: Path, names: list[str], file: str) -> pd.DataFrame:
    """Every cell as stripped text (missing markers as NaN), the columns named ``names``, blank lines kept."""
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
    if len(df.columns) != len(names):
        raise DataError(
            f"malformed header: pandas found {len(df.columns)} columns, the header line has {len(names)}", file=file
        )
    df.columns = pd.Index(names)
    df = df.reset_index(drop=True)
    for col in df.columns:
        text = df[col].astype(str).str.strip()
        df[col] = text.where(~text.isin(MISSING_MARKERS), np.nan)
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


def _parse_with(text: pd.Series, fmt: str, file: str | Path, column: str) -> pd.Series:
    """``pd.to_datetime`` of ``text`` with one format, NaT where it does not apply, time zones dropped."""
    try:
        parsed = pd.to_datetime(text, format=fmt, errors="coerce")
    except (ValueError, TypeError) as exc:
        raise DataError(f"invalid date format {fmt!r}: {exc}", file=_file_name(file), column=column) from None
    if getattr(parsed.dt, "tz", None) is not None:
        parsed = parsed.dt.tz_localize(None)
    return parsed.astype("datetime64[ns]")


def _regular_calendar(year: pd.Series, month: pd.Series, day: pd.Series) -> bool:
    """Whether the dates (read with this month/day assignment) form an evenly spaced calendar (``pd.infer_freq``)."""
    dates = pd.to_datetime(pd.DataFrame({"year": year, "month": month, "day": day}), errors="coerce")
    if dates.isna().any():
        return False
    unique = pd.DatetimeIndex(dates.unique()).sort_values()
    if len(unique) < 3:
        return False
    try:
        return pd.infer_freq(unique) is not None
    except (TypeError, ValueError):
        return False


def date_order(text: pd.Series, file: str | Path, column: str) -> str | None:
    """Whether the ``D/M/YYYY``-shaped cells of ``text`` are day first or month first, from the whole column.

    A number above 12 can only be a day: the column is :data:`DAY_FIRST` if some first numbers exceed 12,
    :data:`MONTH_FIRST` if some second numbers do. When every number is 12 or less, the order whose dates
    form an evenly spaced calendar wins (``01/MM/YYYY`` over two years is monthly day first, but 24
    scattered days month first); when both or neither do (12 months of one year read as 12 consecutive
    days), the order cannot be told.

    Returns:
        The order, or ``None`` when the column has no such cells or each reads the same both ways
        (``01/01/2024``).

    Raises:
        DataError: both kinds of evidence (the column mixes the two orders), or an order that cannot be
            told (``01/02/2024``: 1 February or 2 January?); set ``date_format``.
    """
    parts = text.str.extract(_DMY)
    shaped = parts[0].notna()
    if not shaped.any():
        return None
    first = parts.loc[shaped, 0].astype(int)
    second = parts.loc[shaped, 2].astype(int)
    possible = (first <= 12) | (second <= 12)  # 13/13/2024 is no date: left to the unparseable-date error
    day_first = (first > 12) & possible
    month_first = (second > 12) & possible
    if day_first.any() and month_first.any():
        a, b = day_first.idxmax(), month_first.idxmax()
        raise DataError(
            f"dates mix two orders: {text[a]!r} is day first (D/M/YYYY), {text[b]!r} month first (M/D/YYYY); "
            "write every date the same way or set date_format",
            file=_file_name(file),
            column=column,
            rows=line_numbers([a, b]),
        )
    if day_first.any():
        return DAY_FIRST
    if month_first.any():
        return MONTH_FIRST
    differs = first != second
    if not differs.any():
        return None
    year = parts.loc[shaped, 3].astype(int)
    regular = {
        DAY_FIRST: _regular_calendar(year, second, first),
        MONTH_FIRST: _regular_calendar(year, first, second),
    }
    if regular[DAY_FIRST] != regular[MONTH_FIRST]:
        return DAY_FIRST if regular[DAY_FIRST] else MONTH_FIRST
    example = text[differs.idxmax()]
    raise DataError(
        f"ambiguous date order: every day and month number is 12 or less, so {example!r} could be day first or "
        f"month first; set date_format: {DAY_FIRST} (D/M/YYYY) or {MONTH_FIRST} (M/D/YYYY), or a full format "
        "such as '%d/%m/%Y'",
        file=_file_name(file),
        column=column,
        rows=line_numbers(differs.index[differs]),
    )


def parse_dates_checked(
    series: pd.Series,
    file: str | Path,
    column: str,
    formats: str | Sequence[str] | None = None,
) -> pd.Series:
    """Parse a column of date texts, cell by cell.

    With ``formats=None`` (the generic loader): ISO-8601 cells (``2016-01-31``, with or without a time)
    and ``D/M/YYYY``-shaped cells (``/``, ``.`` or ``-`` between the numbers) are accepted; whether the
    latter are day first or month first is decided once for the whole column by :func:`date_order`, and
    a column that cannot tell is refused. ``formats`` = :data:`DAY_FIRST` or :data:`MONTH_FIRST` fixes
    that order. Otherwise ``formats`` is one ``strftime`` format or several, tried cell by cell in order
    (``"ISO8601"`` means any ISO-8601 date or timestamp). Times of day are kept; the loaders snap dates
    to their period start.

    Args:
        series: the cells (strings or missing), index = 0-based data row position.
        file: the file, for messages.
        column: the column as named in the file, for messages.
        formats: ``None``, a date order, one ``strftime`` format, or several.

    Returns:
        ``datetime64[ns]`` series with the same index.

    Raises:
        DataError: a blank cell ("missing date"), a cell no format parses ("unparseable date 'foo'"), or a
            column of ``D/M/YYYY`` dates whose order is ambiguous or mixed.
    """
    missing = _missing_mask(series)
    if missing.any():
        raise DataError(
            "missing date", file=_file_name(file), column=column, rows=line_numbers(series.index[missing])
        )
    text = series.astype(str).str.strip()
    if formats is None or formats in DATE_ORDERS:
        out, tried = _parse_iso_or_dmy(text, formats, file, column)
    else:
        out, tried = _parse_formats(text, (formats,) if isinstance(formats, str) else tuple(formats), file, column)
    todo = out.isna()
    if todo.any():
        bad = text[todo]
        raise DataError(
            f"unparseable date {_show(bad.iloc[0])!r} (expected {tried})",
            file=_file_name(file),
            column=column,
            rows=line_numbers(bad.index),
        )
    return out


def _take(out: pd.Series, parsed: pd.Series) -> None:
    """Copy the parsed cells of ``parsed`` into ``out`` (the cells still to parse are NaT in ``out``)."""
    ok = parsed.notna()
    out.loc[parsed.index[ok]] = parsed[ok]


def _parse_iso_or_dmy(text: pd.Series, order: str | None, file: str | Path, column: str) -> tuple[pd.Series, str]:
    """ISO-8601 cells, then ``D/M/YYYY``-shaped ones in the order ``order`` (:data:`DAY_FIRST` / :data:`MONTH_FIRST`)
    or the order :func:`date_order` reads from the column; NaT where neither applies, and what was tried."""
    out = pd.Series(pd.NaT, index=text.index, dtype="datetime64[ns]")
    _take(out, _parse_with(text, "ISO8601", file, column))
    rest = text[out.isna()]
    order = order if order in DATE_ORDERS else date_order(rest, file, column)
    parts = rest.str.extract(_DMY).dropna()
    if len(parts):
        day, month = (parts[0], parts[2]) if order == DAY_FIRST else (parts[2], parts[0])
        iso = parts[3] + "-" + month.str.zfill(2) + "-" + day.str.zfill(2)
        _take(out, _parse_with(iso, "%Y-%m-%d", file, column))
    tried = {DAY_FIRST: "YYYY-MM-DD or D/M/YYYY", MONTH_FIRST: "YYYY-MM-DD or M/D/YYYY"}.get(
        str(order), "YYYY-MM-DD, D/M/YYYY or M/D/YYYY"
    )
    return out, tried


def _parse_formats(text: pd.Series, fmts: tuple[str, ...], file: str | Path, column: str) -> tuple[pd.Series, str]:
    """Each cell with the first of ``fmts`` that parses it; NaT where none does, and what was tried."""
    out = pd.Series(pd.NaT, index=text.index, dtype="datetime64[ns]")
    for fmt in fmts:
        todo = out.isna()
        if not todo.any():
            break
        _take(out, _parse_with(text[todo], fmt, file, column))
    return out, " or ".join(_FORMAT_NAMES.get(f, f) for f in fmts)


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
