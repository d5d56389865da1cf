"""Validation of a canonical panel (seed §3.1): every finding names the file, column and rows/periods."""

from __future__ import annotations

import numpy as np
import pandas as pd

from nam_mmm.data.panel import (
    BRAND,
    DISCOUNT,
    GMV,
    MRP,
    NPS,
    PERIOD,
    PRICE,
    PROMO_DAYS,
    SKU,
    TOTAL_SPEND,
    UNITS,
    Panel,
)
from nam_mmm.data.report import Finding


def _iso(periods) -> list[str]:
    return [pd.Timestamp(p).strftime("%Y-%m-%d") for p in periods]


def check_duplicates(panel: Panel) -> list[Finding]:
    df = panel.frame
    dup = df.duplicated([PERIOD, SKU], keep=False)
    if not dup.any():
        return []
    return [
        Finding(
            "error",
            "duplicates",
            f"{int(dup.sum())} rows share a (period, SKU) pair, e.g. SKU '{df.loc[dup, SKU].iloc[0]}'",
            file=panel.source,
            column=panel.origin(SKU)[1],
            rows=panel.rows_of(dup),
            periods=_iso(sorted(df.loc[dup, PERIOD].unique())),
        )
    ]


def check_continuity(panel: Panel) -> list[Finding]:
    """Gaps in the calendar of periods (error) and SKUs missing some periods (warning)."""
    df = panel.frame
    present = pd.DatetimeIndex(sorted(df[PERIOD].unique()))
    if len(present) < 2:
        return [Finding("error", "continuity", "need at least two periods", file=panel.source)]
    expected = pd.date_range(present[0], present[-1], freq=panel.freq)
    findings = []
    missing = expected.difference(present)
    off_calendar = present.difference(expected)
    if len(off_calendar):
        findings.append(
            Finding(
                "error",
                "continuity",
                f"dates do not fall on the {panel.freq} calendar starting {present[0].date()}",
                file=panel.source,
                column=panel.origin(PERIOD)[1],
                rows=panel.rows_of(df[PERIOD].isin(off_calendar)),
                periods=_iso(off_calendar),
            )
        )
    if len(missing):
        findings.append(
            Finding(
                "error",
                "continuity",
                f"{len(missing)} period(s) missing from the calendar (a gap breaks adstock and folds)",
                file=panel.source,
                column=panel.origin(PERIOD)[1],
                periods=_iso(missing),
            )
        )
    counts = df.groupby(SKU)[PERIOD].nunique()
    short = counts[counts < len(present)]
    for sku, n in short.items():
        have = pd.DatetimeIndex(df.loc[df[SKU] == sku, PERIOD].unique())
        findings.append(
            Finding(
                "warning",
                "coverage",
                f"SKU '{sku}' has {n} of {len(present)} periods",
                file=panel.source,
                column=panel.origin(SKU)[1],
                periods=_iso(present.difference(have)),
            )
        )
    return findings


def _bound(panel: Panel, column: str, bad: pd.Series, rule: str, severity: str = "error") -> list[Finding]:
    if not bad.any():
        return []
    file, col = panel.origin(column)
    return [
        Finding(
            severity,
            "bounds",
            f"{int(bad.sum())} value(s) violate {rule}",
            file=file,
            column=col,
            rows=panel.rows_of(bad),
            periods=_iso(sorted(panel.frame.loc[bad, PERIOD].unique())),
        )
    ]


def check_bounds(panel: Panel) -> list[Finding]:
    df = panel.frame
    out: list[Finding] = []
    out += _bound(panel, GMV, df[GMV] < 0, "GMV >= 0")
    if PRICE in df:
        out += _bound(panel, PRICE, df[PRICE] <= 0, "price > 0")
    if MRP in df:
        out += _bound(panel, MRP, df[MRP] <= 0, "list price > 0")
    if UNITS in df:
        out += _bound(panel, UNITS, (df[UNITS] < 1) & df[GMV].gt(0), "units >= 1 where GMV > 0", "warning")
    if DISCOUNT in df:
        out += _bound(panel, DISCOUNT, (df[DISCOUNT] < 0) | (df[DISCOUNT] > 1), "discount depth in [0, 1]")
    if PROMO_DAYS in df:
        out += _bound(panel, PROMO_DAYS, df[PROMO_DAYS] < 0, "promo days >= 0")
    for col in panel.spend_columns:
        out += _bound(panel, col, df[col] < 0, "spend >= 0")
    return out


def check_missing(panel: Panel) -> list[Finding]:
    """Report missing cells per column; missing spend is expected to mean zero spend (a warning)."""
    df = panel.frame
    out = []
    role_cols = [GMV, PRICE, DISCOUNT, PROMO_DAYS, NPS, UNITS, *panel.spend_columns, *panel.controls]
    for col in [c for c in role_cols if c in df]:
        miss = df[col].isna()
        if not miss.any():
            continue
        periods = sorted(df.loc[miss, PERIOD].unique())
        spend = col in panel.spend_columns
        what = (
            "treated as zero spend" if spend
            else "left missing (not a model input)" if col == UNITS
            else "rows leave the fit" if col == GMV
            else "imputed per the missing-data rule"
        )
        file, src = panel.origin(col)
        out.append(
            Finding(
                "warning",
                "missing",
                f"{len(periods)} of {df[PERIOD].nunique()} periods missing ({int(miss.sum())} cells), {what}",
                file=file,
                column=src,
                rows=panel.rows_of(miss),
                periods=_iso(periods),
            )
        )
    return out


def check_spend_consistency(panel: Panel, rel_tol: float = 0.02) -> list[Finding]:
    """Reported total spend vs the sum of channels (within ``rel_tol`` relative, or 1 rupee)."""
    df = panel.frame
    if TOTAL_SPEND not in df or not panel.channels:
        return []
    channel_sum = df[panel.spend_columns].fillna(0.0).sum(axis=1)
    total = df[TOTAL_SPEND]
    bad = total.notna() & ((total - channel_sum).abs() > np.maximum(rel_tol * total.abs(), 1.0))
    file, col = panel.origin(TOTAL_SPEND)
    if not bad.any():
        return [Finding("info", "consistency", "total spend equals the channel sum in every period", file=file, column=col)]
    return [
        Finding(
            "warning",
            "consistency",
            f"total spend differs from the channel sum by more than {rel_tol:.0%}",
            file=file,
            column=col,
            rows=panel.rows_of(bad),
            periods=_iso(sorted(df.loc[bad, PERIOD].unique())),
        )
    ]


def outage_reference(panel: Panel) -> pd.Series:
    """Per period: the median total GMV of the periods up to and including it (never later periods, so
    the decision to flag a training period cannot depend on test-period sales)."""
    return panel.frame.groupby(PERIOD)[GMV].sum(min_count=1).sort_index().expanding().median()


def detect_outage(panel: Panel, threshold: float = 0.05) -> list[pd.Timestamp]:
    """Periods whose total GMV is below ``threshold`` × the median total of the periods so far (data outages).

    The first period has no history and is never flagged.
    """
    ref = outage_reference(panel)
    totals = panel.frame.groupby(PERIOD)[GMV].sum(min_count=1).sort_index()
    hit = (totals < threshold * ref) & (ref > 0)
    return [pd.Timestamp(p) for p in totals.index[hit.to_numpy()]]


def check_outage(panel: Panel, threshold: float = 0.05, action: str = "flag") -> list[Finding]:
    periods = detect_outage(panel, threshold)
    if not periods:
        return []
    totals = panel.frame.groupby(PERIOD)[GMV].sum()
    ref = outage_reference(panel)
    ratio = ", ".join(f"{p.date()}: {totals[p] / ref[p]:.4f}× median" for p in periods)
    file, col = panel.origin(GMV)
    return [
        Finding(
            "warning",
            "outage",
            f"data outage: total GMV below {threshold:g}× the median of the periods so far ({ratio}); action: {action}",
            file=file,
            column=col,
            rows=panel.rows_of(panel.frame[PERIOD].isin(periods)),
            periods=_iso(periods),
        )
    ]


def check_hierarchy(panel: Panel) -> list[Finding]:
    """Each SKU must belong to exactly one brand."""
    df = panel.frame
    n = df.groupby(SKU)[BRAND].nunique()
    bad = n[n > 1]
    if bad.empty:
        return []
    mask = df[SKU].isin(bad.index)
    return [
        Finding(
            "error",
            "hierarchy",
            f"SKU(s) {', '.join(map(str, bad.index[:5]))} appear under more than one brand",
            file=panel.source,
            column=panel.origin(BRAND)[1],
            rows=panel.rows_of(mask),
        )
    ]


def validate(panel: Panel, *, outage_threshold: float = 0.05, outage_action: str = "flag", consistency_tol: float = 0.02) -> list[Finding]:
    """Run every §3.1 check and return the findings (errors are raised later by the caller)."""
    findings: list[Finding] = []
    findings += check_duplicates(panel)
    findings += check_hierarchy(panel)
    findings += check_continuity(panel)
    findings += check_bounds(panel)
    findings += check_missing(panel)
    findings += check_spend_consistency(panel, consistency_tol)
    findings += check_outage(panel, outage_threshold, outage_action)
    return findings
