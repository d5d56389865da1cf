"""Missing data (§3.2), outliers (§3.3) and data outages: the rules come from config, every change is counted."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from nam_mmm.data.panel import FIT_WEIGHT, GMV, NPS, PERIOD, PRICE, DISCOUNT, PROMO_DAYS, SKU, Panel
from nam_mmm.data.quality.report import Finding
from nam_mmm.data.quality.validation import WARNING_CHECKS, check_units_without_target, detect_outage, units_without_target, validate
from nam_mmm.errors import ConfigError, DataError

OUTAGE_COLUMN = "outage"


@dataclass
class CleaningConfig:
    """How to treat missing cells, outages and outliers.

    Attributes:
        missing_spend: ``zero`` (missing spend means nothing was spent) or ``error``.
        missing_controls: ``ffill`` (carry the SKU's last value forward; leading gaps take the first value,
            which lies in every fold's training window), ``zero`` or ``error``.
        missing_gmv: ``exclude`` (the row stays for carry-over but leaves the fit) or ``error``.
        outage_action: ``drop`` (outage periods leave the fit, stay in the calendar), ``flag`` (a 0/1
            ``outage`` control), or ``keep``.
        outage_threshold: a period is an outage when its total GMV < threshold × the median total of the periods so far.
        iqr_k: IQR fence multiplier for outlier flags on log GMV per SKU.
        zscore_window: rolling window (periods) for the rolling z-score flag; ``zscore_max`` its limit.
        winsorize_spend: ``[lower, upper]`` percentiles (0–100) to clip each channel's spend at, or null (off).
        empty_sku: a SKU whose target is zero or missing in every row: ``error`` (refuse the data) or
            ``drop`` (its rows leave the panel with a warning, so it gets no output rows).
        range_k, range_min_ratio: spend/price outlier fences (see :func:`nam_mmm.data.quality.validation.check_range`).
        strict: turn warnings into errors (production retrains): those of ``strict_checks``, or every
            warning when ``strict_checks`` is null.
        strict_checks: the checks ``strict`` applies to (names from :data:`nam_mmm.data.quality.validation.WARNING_CHECKS`).
    """

    missing_spend: str = "zero"
    missing_controls: str = "ffill"
    missing_gmv: str = "exclude"
    outage_action: str = "flag"
    outage_threshold: float = 0.05
    consistency_tol: float = 0.02
    iqr_k: float = 3.0
    zscore_window: int = 6
    zscore_max: float = 4.0
    winsorize_spend: list[float] | None = field(default=None)
    empty_sku: str = "error"
    range_k: float = 5.0
    range_min_ratio: float = 10.0
    strict: bool = False
    strict_checks: list[str] | None = field(default=None)

    def __post_init__(self) -> None:
        allowed = {
            "missing_spend": ("zero", "error"),
            "missing_controls": ("ffill", "zero", "error"),
            "missing_gmv": ("exclude", "error"),
            "outage_action": ("drop", "flag", "keep"),
            "empty_sku": ("error", "drop"),
        }
        for key, values in allowed.items():
            if getattr(self, key) not in values:
                raise ConfigError(f"cleaning.{key} must be one of {values}, got {getattr(self, key)!r}")
        if not isinstance(self.strict, bool):
            raise ConfigError(f"cleaning.strict must be true or false, got {self.strict!r}")
        if self.strict_checks is not None:
            unknown = [c for c in self.strict_checks if c not in WARNING_CHECKS]
            if unknown:
                raise ConfigError(
                    f"cleaning.strict_checks: unknown check(s) {', '.join(map(str, unknown))} (known: {', '.join(WARNING_CHECKS)})"
                )
        if not self.range_k > 0 or not self.range_min_ratio >= 1:
            raise ConfigError(
                f"cleaning.range_k must be > 0 and cleaning.range_min_ratio >= 1, got {self.range_k!r}, {self.range_min_ratio!r}"
            )


def _missing_error(panel: Panel, col: str, mask: pd.Series, rule: str) -> Finding:
    file, src = panel.origin(col)
    return Finding("error", "missing", f"missing values and {rule}", file=file, column=src, rows=panel.rows_of(mask))


def impute(panel: Panel, cfg: CleaningConfig) -> list[Finding]:
    """Fill missing cells in place per role; returns error findings for rules set to ``error``."""
    df = panel.frame
    errors: list[Finding] = []
    for col in panel.spend_columns:
        miss = df[col].isna()
        if miss.any():
            if cfg.missing_spend == "error":
                errors.append(_missing_error(panel, col, miss, "cleaning.missing_spend is 'error'"))
                continue
            # national spend with a blank cell for some SKUs: take the period's reported value, so the
            # channel stays national (one value per period) instead of being summed over SKUs later
            per_period = df.groupby(PERIOD)[col]
            if bool((per_period.nunique() <= 1).all()):
                df[col] = df[col].fillna(per_period.transform("first"))
            df[col] = df[col].fillna(0.0)
            panel.report.count_imputed(col, int(miss.sum()))
    controls = [c for c in (PRICE, DISCOUNT, PROMO_DAYS, NPS, *panel.controls) if c in df]
    for col in controls:
        miss = df[col].isna()
        if not miss.any():
            continue
        if cfg.missing_controls == "error":
            errors.append(_missing_error(panel, col, miss, "cleaning.missing_controls is 'error'"))
            continue
        if cfg.missing_controls == "zero":
            df[col] = df[col].fillna(0.0)
        else:
            df[col] = df.groupby(SKU)[col].transform(lambda s: s.ffill().bfill())
        panel.report.count_imputed(col, int(miss.sum()))
    miss = df[GMV].isna()
    if miss.any():
        if cfg.missing_gmv == "error":
            errors.append(_missing_error(panel, GMV, miss, "cleaning.missing_gmv is 'error'"))
        else:
            df.loc[miss, FIT_WEIGHT] = 0.0
            panel.report.count_imputed(GMV + " (excluded from fit)", int(miss.sum()))
    return errors


def apply_outage(panel: Panel, cfg: CleaningConfig) -> None:
    periods = detect_outage(panel, cfg.outage_threshold)
    if not periods or cfg.outage_action == "keep":
        return
    hit = panel.frame[PERIOD].isin(periods)
    if cfg.outage_action == "drop":
        panel.frame.loc[hit, FIT_WEIGHT] = 0.0
    else:
        panel.frame[OUTAGE_COLUMN] = hit.astype(float)
        if OUTAGE_COLUMN not in panel.controls:
            panel.controls.append(OUTAGE_COLUMN)


def flag_outliers(panel: Panel, cfg: CleaningConfig) -> list[Finding]:
    """IQR fences and rolling z-scores on log GMV within each SKU (flags only; nothing is changed)."""
    df = panel.frame
    ok = df[GMV] > 0
    log_gmv = np.log(df[GMV].where(ok))
    g = log_gmv.groupby(df[SKU])
    q1, q3 = g.transform(lambda s: s.quantile(0.25)), g.transform(lambda s: s.quantile(0.75))
    iqr = q3 - q1
    iqr_flag = (log_gmv < q1 - cfg.iqr_k * iqr) | (log_gmv > q3 + cfg.iqr_k * iqr)
    # rolling z-score against the previous window only, so a spike does not hide in its own statistics
    prev = g.transform(lambda s: s.shift(1).rolling(cfg.zscore_window, min_periods=3).mean())
    prev_sd = g.transform(lambda s: s.shift(1).rolling(cfg.zscore_window, min_periods=3).std())
    z_flag = ((log_gmv - prev).abs() / prev_sd.where(prev_sd > 0)) > cfg.zscore_max
    file, col = panel.origin(GMV)
    out = []
    for name, flag, rule in (
        ("outlier_iqr", iqr_flag, f"outside the {cfg.iqr_k:g}×IQR fences of log GMV within the SKU"),
        ("outlier_zscore", z_flag, f"rolling z-score of log GMV above {cfg.zscore_max:g} (window {cfg.zscore_window})"),
    ):
        if flag.any():
            out.append(
                Finding(
                    "info",
                    name,
                    f"{int(flag.sum())} row(s) {rule}",
                    file=file,
                    column=col,
                    rows=panel.rows_of(flag),
                    periods=panel.periods_of(flag),
                )
            )
    return out


def winsorize_spend(panel: Panel, percentiles: list[float]) -> None:
    lo, hi = percentiles
    for col in panel.spend_columns:
        x = panel.frame[col]
        a, b = np.nanpercentile(x, [lo, hi])
        clipped = x.clip(a, b)
        panel.report.count_imputed(col + " (winsorized)", int((clipped != x).sum()))
        panel.frame[col] = clipped


def drop_units(panel: Panel, skus: list[str], reason: str) -> None:
    """Remove the rows of ``skus`` from the panel and record them (with ``reason``) in ``panel.dropped_units``.

    Raises:
        DataError: no SKU would be left.
    """
    for sku in skus:
        panel.dropped_units[sku] = reason
    keep = ~panel.frame[SKU].astype(str).isin(skus)
    if not keep.any():
        file, col = panel.origin(GMV)
        raise DataError("no SKU has a usable target (GMV is zero or missing in every row)", file=file, column=col)
    panel.frame = panel.frame.loc[keep].reset_index(drop=True)


def _raise_on_errors(panel: Panel, cfg: CleaningConfig) -> None:
    if cfg.strict:
        panel.report.apply_strict(cfg.strict_checks)
    panel.report.raise_on_errors()


def prepare_panel(panel: Panel, cleaning: CleaningConfig | dict | None = None) -> Panel:
    """Validate, stop on errors with a one-line message, then impute, treat outages and flag outliers.

    SKUs without a usable target are refused first (or dropped, ``empty_sku: drop``); with ``strict``
    the chosen warnings become errors before the data are refused or accepted.
    Mutates and returns ``panel``; the findings land in ``panel.report``.
    """
    cfg = cleaning if isinstance(cleaning, CleaningConfig) else CleaningConfig(**(cleaning or {}))
    no_target = check_units_without_target(panel, cfg.empty_sku)
    if cfg.empty_sku == "drop" and no_target:
        panel.report.extend(no_target)
        drop_units(panel, units_without_target(panel), "no usable target (GMV zero or missing in every row)")
    findings = validate(
        panel,
        outage_threshold=cfg.outage_threshold,
        outage_action=cfg.outage_action,
        consistency_tol=cfg.consistency_tol,
        range_k=cfg.range_k,
        range_min_ratio=cfg.range_min_ratio,
    )
    panel.report.extend(findings + no_target if cfg.empty_sku == "error" else findings)
    _raise_on_errors(panel, cfg)
    errors = impute(panel, cfg)
    panel.report.extend(errors)
    _raise_on_errors(panel, cfg)
    apply_outage(panel, cfg)
    panel.report.extend(flag_outliers(panel, cfg))
    if cfg.winsorize_spend:
        winsorize_spend(panel, list(cfg.winsorize_spend))
    if (panel.frame[GMV] <= 0).any():
        zero = panel.frame[GMV] <= 0
        panel.frame.loc[zero, FIT_WEIGHT] = 0.0
        panel.report.count_imputed(GMV + " (zero, excluded from fit: log undefined)", int(zero.sum()))
    return panel
