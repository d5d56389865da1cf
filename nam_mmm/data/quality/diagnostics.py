"""Multicollinearity (§3.5) and seasonal decomposition (§3.6) diagnostics for the inspection report."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from nam_mmm.data.calendar.frequency import periods_per_year
from nam_mmm.data.features.table import FeatureTable
from nam_mmm.data.panel import GMV, PERIOD


def _design(table: FeatureTable) -> pd.DataFrame:
    cols = [s.name for s in table.model_specs] + [f"adstock_{c}" for c in table.channels]
    x = table.frame[cols].astype(float)
    return x.loc[:, x.std() > 0]


def vif_table(table: FeatureTable) -> pd.DataFrame:
    """Variance inflation factor of each model feature (media as fixed-decay adstock), with a constant."""
    from statsmodels.stats.outliers_influence import variance_inflation_factor

    x = _design(table)
    if x.shape[1] < 2:
        return pd.DataFrame({"feature": list(x.columns), "vif": [1.0] * x.shape[1]})
    z = (x - x.mean()) / x.std()
    mat = np.column_stack([np.ones(len(z)), z.to_numpy()])
    # statsmodels warns on a rank-deficient design (more national features than periods, as in DT Mart);
    # the table says so instead, and such VIFs are reported as infinite.
    rank = np.linalg.matrix_rank(mat)
    with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
        warnings.simplefilter("ignore")
        vifs = [float(variance_inflation_factor(mat, i + 1)) for i in range(z.shape[1])]
    out = pd.DataFrame({"feature": list(x.columns), "vif": vifs})
    if rank < mat.shape[1]:
        out["vif"] = out["vif"].where(out["vif"] < 1e6, np.inf)
    out["flag"] = np.where(out["vif"] > 10, "high (>10)", np.where(out["vif"] > 5, "moderate (>5)", ""))
    if rank < mat.shape[1]:
        out.attrs["note"] = f"design is rank-deficient: rank {rank} < {mat.shape[1]} columns (features outnumber distinct periods)"
    return out.sort_values("vif", ascending=False).reset_index(drop=True)


def high_correlation_pairs(table: FeatureTable, threshold: float = 0.8) -> pd.DataFrame:
    """Pairs of model features with |Pearson r| ≥ threshold."""
    x = _design(table)
    corr = x.corr().to_numpy()
    iu = np.triu_indices_from(corr, k=1)
    r = corr[iu]
    keep = np.abs(r) >= threshold
    out = pd.DataFrame({"feature_a": x.columns[iu[0][keep]], "feature_b": x.columns[iu[1][keep]], "r": r[keep]})
    return out.reindex(out["r"].abs().sort_values(ascending=False).index).reset_index(drop=True)


def decompose_total(table: FeatureTable) -> tuple[pd.DataFrame | None, str]:
    """Additive decomposition of log total GMV when the panel spans two full seasons; else a reason."""
    totals = table.frame.groupby(PERIOD)[GMV].sum()
    period = periods_per_year(table.panel.freq)
    unit = "months" if period == 12 else "weeks" if period == 52 else "periods"
    if len(totals) < 2 * period:
        return None, f"skipped: {len(totals)} {unit} < 2 seasons"
    from statsmodels.tsa.seasonal import seasonal_decompose

    res = seasonal_decompose(np.log(totals.clip(lower=1.0)), model="additive", period=period)
    out = pd.DataFrame({"observed": res.observed, "trend": res.trend, "seasonal": res.seasonal, "resid": res.resid})
    return out, f"done: {len(totals)} {unit}, period {period}"
