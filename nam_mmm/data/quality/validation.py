"""Validation of a canonical panel (seed §3.1): every finding names the file, column and rows/periods."""

from __future__ import annotations

import numpy as np
import pandas as pd

from nam_mmm.data.calendar.frequency import iso_dates
from nam_mmm.data.panel import (
    BRAND,
    CROSS_PRICE,
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
from nam_mmm.data.quality.report import Finding
from nam_mmm.errors import DataError


WARNING_CHECKS: tuple[str, ...] = (
    "bounds",
    "consistency",
    "coverage",
    "media_crosscheck",
    "missing",
    "near_duplicate",
    "no_spend",
    "no_target",
    "nps",
    "nps_crosscheck",
    "outage",
    "range",
)
"""Checks that can give a warning (the names ``cleaning.strict_checks`` accepts); see docs/data_validation.md."""


def reversed_hierarchy(panel: Panel) -> Finding | None:
    """An error finding when the two hierarchy columns look listed fine -> coarse instead of coarse -> fine.

    The symptom: (period, SKU) pairs repeat while (period, brand) pairs do not, and each "brand" value sits
    under one "SKU" value: the column given as the SKU level is the coarse one.
    """
    df = panel.frame
    brand_col, sku_col = panel.origin(BRAND)[1], panel.origin(SKU)[1]
    if brand_col == sku_col or df.empty:
        return None
    if not df.duplicated([PERIOD, SKU]).any() or df.duplicated([PERIOD, BRAND]).any():
        return None
    if not bool((df.groupby(BRAND)[SKU].nunique() == 1).all()):
        return None
    n_brand, n_sku = df[BRAND].nunique(), df[SKU].nunique()
    return Finding(
        "error",
        "hierarchy",
        f"hierarchy looks reversed: column '{sku_col}' (given as the fine level) has {n_sku} value(s) that each hold "
        f"several values of column '{brand_col}' ({n_brand}, given as the coarse level); list it coarse -> fine: "
        f"hierarchy: [{sku_col}, {brand_col}]",
        file=panel.source,
        column=sku_col,
        rows=panel.rows_of(df.duplicated([PERIOD, SKU], keep=False)),
    )


def check_duplicates(panel: Panel) -> list[Finding]:
    df = panel.frame
    dup = df.duplicated([PERIOD, SKU], keep=False)
    if not dup.any():
        return []
    reversed_ = reversed_hierarchy(panel)
    if reversed_ is not None:
        return [reversed_]
    return [
        Finding(
            "error",
            "duplicates",
            f"{int(dup.sum())} rows share a (period, SKU) pair, e.g. SKU '{df.loc[dup, SKU].iloc[0]}'",
            file=panel.source,
            column=panel.origin(SKU)[1],
            rows=panel.rows_of(dup),
            periods=panel.periods_of(dup),
        )
    ]


def name_key(name: object) -> str:
    """A unit name compared without letter case and with runs of whitespace as one space."""
    return " ".join(str(name).split()).casefold()


def check_names(panel: Panel) -> list[Finding]:
    """Unit names that differ only in letter case or whitespace (``Acme-1L`` / ``acme-1l``): a warning each.

    They are read as different units, so one product's history is split in two.
    """
    df = panel.frame
    out: list[Finding] = []
    levels = [(SKU, "SKU")]
    if panel.origin(BRAND)[1] != panel.origin(SKU)[1]:
        levels.insert(0, (BRAND, "brand"))
    for level, label in levels:
        names = pd.Series(sorted(df[level].astype(str).unique()))
        groups = names.groupby(names.map(name_key))
        for _, group in groups:
            if len(group) < 2:
                continue
            shown = ", ".join(repr(n) for n in group)
            out.append(
                Finding(
                    "warning",
                    "near_duplicate",
                    f"{label} names {shown} differ only in letter case or spaces: read as {len(group)} different {label}s",
                    file=panel.source,
                    column=panel.origin(level)[1],
                    rows=panel.rows_of(df[level].astype(str).isin(list(group))),
                )
            )
    return out


def units_without_target(panel: Panel) -> list[str]:
    """SKUs whose target (GMV) is missing or zero in every row: nothing of them can enter the fit."""
    df = panel.frame
    usable = df[GMV].gt(0)
    per_sku = usable.groupby(df[SKU]).any()
    return [str(s) for s in per_sku.index[~per_sku.to_numpy()]]


def check_units_without_target(panel: Panel, action: str = "error") -> list[Finding]:
    """One finding per SKU with no usable target: an error (``action='error'``) or a warning (``'drop'``)."""
    df = panel.frame
    out = []
    file, col = panel.origin(GMV)
    for sku in units_without_target(panel):
        mask = df[SKU].astype(str) == sku
        values = df.loc[mask, GMV]
        what = "empty" if values.isna().all() else "zero" if values.fillna(0).eq(0).all() else "zero, negative or empty"
        if action == "drop":
            out.append(
                Finding(
                    "warning",
                    "no_target",
                    f"SKU '{sku}' has no usable target (all {int(mask.sum())} values {what}): dropped from the panel "
                    "(cleaning.empty_sku is 'drop'), no output for it",
                    file=file,
                    column=col,
                    rows=panel.rows_of(mask),
                )
            )
        else:
            out.append(
                Finding(
                    "error",
                    "no_target",
                    f"SKU '{sku}' has no usable target (all {int(mask.sum())} values {what}): nothing of it can be fitted; "
                    "fix the data, remove the SKU, or set cleaning.empty_sku: drop",
                    file=file,
                    column=col,
                    rows=panel.rows_of(mask),
                )
            )
    return out


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
                periods=iso_dates(off_calendar),
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
                periods=iso_dates(missing),
            )
        )
    counts = df.groupby(SKU)[PERIOD].nunique()
    short = counts[counts < len(present)]
    for sku, n in short.items():
        have = pd.DatetimeIndex(df.loc[df[SKU] == sku, PERIOD].unique())
        single = " (a single row: no history for carry-over or its own level)" if n == 1 else ""
        findings.append(
            Finding(
                "warning",
                "coverage",
                f"SKU '{sku}' has {n} of {len(present)} periods{single}",
                file=panel.source,
                column=panel.origin(SKU)[1],
                periods=iso_dates(present.difference(have)),
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
            periods=panel.periods_of(bad),
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


def _fences(values: pd.Series, k: float, min_ratio: float) -> tuple[float, float] | None:
    """``(low, high)`` fences of the positive values: ``Q1 / r`` and ``Q3 × r``, ``r = max((Q3 / Q1)^k, min_ratio)``.

    That is Tukey's fences ``Q1 − k·IQR``, ``Q3 + k·IQR`` on the log scale, but never closer than a factor
    ``min_ratio`` to the quartiles. ``None`` when fewer than 4 positive values.
    """
    x = values[values > 0].dropna()
    if len(x) < 4:
        return None
    q1, q3 = np.quantile(np.log(x.to_numpy()), [0.25, 0.75])
    width = max(k * (q3 - q1), float(np.log(min_ratio)))
    return float(np.exp(q1 - width)), float(np.exp(q3 + width))


def check_range(panel: Panel, k: float = 5.0, min_ratio: float = 10.0) -> list[Finding]:
    """Spend and price values far outside their column's robust range (a warning naming the rows).

    Spend columns: values above the upper fence of the column's positive values (zero spend is a spend
    plan, not an outlier; low spend is not flagged). Price columns (``price``, ``mrp``, ``cross_price``):
    values above the upper or below the lower fence of the same SKU's prices (prices differ between SKUs).
    The fences are :func:`_fences` with ``k`` (``cleaning.range_k``) and ``min_ratio``
    (``cleaning.range_min_ratio``).
    """
    df = panel.frame
    out: list[Finding] = []

    def finding(col: str, bad: pd.Series, rule: str) -> None:
        if not bad.any():
            return
        file, src = panel.origin(col)
        worst = df.loc[bad, col].abs().max()
        out.append(
            Finding(
                "warning",
                "range",
                f"{int(bad.sum())} value(s) far outside the column's robust range ({rule}; largest {worst:.4g}); "
                "a typo or a unit error would dominate the fit",
                file=file,
                column=src,
                rows=panel.rows_of(bad),
                periods=panel.periods_of(bad),
            )
        )

    for col in panel.spend_columns:
        fences = _fences(df[col], k, min_ratio)
        if fences is not None:
            finding(col, df[col] > fences[1], f"above {fences[1]:.4g}")
    for col in (PRICE, MRP, CROSS_PRICE):
        if col not in df:
            continue
        bad = pd.Series(False, index=df.index)
        for _, group in df.groupby(SKU)[col]:
            fences = _fences(group, k, min_ratio)
            if fences is not None:
                bad.loc[group.index] = (group < fences[0]) | (group > fences[1])
        finding(col, bad, "outside the SKU's own price range")
    return out


def check_dead_channels(panel: Panel) -> list[Finding]:
    """Media channels with no spend at all (every cell zero or missing): their effect cannot be estimated."""
    df = panel.frame
    out = []
    for ch, col in zip(panel.channels, panel.spend_columns, strict=True):
        if not df[col].fillna(0).ne(0).any():
            file, src = panel.origin(col)
            out.append(
                Finding(
                    "warning",
                    "no_spend",
                    f"channel '{ch}' has no spend in any period (all zero or empty): its effect cannot be estimated; "
                    "remove it from media",
                    file=file,
                    column=src,
                )
            )
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
                periods=iso_dates(periods),
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
            periods=panel.periods_of(bad),
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
            periods=iso_dates(periods),
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


def validate(
    panel: Panel,
    *,
    outage_threshold: float = 0.05,
    outage_action: str = "flag",
    consistency_tol: float = 0.02,
    range_k: float = 5.0,
    range_min_ratio: float = 10.0,
) -> list[Finding]:
    """Run every §3.1 check and return the findings (errors are raised later by the caller)."""
    findings: list[Finding] = []
    findings += check_duplicates(panel)
    findings += check_hierarchy(panel)
    findings += check_names(panel)
    findings += check_continuity(panel)
    findings += check_bounds(panel)
    findings += check_range(panel, range_k, range_min_ratio)
    findings += check_dead_channels(panel)
    findings += check_missing(panel)
    findings += check_spend_consistency(panel, consistency_tol)
    findings += check_outage(panel, outage_threshold, outage_action)
    return findings


MIN_PERIODS = 8
"""Fewest periods of a panel for any validation scheme."""

MIN_TRAIN_PERIODS = 5
"""Fewest training periods: of the holdout split, or of the first walk-forward fold (inner validation excluded)."""

MIN_FOLDS = 2
"""Fewest walk-forward folds: one fold gives no spread across folds (no stability, no acceptance)."""


def check_min_periods(
    n_periods: int,
    mode: str,
    folds: list | None = None,
    *,
    source: str | None = None,
    min_periods: int = MIN_PERIODS,
    min_train: int = MIN_TRAIN_PERIODS,
    min_folds: int = MIN_FOLDS,
) -> None:
    """Refuse a panel too short for the validation scheme, with a one-line :class:`DataError`.

    Minimum per mode (``mode`` = the validation config's ``name``):

    * every mode: ``min_periods`` periods (default :data:`MIN_PERIODS`);
    * ``holdout``: ``min_train`` training periods left after the test and validation periods;
    * ``walk_forward``: the first fold trains on ``min_train`` periods and there are ``min_folds`` folds.

    Args:
        n_periods: periods of the panel (``len(panel.periods)``).
        mode: ``holdout`` or ``walk_forward``.
        folds: the folds of the splitter (``make_splitter(cfg.validation).split(panel.periods)``); without
            them only the total is checked.
        source: the panel's file, for the message.

    Raises:
        DataError: the panel is too short for the scheme; ValueError: an unknown mode.
    """
    if mode not in ("holdout", "walk_forward"):
        raise ValueError(f"unknown validation mode {mode!r} (holdout | walk_forward)")
    if n_periods < min_periods:
        raise DataError(
            f"too few periods: {n_periods}, {mode} validation needs at least {min_periods} "
            "(a fit on so few periods gives numbers that mean nothing)",
            file=source,
        )
    if not folds:
        return
    train = len(folds[0].train)
    if train < min_train:
        where = "the training split" if mode == "holdout" else "the first walk-forward fold"
        raise DataError(
            f"too few training periods: {where} has {train} of {n_periods} periods, at least {min_train} are needed; "
            "shrink the test/validation periods or bring more history",
            file=source,
        )
    if mode == "walk_forward" and len(folds) < min_folds:
        raise DataError(
            f"too few walk-forward folds: {len(folds)} from {n_periods} periods, at least {min_folds} are needed "
            "(fold-to-fold stability needs two); lower initial_train or use validation=holdout",
            file=source,
        )
