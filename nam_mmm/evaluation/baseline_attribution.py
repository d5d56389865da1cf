"""ROI, contributions and elasticities of the linear baselines, read from their coefficients.

The baselines of :mod:`nam_mmm.evaluation.baselines` are log-linear: ``log ŷ = level[sku] + Σ_j β_j·z_j + Σ_c β_c·m_c``
with ``z`` the fold scaler's features and ``m_c`` channel ``c``'s adstock in multiples of its mean training spend
(``ols``, ``ridge``) or ``log(1 + adstock)`` (``loglog_ridge``). So, per row,

* channel ``c``'s contribution is ``ŷ − ŷ·exp(−β_c·m_c) = ŷ·(1 − exp(−β_c·m_c))`` (prediction minus the
  prediction with that channel's spend at zero, as the HR-NAM's ``contributions.csv`` defines it);
* the elasticity of a log-transformed feature (own / cross price) is ``β_j / scale_j``, ``scale_j`` the fold
  scaler's standard deviation of the log price; of an identity feature ``β_j·x / scale_j``.

Like the HR-NAM's walk-forward ``roi.csv`` (the fold ensemble on every period), each fold's coefficients —
fitted on the periods before its test periods, exactly as the baseline is fitted for its predictions — are applied
to every row of the panel, and the fold results are averaged.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from nam_mmm.data.features.design import linear_design
from nam_mmm.data.features.scaling import FittedScaler, fit_scaler
from nam_mmm.data.features.table import FeatureTable
from nam_mmm.data.folds.datamodule import PanelArrays, panel_arrays
from nam_mmm.data.folds.splitters import Fold
from nam_mmm.evaluation.baselines import FoldDesign, _identity, _log_media, fold_design
from nam_mmm.models.linear import ridge_predict, ridge_solve, select_alpha

# baseline -> (feature transform of the design, penalized); the same pairs as baselines.BASELINES
LINEAR_BASELINES: dict[str, tuple[Callable[[FoldDesign], Callable[[np.ndarray], np.ndarray]], bool]] = {
    "ols": (_identity, False),
    "ridge": (_identity, True),
    "loglog_ridge": (_log_media, True),
}


@dataclass
class FoldFit:
    """One fold's coefficients and what they imply on every row of the panel.

    Attributes:
        alpha: the ridge penalty (0 for OLS); ``beta``: ``[levels (S), features (F + C)]``.
        contribution: (C,) per channel, Σ over all rows of ``ŷ·(1 − exp(−β_c·m_c))``, sales units.
        elasticity: (S, F) per SKU, mean over the SKU's rows of each feature's elasticity (nan where none).
        test_predicted: the fold's test-row predictions (equal to the baseline's in ``run_baselines``).
    """

    alpha: float
    beta: np.ndarray
    contribution: np.ndarray
    elasticity: np.ndarray
    test_predicted: np.ndarray


def _fold_scaler(table: FeatureTable, fold: Fold, a: PanelArrays) -> FittedScaler:
    """The statistics :func:`~nam_mmm.evaluation.baselines.fold_design` fits: fit periods, rows with weight > 0."""
    row_period = a.periods[a.period]
    fit_periods = fold.train.union(fold.val)
    fit_mask = np.isin(row_period, fit_periods) & (a.weight > 0)
    n_skus = len(table.panel.skus)
    spend = a.spend_per_period[np.isin(a.periods, fit_periods)] if table.panel.national_spend() else a.media[fit_mask][:, :, 0]
    return fit_scaler(table.model_specs, a.x[fit_mask], a.sku[fit_mask], n_skus, a.log_gmv[fit_mask], a.weight[fit_mask], spend)


def spend_per_channel(table: FeatureTable, a: PanelArrays) -> np.ndarray:
    """(C,) spend over every period (national spend once per period, SKU-level spend summed over rows)."""
    if table.panel.national_spend():
        return a.spend_per_period.sum(axis=0)
    return a.media[:, :, 0].sum(axis=0)


def fit_fold(table: FeatureTable, fold: Fold, name: str, arrays: PanelArrays | None = None) -> FoldFit:
    """Fit baseline ``name`` on one fold (as ``run_baselines`` does) and read its attribution on every row."""
    if name not in LINEAR_BASELINES:
        raise ValueError(f"no coefficient attribution for baseline '{name}' (linear ones: {', '.join(LINEAR_BASELINES)})")
    transform, penalized = LINEAR_BASELINES[name]
    a = arrays if arrays is not None else panel_arrays(table)
    d = fold_design(table, fold, a)
    scaler = _fold_scaler(table, fold, a)
    full = linear_design(a.x, a.media, a.sku, a.period, a.log_gmv, scaler, table.decay)
    fit_mask = np.isin(a.periods[a.period], fold.train.union(fold.val)) & (a.weight > 0)
    if not np.allclose(full.z[fit_mask], d.fit.z, rtol=1e-12, atol=1e-12):
        raise RuntimeError("baseline_attribution rebuilt another design than baselines.fold_design (the two drifted apart)")
    expand = transform(d)
    f_fit = expand(d.fit.z)
    alpha = select_alpha(f_fit, d.fit.log_gmv, d.fit.unit, d.fit.period, d.n_skus) if penalized else 0.0
    beta = ridge_solve(f_fit, d.fit.log_gmv, d.fit.unit, d.n_skus, alpha)
    test_predicted = np.exp(ridge_predict(beta, expand(d.test.z), d.test.unit, d.n_skus))

    f_all = expand(full.z)
    y_hat = np.exp(ridge_predict(beta, f_all, full.unit, d.n_skus))
    coef = beta[d.n_skus :]
    media_cols = full.media_cols
    contribution = (y_hat[:, None] * -np.expm1(-coef[media_cols][None, :] * f_all[:, media_cols])).sum(axis=0)

    n_f = len(table.model_specs)
    row_el = np.full((len(full.unit), n_f), np.nan)
    for j, spec in enumerate(table.model_specs):
        if not spec.elasticity:
            continue
        if spec.transform == "log":
            row_el[:, j] = coef[j] / scaler.scale[j]
        else:
            row_el[:, j] = coef[j] * a.x[:, j] / scaler.scale[j]
    elasticity = np.full((d.n_skus, n_f), np.nan)
    for s in range(d.n_skus):
        rows = full.unit == s
        if rows.any():
            elasticity[s] = row_el[rows].mean(axis=0)
    return FoldFit(alpha, beta, contribution, elasticity, test_predicted)


def baseline_attribution(table: FeatureTable, folds: list[Fold], names: list[str] | None = None) -> dict[str, dict[str, pd.DataFrame]]:
    """Per linear baseline, the fold-averaged ``roi`` table (channel, spend_inr, contribution_inr, roi) and the
    ``elasticities`` table (level sku, unit, feature, elasticity), in the columns of the HR-NAM's run files."""
    names = list(LINEAR_BASELINES) if names is None else names
    a = panel_arrays(table)
    spend = spend_per_channel(table, a)
    skus = table.panel.skus
    out = {}
    for name in names:
        fits = [fit_fold(table, fold, name, a) for fold in folds]
        contribution = np.mean([f.contribution for f in fits], axis=0)
        with np.errstate(divide="ignore", invalid="ignore"):
            roi = np.mean([np.where(spend > 0, f.contribution / spend, np.nan) for f in fits], axis=0)
        roi_table = pd.DataFrame({"channel": table.channels, "spend_inr": spend, "contribution_inr": contribution, "roi": roi})
        el = np.mean([f.elasticity for f in fits], axis=0)  # (S, F); nan for features without an elasticity
        rows = []
        for j, spec in enumerate(table.model_specs):
            if spec.elasticity:
                rows += [{"level": "sku", "unit": s, "feature": spec.name, "elasticity": float(el[i, j])} for i, s in enumerate(skus)]
        el_table = pd.DataFrame(rows, columns=["level", "unit", "feature", "elasticity"])
        alphas = pd.DataFrame({"fold": [f.index for f in folds], "alpha": [f.alpha for f in fits]})
        out[name] = {"roi": roi_table, "elasticities": el_table, "alphas": alphas}
    return out
