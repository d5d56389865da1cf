"""Period frequencies and the calendar of periods: the one home of the date logic of the data layer.

A panel's periods are labelled by their first day at a pandas frequency (``MS`` monthly, ``W-MON`` weekly …).
Here: infer that frequency from a file's dates or normalize a user-given one (:func:`infer_period_freq`,
:func:`normalize_freq`), move dates to the start of their period (:func:`snap_to_period_start`), refuse a given
frequency that does not fit the dates (:func:`check_given_freq`), periods per year and mean days per period, and
the ISO labels of periods in findings (:func:`iso_dates`).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable

import numpy as np
import pandas as pd
from pandas.tseries.frequencies import to_offset
from pandas.tseries.offsets import (
    BaseOffset,
    BusinessMonthBegin,
    BusinessMonthEnd,
    MonthBegin,
    MonthEnd,
    QuarterBegin,
    QuarterEnd,
    YearBegin,
    YearEnd,
)

from nam_mmm.data.sources.parsing import line_numbers
from nam_mmm.errors import DataError

_WEEKDAYS = ("MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN")
_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")


def _offset_to_period_start_freq(offset: BaseOffset) -> str:
    """Map an inferred offset to the alias of the same frequency labelled by period starts."""
    if isinstance(offset, (MonthBegin, MonthEnd, BusinessMonthBegin, BusinessMonthEnd)) and offset.n == 1:
        return "MS"
    if isinstance(offset, QuarterEnd) and offset.n == 1:
        return f"QS-{_MONTHS[offset.startingMonth % 12]}"
    if isinstance(offset, QuarterBegin) and offset.n == 1:
        return f"QS-{_MONTHS[offset.startingMonth - 1]}"
    if isinstance(offset, YearEnd) and offset.n == 1:
        return f"YS-{_MONTHS[offset.month % 12]}"
    if isinstance(offset, YearBegin) and offset.n == 1:
        return f"YS-{_MONTHS[offset.month - 1]}"
    return str(offset.freqstr)


def infer_period_freq(dates: pd.Series | pd.DatetimeIndex, *, file: str = "", column: str = "") -> str:
    """Infer the pandas frequency of a panel's dates.

    ``pd.infer_freq`` on the sorted unique dates; monthly data of any anchoring becomes ``MS``. When that
    fails (a gap, mid-month dates) the most common difference between consecutive dates decides:
    28-31 days -> ``MS``, 7 days -> ``W-<weekday of the first date>`` (14 days -> ``2W-...``), 1 day -> ``D``,
    89-92 days ->
    ``QS-<month of the first date>``, 365-366 days -> ``YS-<month of the first date>``.

    Raises:
        DataError: fewer than two distinct dates, or no recognisable spacing.
    """
    unique = pd.DatetimeIndex(pd.Series(dates).dropna().unique()).sort_values()
    if len(unique) < 2:
        raise DataError(
            "cannot infer the period frequency from a single date; set freq (e.g. MS, W-MON)",
            file=file or None,
            column=column or None,
        )
    inferred: object = None
    if len(unique) >= 3:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                inferred = pd.infer_freq(unique)
            except (TypeError, ValueError):
                inferred = None
    if inferred is not None:
        offset = inferred if isinstance(inferred, BaseOffset) else to_offset(str(inferred))
        return _offset_to_period_start_freq(offset)
    days = np.diff(unique.normalize().to_numpy()).astype("timedelta64[D]").astype(np.int64)
    diffs = pd.Series(days[days > 0])
    if diffs.empty:
        raise DataError("cannot infer the period frequency; set freq", file=file or None, column=column or None)
    step = int(diffs.mode().min())
    first = unique[0]
    if 28 <= step <= 31:
        return "MS"
    if step % 7 == 0 and step <= 28:
        weeks = step // 7
        return f"{weeks if weeks > 1 else ''}W-{_WEEKDAYS[first.weekday()]}"
    if step == 1:
        return "D"
    if 89 <= step <= 92:
        return f"QS-{_MONTHS[first.month - 1]}"
    if 365 <= step <= 366:
        return f"YS-{_MONTHS[first.month - 1]}"
    raise DataError(
        f"cannot infer the period frequency (most common gap {step} days); set freq (e.g. MS, W-MON)",
        file=file or None,
        column=column or None,
    )


def normalize_freq(freq: str, first_date: pd.Timestamp | None = None, *, file: str = "") -> str:
    """Check a user-given frequency and label it by period starts.

    ``M``/``ME``/``MS``/``monthly`` -> ``MS``; ``W``/``weekly`` -> ``W-<weekday of the first date>``
    (``W-SUN`` when no date is known); ``daily`` -> ``D``; any other pandas alias is kept if valid.
    """
    alias = freq.strip()
    lowered = alias.lower()
    if lowered in {"m", "me", "ms", "monthly", "month"}:
        return "MS"
    if lowered in {"w", "weekly", "week"}:
        return f"W-{_WEEKDAYS[first_date.weekday()]}" if first_date is not None else "W-SUN"
    if lowered in {"d", "daily", "day"}:
        return "D"
    try:
        offset = to_offset(alias)
    except (ValueError, TypeError):
        raise DataError(f"unknown freq {freq!r} (use a pandas alias such as MS, W-MON, D)", file=file or None) from None
    return _offset_to_period_start_freq(offset)


def snap_to_period_start(dates: pd.Series, freq: str) -> pd.Series:
    """Move each date back to the start of its period (time of day dropped).

    Monthly ``MS``: the first of the month; weekly ``W-MON``: the Monday on or before the date (the
    period is the week starting that Monday); ``D``: midnight.
    """
    offset = to_offset(freq)
    day = dates.dt.normalize()
    unique = pd.DatetimeIndex(day.dropna().unique())
    mapping = {d: offset.rollback(d) for d in unique}
    return day.map(mapping).astype("datetime64[ns]")


def check_given_freq(
    dates: pd.Series,
    periods: pd.Series,
    units: pd.Series,
    freq: str,
    period_freq: str,
    *,
    file: str,
    column: str,
) -> None:
    """Refuse a user-given ``freq`` that does not fit the dates, naming the frequency the dates have.

    Two symptoms: different dates of the same unit fall into one period (``MS`` given for weekly data:
    otherwise reported later as duplicate rows), or most periods of the calendar would be empty (``D``
    given for monthly data: otherwise reported as hundreds of missing periods).

    Args:
        dates: the parsed dates; periods: the same dates snapped to ``period_freq``; units: the finest
            hierarchy column (raw), all with the file's row index.
        freq: the frequency as the user wrote it; period_freq: its normalized alias.
        file: the file, column: the date column, for messages.

    Raises:
        DataError: frequency mismatch.
    """
    try:
        looks = infer_period_freq(dates)
    except DataError:
        looks = None
    hint = f"the dates look {looks}: set freq: {looks} or null (inferred)" if looks else "set freq to the data's frequency or null"
    day = dates.dt.normalize()
    key = pd.DataFrame({"period": periods, "unit": units.astype(str), "day": day})
    per_period = key.groupby(["period", "unit"])["day"].transform("nunique")
    collapsed = per_period > 1
    if collapsed.any():
        first = key[collapsed].sort_values(["unit", "day"]).iloc[0]
        same = key[collapsed & (key["period"] == first["period"]) & (key["unit"] == first["unit"])]["day"].unique()
        shown = ", ".join(pd.Timestamp(d).strftime("%Y-%m-%d") for d in sorted(same)[:3])
        raise DataError(
            f"frequency mismatch: freq {freq!r} puts different dates of one unit into the same period "
            f"({shown} -> {pd.Timestamp(first['period']):%Y-%m-%d}, unit '{first['unit']}'); {hint}",
            file=file,
            column=column,
            rows=line_numbers(key.index[collapsed]),
        )
    present = pd.DatetimeIndex(periods.unique())
    if len(present) >= 2 and looks and looks != period_freq:
        slots = pd.date_range(present.min(), present.max(), freq=period_freq)
        if len(slots) >= 2 * len(present):
            raise DataError(
                f"frequency mismatch: freq {freq!r} makes a calendar of {len(slots)} periods of which only "
                f"{len(present)} have data; {hint}",
                file=file,
                column=column,
            )


def iso_dates(periods: Iterable) -> list[str]:
    """``YYYY-MM-DD`` of each period (the labels of periods in findings and messages)."""
    return [pd.Timestamp(p).strftime("%Y-%m-%d") for p in periods]


def periods_per_year(freq: str) -> int:
    """Periods in a year (the season length of the periods): 52 weekly, 12 monthly, 4 quarterly, 365 daily."""
    f = freq.upper()
    if f.startswith("W"):
        return 52
    if f.startswith("M"):
        return 12
    if f.startswith("Q"):
        return 4
    if f.startswith("D"):
        return 365
    raise ValueError(f"unsupported frequency {freq!r}")


def days_per_period(freq: str) -> float:
    """Mean days of a weekly (7) or monthly (30.4) period: the synthetic generator's promotion calendar."""
    if freq.upper().startswith("W"):
        return 7.0
    if freq.upper().startswith("M"):
        return 30.4
    raise ValueError(f"synthetic generator supports weekly (W-*) or monthly (MS) periods, got {freq!r}")
