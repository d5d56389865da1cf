"""Loader of the real DT Mart (ElecKart) monthly marketing-mix data set, July 2015 - June 2016.

``Secondfile.csv`` holds one wide row per month (not in date order) with revenue, units, list price
(MRP) and discount per product category, and media spend per channel in rupees. It is reshaped to the
canonical long panel: one row per (month, category), brand = product family, sku = category.
The auxiliary files add brand health (``MonthlyNPSscore.csv``) and promotion days
(``SpecialSale.csv``); ``MediaInvestment.csv`` (the same spend in crores) is only cross-checked.
Cross-check results are recorded as findings in ``Panel.report``; duplicates, gaps, outliers (the
August 2015 outage) and missing spend are left to the validation step.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from nam_mmm.data.calendar.frequency import iso_dates, snap_to_period_start
from nam_mmm.data.panel import (
    BRAND,
    DISCOUNT,
    FIT_WEIGHT,
    GMV,
    MRP,
    NPS,
    PERIOD,
    PRICE,
    PROMO_DAYS,
    ROW,
    SKU,
    TOTAL_SPEND,
    UNITS,
    Panel,
    spend_col,
)
from nam_mmm.data.sources.parsing import (
    line_numbers,
    parse_dates_checked,
    read_csv_checked,
    require_columns,
    to_numeric_checked,
)
from nam_mmm.data.quality.report import Finding, ValidationReport
from nam_mmm.errors import DataError

DEFAULT_ROOT = "../shared/data/dtmart"

DEFAULT_FAMILIES: dict[str, list[str]] = {
    "camera": ["Camera", "CameraAccessory"],
    "gaming": ["GameCDDVD", "GamingHardware"],
    "entertainment": ["EntertainmentSmall"],
}

# Secondfile.csv spend column (rupees) -> channel name.
CHANNEL_COLUMNS: dict[str, str] = {
    "TV": "tv",
    "Digital": "digital",
    "Sponsorship": "sponsorship",
    "Content.Marketing": "content_marketing",
    "Online.marketing": "online_marketing",
    "Affiliates": "affiliates",
    "SEM": "sem",
    "Radio": "radio",
    "Other": "other",
}
TOTAL_COLUMN = "Total.Investment"

SECONDFILE = "Secondfile.csv"
NPS_FILE = "MonthlyNPSscore.csv"
SALE_FILE = "SpecialSale.csv"
MEDIA_FILE = "MediaInvestment.csv"

CRORE = 1e7  # rupees per crore
CROSSCHECK_ABS_TOL = 0.06 * CRORE  # rupees: MediaInvestment.csv is rounded to 0.1 crore
CROSSCHECK_REL_TOL = 0.01
NPS_TOL = 0.05  # NPS points


def _category_columns(category: str) -> dict[str, str]:
    return {
        "revenue": f"Revenue_{category}",
        "units": f"Units_{category}",
        "mrp": f"Mrp_{category}",
        "discount": f"Discount_{category}",
    }


def _name_key(name: str) -> str:
    """Compare column names across files: ``Total.Investment`` ~ ``Total Investment`` ~ ``total_investment``."""
    return re.sub(r"[\s._]+", "_", name.strip().lower())


def _safe_ratio(num: pd.Series, den: pd.Series) -> pd.Series:
    """``num / den`` with NaN where the denominator is zero or missing."""
    den = den.where(den != 0)
    return (num / den).astype("float64")


def _resolve_families(
    families: Mapping[str, Sequence[str]] | None, categories: list[str], file: str
) -> dict[str, str]:
    """Category -> family. Unknown category -> DataError; a category in no family is its own (lowercased)."""
    fams = DEFAULT_FAMILIES if families is None else families
    out: dict[str, str] = {}
    for family, members in fams.items():
        for cat in [members] if isinstance(members, str) else list(members):
            if cat not in categories:
                raise DataError(
                    f"unknown category '{cat}' in family '{family}'; categories in the file: {', '.join(categories)}",
                    file=file,
                    column=f"Revenue_{cat}",
                )
            if cat in out:
                raise DataError(
                    f"category '{cat}' is in two families: {out[cat]} and {family}", file=file, column=f"Revenue_{cat}"
                )
            out[cat] = str(family)
    for cat in categories:
        out.setdefault(cat, cat.lower())
    return out


def _load_nps(path: Path, months: pd.DatetimeIndex) -> pd.Series:
    """NPS per month start from ``MonthlyNPSscore.csv`` (``Date`` M/D/YYYY, ``NPS`` points)."""
    file = str(path)
    df = read_csv_checked(path)
    require_columns(df, ["Date", "NPS"], file)
    month = snap_to_period_start(parse_dates_checked(df["Date"], file, "Date", formats=("%m/%d/%Y", "ISO8601")), "MS")
    dup = month.duplicated(keep=False)
    if dup.any():
        raise DataError(
            f"two NPS values for month {month[dup].iloc[0]:%Y-%m}",
            file=file,
            column="Date",
            rows=line_numbers(df.index[dup]),
        )
    nps = to_numeric_checked(df["NPS"], file, "NPS")
    return pd.Series(nps.to_numpy(), index=pd.DatetimeIndex(month)).reindex(months)


def _load_promo_days(path: Path, months: pd.DatetimeIndex) -> tuple[pd.Series, int]:
    """Number of distinct sale days per month from ``SpecialSale.csv``; months without sales -> 0.

    Returns:
        (days per month start, number of sale days outside ``months``).
    """
    file = str(path)
    df = read_csv_checked(path)
    require_columns(df, ["Date"], file)
    days = parse_dates_checked(df["Date"], file, "Date", formats=("%m/%d/%Y", "ISO8601")).dt.normalize()
    unique_days = pd.Series(days.unique())
    per_month = snap_to_period_start(unique_days, "MS").value_counts()
    outside = int(per_month[~per_month.index.isin(months)].sum())
    return per_month.reindex(months, fill_value=0).astype("float64"), outside


def _crosscheck_media(path: Path, rupees: pd.DataFrame, second_file: str) -> list[Finding]:
    """Compare ``MediaInvestment.csv`` (crores) with Secondfile.csv spend (rupees) per month and channel.

    Args:
        path: MediaInvestment.csv.
        rupees: Secondfile.csv spend, index = month start, columns = Secondfile column names.
        second_file: Secondfile.csv path, for messages.

    A cell disagrees when ``|crores * 1e7 - rupees| > max(0.06e7, 1% of rupees)``; a missing cell counts
    as zero spend, so blank in one file and NA in the other agree.
    """
    file, second_name = str(path), Path(second_file).name
    if not path.exists():
        return [
            Finding("warning", "media_crosscheck", "file not found; media spend cross-check skipped", file=file)
        ]
    df = read_csv_checked(path)
    periods = _media_months(df, file)
    findings: list[Finding] = []
    only_second = rupees.index.difference(periods)
    if len(only_second):
        findings.append(
            Finding(
                "warning",
                "media_crosscheck",
                f"months in {second_name} missing here; not cross-checked",
                file=file,
                periods=iso_dates(only_second),
            )
        )
    channel_findings, agree, total = _crosscheck_channels(df, periods, rupees, file, second_name)
    findings.extend(channel_findings)
    findings.append(
        Finding(
            "info",
            "media_crosscheck",
            f"{agree} of {total} month x channel spend cells agree with {second_name} "
            f"(crores x 1e7 vs rupees, tolerance max(0.06 crore, 1%); missing = 0)",
            file=file,
        )
    )
    return findings


def _crosscheck_channels(df: pd.DataFrame, periods: pd.DatetimeIndex, rupees: pd.DataFrame, file: str, second_name: str) -> tuple[list[Finding], int, int]:
    """Each Secondfile spend column against the MediaInvestment.csv column of the same name (``Total.Investment`` ~
    ``Total Investment``) over the months both have: the findings, the cells that agree, the cells compared."""
    findings: list[Finding] = []
    lines = dict(zip(periods, line_numbers(df.index), strict=True))
    by_key = {_name_key(c): c for c in df.columns}
    common = periods.intersection(rupees.index)
    agree = 0
    total = 0
    for second_col in rupees.columns:
        media_col = by_key.get(_name_key(second_col))
        if media_col is None:
            findings.append(
                Finding(
                    "warning",
                    "media_crosscheck",
                    f"no column matching {second_name} column '{second_col}'; not cross-checked",
                    file=file,
                )
            )
            continue
        crores = to_numeric_checked(df[media_col], file, media_col)
        crores.index = periods
        off, finding = _crosscheck_channel(crores.reindex(common), rupees[second_col].reindex(common), lines, file, media_col, f"{second_name} column '{second_col}'")
        total += len(common)
        agree += int((~off).sum())
        if finding is not None:
            findings.append(finding)
    return findings, agree, total


def _media_months(df: pd.DataFrame, file: str) -> pd.DatetimeIndex:
    """The month start of each ``MediaInvestment.csv`` row, from its ``Year`` and ``Month`` columns (each month once)."""
    require_columns(df, ["Year", "Month"], file)
    year = to_numeric_checked(df["Year"], file, "Year")
    month = to_numeric_checked(df["Month"], file, "Month")
    bad = year.isna() | month.isna() | (year % 1 != 0) | (month % 1 != 0) | ~month.between(1, 12)
    if bad.any():
        column = "Year" if (year.isna() | (year % 1 != 0)).any() else "Month"
        raise DataError(
            "year/month is not a valid calendar month", file=file, column=column, rows=line_numbers(df.index[bad])
        )
    periods = pd.DatetimeIndex(
        pd.to_datetime({"year": year.astype(int), "month": month.astype(int), "day": 1}).astype("datetime64[ns]")
    )
    dup = periods.duplicated(keep=False)
    if dup.any():
        raise DataError(
            f"month {periods[dup][0]:%Y-%m} appears twice", file=file, column="Month", rows=line_numbers(df.index[dup])
        )
    return periods


def _crosscheck_channel(
    crores: pd.Series, rupees: pd.Series, lines: dict, file: str, media_col: str, other: str
) -> tuple[pd.Series, Finding | None]:
    """One channel's months: which disagree (``|crores * 1e7 - rupees|`` beyond the tolerance; missing = 0), and a
    warning naming them (``None`` when all agree). ``lines``: month -> line of the MediaInvestment.csv row."""
    a = (crores * CRORE).fillna(0.0)
    b = rupees.fillna(0.0)
    tol = np.maximum(CROSSCHECK_ABS_TOL, CROSSCHECK_REL_TOL * b.abs())
    off = (a - b).abs() > tol
    if not off.any():
        return off, None
    first = off[off].index[0]
    return off, Finding(
        "warning",
        "media_crosscheck",
        f"spend disagrees with {other} "
        f"(e.g. {first:%Y-%m}: {a[first] / CRORE:g} crores here vs {b[first]:.4g} rupees there)",
        file=file,
        column=media_col,
        rows=sorted(lines[p] for p in off[off].index),
        periods=iso_dates(off[off].index),
    )


def load_dtmart(
    root: str | Path = DEFAULT_ROOT,
    *,
    families: Mapping[str, Sequence[str]] | None = None,
) -> Panel:
    """Load DT Mart as a monthly long panel: one row per (month, product category).

    Columns: ``gmv`` = ``Revenue_<cat>`` (rupees); ``units`` = ``Units_<cat>``; ``price`` = revenue / units
    (average selling price, rupees per unit); ``mrp`` = ``Mrp_<cat>`` / units (list price, rupees per unit);
    ``discount`` = ``Discount_<cat>`` / ``Mrp_<cat>`` (depth, fraction of list price in [0, 1]);
    ``spend_<channel>`` from the rupee columns ``TV`` ... ``Other`` (``NA`` stays NaN: cleaning turns it
    into 0 and counts it); ``total_spend`` = ``Total.Investment`` (rupees); ``nps`` from
    ``MonthlyNPSscore.csv``; ``promo_days`` = distinct sale days of the month in ``SpecialSale.csv``.
    Ratios with a zero denominator are NaN.

    Args:
        root: folder holding ``Secondfile.csv`` and the auxiliary files.
        families: family (brand) -> categories. Default :data:`DEFAULT_FAMILIES`. A category of the file
            in no family becomes its own family (its name lowercased).

    Returns:
        The panel, freq ``MS``, ``_row`` = line of ``Secondfile.csv`` the month came from, with the
        NPS and media cross-check findings in ``panel.report``.

    Raises:
        DataError: missing folder or ``Secondfile.csv``/``SpecialSale.csv``, a missing column, a bad cell,
            or an unknown category in ``families``.
    """
    root_path = Path(root).resolve()
    if not root_path.is_dir():
        raise DataError(f"DT Mart data folder not found (expected it to hold {SECONDFILE})", file=str(root_path))
    wide = _read_secondfile(root_path / SECONDFILE, families)
    second = wide.file
    report = ValidationReport()

    month_level, nps_source, sale_path = _month_level(wide, root_path, report)
    spend_rupees = pd.DataFrame({col: wide.num[col].to_numpy() for col in [TOTAL_COLUMN, *CHANNEL_COLUMNS]}, index=wide.month)
    spend_rupees = spend_rupees[~spend_rupees.index.duplicated()]
    report.extend(_crosscheck_media(root_path / MEDIA_FILE, spend_rupees, second))

    sources = _column_sources(second, nps_source, sale_path)
    return Panel(
        frame=_long_frame(wide, month_level),
        channels=list(CHANNEL_COLUMNS.values()),
        freq="MS",
        source=second,
        controls=[],
        column_sources=sources,
        report=report,
    )


@dataclass
class _Wide:
    """``Secondfile.csv`` as read: the text cells, the categories and their families, each row's month, numbers."""

    file: str
    raw: pd.DataFrame
    categories: list[str]
    family_of: dict[str, str]
    month: pd.Series  # month start of each row
    months: pd.DatetimeIndex  # the months, sorted
    num: dict[str, pd.Series]  # column -> numbers (category, total and channel columns)


def _month_level(wide: _Wide, root: Path, report: ValidationReport) -> tuple[pd.DataFrame, str, Path]:
    """The columns of one value per Secondfile row (month), shared by every category of that month: the line,
    spend, total spend, NPS and promotion days; and where NPS and the promotion days came from."""
    month_level = pd.DataFrame({PERIOD: wide.month, ROW: pd.Series(line_numbers(wide.raw.index), index=wide.raw.index, dtype="int64")})
    for col, channel in CHANNEL_COLUMNS.items():
        month_level[spend_col(channel)] = wide.num[col]
    month_level[TOTAL_SPEND] = wide.num[TOTAL_COLUMN]
    nps_values, nps_source = _brand_health(root / NPS_FILE, wide, report)
    month_level[NPS] = nps_values.to_numpy()
    sale_path = root / SALE_FILE
    promo, outside = _load_promo_days(sale_path, wide.months)
    month_level[PROMO_DAYS] = wide.month.map(promo).astype("float64").to_numpy()
    if outside:
        report.add(
            Finding("info", "promo_days", f"{outside} sale days fall outside the panel's months", file=str(sale_path))
        )
    return month_level, nps_source, sale_path


def _read_secondfile(path: Path, families: Mapping[str, Sequence[str]] | None) -> _Wide:
    second = str(path)
    raw = read_csv_checked(path)
    categories = [c[len("Revenue_") :] for c in raw.columns if c.startswith("Revenue_") and len(c) > len("Revenue_")]
    if not categories:
        raise DataError("no Revenue_<category> columns", file=second, column="Revenue_*", rows=[1], row_label="line")
    family_of = _resolve_families(families, categories, second)
    category_cols = [col for cat in categories for col in _category_columns(cat).values()]
    require_columns(raw, ["Date", *category_cols, TOTAL_COLUMN, *CHANNEL_COLUMNS], second)
    month = snap_to_period_start(parse_dates_checked(raw["Date"], second, "Date", formats=("ISO8601", "%m/%d/%Y")), "MS")
    months = pd.DatetimeIndex(month.unique()).sort_values()
    num = {col: to_numeric_checked(raw[col], second, col) for col in [*category_cols, TOTAL_COLUMN, *CHANNEL_COLUMNS]}
    return _Wide(second, raw, categories, family_of, month, months, num)


def _brand_health(nps_path: Path, wide: _Wide, report: ValidationReport) -> tuple[pd.Series, str]:
    """NPS of each Secondfile row and where it came from: ``MonthlyNPSscore.csv``, cross-checked against
    Secondfile's own ``NPS`` column (findings in ``report``), or that column when the file is missing."""
    second, raw, month, months = wide.file, wide.raw, wide.month, wide.months
    second_nps = to_numeric_checked(raw["NPS"], second, "NPS") if "NPS" in raw.columns else None
    if not nps_path.exists():
        if second_nps is None:
            raise DataError(f"file not found (and {SECONDFILE} has no NPS column)", file=str(nps_path))
        report.add(
            Finding("warning", "nps", f"file not found; NPS taken from {SECONDFILE} column 'NPS'", file=str(nps_path))
        )
        return second_nps, f"{second}:NPS"
    nps_by_month = _load_nps(nps_path, months)
    nps_values = month.map(nps_by_month).astype("float64")
    no_nps = nps_by_month.index[nps_by_month.isna()]
    if len(no_nps):
        report.add(
            Finding(
                "warning", "nps", "no NPS for these months", file=str(nps_path), column="NPS", periods=iso_dates(no_nps)
            )
        )
    if second_nps is not None:
        report.add(_nps_crosscheck(nps_values, second_nps, month, len(months), str(nps_path)))
    return nps_values, f"{nps_path}:NPS"


def _nps_crosscheck(nps_values: pd.Series, second_nps: pd.Series, month: pd.Series, n_months: int, file: str) -> Finding:
    """Whether the NPS file agrees with Secondfile's ``NPS`` column (within :data:`NPS_TOL`) in every month."""
    diff = (nps_values - second_nps).abs()
    off = (diff > NPS_TOL) | (nps_values.isna() != second_nps.isna())
    if off.any():
        return Finding(
            "warning",
            "nps_crosscheck",
            f"NPS differs from {SECONDFILE} column 'NPS' by more than {NPS_TOL}",
            file=file,
            column="NPS",
            periods=iso_dates(sorted(month[off].unique())),
        )
    return Finding(
        "info",
        "nps_crosscheck",
        f"NPS agrees with {SECONDFILE} column 'NPS' in all {n_months} months",
        file=file,
        column="NPS",
    )


def _long_frame(wide: _Wide, month_level: pd.DataFrame) -> pd.DataFrame:
    """Reshape wide -> long: one block of rows per category, the month-level columns joined to each."""
    blocks = []
    for cat in wide.categories:
        cols = _category_columns(cat)
        revenue, units, mrp_total, discount_total = (wide.num[cols[k]] for k in ("revenue", "units", "mrp", "discount"))
        block = pd.DataFrame(
            {
                PERIOD: wide.month,
                BRAND: wide.family_of[cat],
                SKU: cat,
                GMV: revenue,
                UNITS: units,
                PRICE: _safe_ratio(revenue, units),
                MRP: _safe_ratio(mrp_total, units),
                DISCOUNT: _safe_ratio(discount_total, mrp_total),
            },
            index=wide.raw.index,
        )
        blocks.append(block.join(month_level.drop(columns=[PERIOD])))
    frame = pd.concat(blocks, ignore_index=True)
    frame[BRAND] = frame[BRAND].astype(str)
    frame[SKU] = frame[SKU].astype(str)
    frame[FIT_WEIGHT] = 1.0
    order = [PERIOD, BRAND, SKU, GMV, UNITS, PRICE, MRP, DISCOUNT, PROMO_DAYS, NPS, TOTAL_SPEND]
    frame = frame[[*order, *(spend_col(c) for c in CHANNEL_COLUMNS.values()), ROW, FIT_WEIGHT]]
    return frame.sort_values([PERIOD, BRAND, SKU], kind="mergesort").reset_index(drop=True)


def _column_sources(second: str, nps_source: str, sale_path: Path) -> dict[str, str]:
    """Canonical column -> the ``file:column`` it was read or derived from."""
    sources = {
        PERIOD: f"{second}:Date",
        SKU: f"{second}:Revenue_*",
        GMV: f"{second}:Revenue_*",
        UNITS: f"{second}:Units_*",
        PRICE: f"{second}:Revenue_*/Units_*",
        MRP: f"{second}:Mrp_*/Units_*",
        DISCOUNT: f"{second}:Discount_*/Mrp_*",
        TOTAL_SPEND: f"{second}:{TOTAL_COLUMN}",
        NPS: nps_source,
        PROMO_DAYS: f"{sale_path}:Date",
    }
    for col, channel in CHANNEL_COLUMNS.items():
        sources[spend_col(channel)] = f"{second}:{col}"
    return sources
