"""Baseline models fitted on exactly the HR-NAM's folds and features (the bar every accuracy claim stands next to).

Each baseline is fitted per fold on the periods before the fold's test periods (training and inner
validation periods; no test data), in the same feature space as the HR-NAM: the fold's own
:class:`~nam_mmm.data.features.scaling.FittedScaler` maps the model features to ``z`` (log prices centred per SKU, …),
and media enter as the fixed-decay adstock of the feature table in multiples of the channel's mean training
spend. Targets are log GMV with one unpenalized level per SKU; predictions are mapped back to rupees.

Baselines (:data:`BASELINES`):

* ``naive_mean``: each unit's mean GMV over its training rows, in rupees (the bar "last months' average");
* ``ols``: least squares of log GMV on SKU levels, ``z`` and linear adstock;
* ``ridge``: the same design with an L2 penalty chosen by rolling-origin cross-validation inside the training window;
* ``loglog_ridge``: ridge with ``log(1 + adstock)`` media (a log-log response with diminishing returns);
* ``gam``: cubic regression splines of every continuous feature (scikit-learn ``SplineTransformer``), ridge-penalized
  with the penalty chosen the same way;
* ``xgboost``: gradient-boosted trees on the same inputs, when the optional ``xgboost`` package is installed
  (skipped with a message otherwise).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from nam_mmm.data.features.design import LinearDesign, linear_design
from nam_mmm.data.features.scaling import fit_scaler
from nam_mmm.data.features.table import FeatureTable
from nam_mmm.data.folds.datamodule import PanelArrays, panel_arrays
from nam_mmm.data.folds.splitters import Fold
from nam_mmm.data.panel import BRAND, PERIOD, SKU
from nam_mmm.models.linear import ridge_predict, ridge_solve, select_alpha, with_levels

@dataclass
class FoldDesign:
    """The design of one fold: rows before the test periods (``fit``) and the test rows.

    Attributes:
        fit / test: the :class:`~nam_mmm.data.features.design.LinearDesign` of the fit rows (training and inner
            validation periods, rows with fit weight > 0) and of the test rows.
        continuous: (F + C,) True for columns with more than two distinct fit values (splines apply).
        gmv_fit: GMV of the fit rows, rupees; ``n_skus``: number of SKUs.
        test_rows: period / brand / SKU / actual / fit_weight of the test rows (rupees).
    """

    fit: LinearDesign
    test: LinearDesign
    continuous: np.ndarray
    gmv_fit: np.ndarray
    n_skus: int
    test_rows: pd.DataFrame


def fold_design(table: FeatureTable, fold: Fold, arrays: PanelArrays | None = None) -> FoldDesign:
    """Build the baseline design of one fold from the feature table (statistics from the fit periods only)."""
    a = arrays if arrays is not None else panel_arrays(table)
    row_period = a.periods[a.period]
    fit_periods = fold.train.union(fold.val)
    fit_mask = np.isin(row_period, fit_periods) & (a.weight > 0)
    test_mask = np.isin(row_period, fold.test)
    n_skus = len(table.panel.skus)
    spend = a.spend_per_period[np.isin(a.periods, fit_periods)] if table.panel.national_spend() else a.media[fit_mask][:, :, 0]
    scaler = fit_scaler(table.model_specs, a.x[fit_mask], a.sku[fit_mask], n_skus, a.log_gmv[fit_mask], a.weight[fit_mask], spend)

    def design(mask: np.ndarray) -> LinearDesign:
        return linear_design(a.x[mask], a.media[mask], a.sku[mask], a.period[mask], a.log_gmv[mask], scaler, table.decay)

    fit, test = design(fit_mask), design(test_mask)
    continuous = np.array([len(np.unique(np.round(fit.z[:, j], 10))) > 2 for j in range(fit.z.shape[1])], dtype=bool)
    frame = table.frame.loc[test_mask, [PERIOD, BRAND, SKU]].reset_index(drop=True)
    frame["actual"] = np.exp(a.log_gmv[test_mask]) * (a.weight[test_mask] > 0)
    frame["fit_weight"] = a.weight[test_mask]
    return FoldDesign(fit, test, continuous, np.exp(fit.log_gmv), n_skus, frame)


def _spline_basis(design: FoldDesign):
    """A cubic-spline expansion of the continuous columns fitted on the fit rows (other columns pass through)."""
    from sklearn.preprocessing import SplineTransformer

    cont = design.continuous
    if not cont.any():
        return lambda z: z
    spline = SplineTransformer(n_knots=4, degree=3, extrapolation="linear", include_bias=False).fit(design.fit.z[:, cont])

    def expand(z: np.ndarray) -> np.ndarray:
        return np.concatenate([spline.transform(z[:, cont]), z[:, ~cont]], axis=1)

    return expand


def _linear_model(transform: Callable[[FoldDesign], Callable[[np.ndarray], np.ndarray]], penalized: bool):
    def fit_predict(d: FoldDesign) -> np.ndarray:
        expand = transform(d)
        f_fit, f_test = expand(d.fit.z), expand(d.test.z)
        alpha = select_alpha(f_fit, d.fit.log_gmv, d.fit.unit, d.fit.period, d.n_skus) if penalized else 0.0
        beta = ridge_solve(f_fit, d.fit.log_gmv, d.fit.unit, d.n_skus, alpha)
        return np.exp(ridge_predict(beta, f_test, d.test.unit, d.n_skus))

    return fit_predict


def _identity(_: FoldDesign) -> Callable[[np.ndarray], np.ndarray]:
    return lambda z: z


def _log_media(d: FoldDesign) -> Callable[[np.ndarray], np.ndarray]:
    cols = d.fit.media_cols

    def expand(z: np.ndarray) -> np.ndarray:
        out = z.copy()
        out[:, cols] = np.log1p(np.clip(z[:, cols], 0.0, None))
        return out

    return expand


def _naive_mean(d: FoldDesign) -> np.ndarray:
    total = np.bincount(d.fit.unit, weights=d.gmv_fit, minlength=d.n_skus)
    count = np.bincount(d.fit.unit, minlength=d.n_skus)
    means = np.where(count > 0, total / np.maximum(count, 1), d.gmv_fit.mean())
    return means[d.test.unit]


def _xgboost(d: FoldDesign) -> np.ndarray:
    import xgboost

    fit, test = d.fit, d.test
    level = np.bincount(fit.unit, weights=fit.log_gmv, minlength=d.n_skus) / np.maximum(np.bincount(fit.unit, minlength=d.n_skus), 1)
    model = xgboost.XGBRegressor(n_estimators=200, max_depth=2, learning_rate=0.05, subsample=1.0, n_jobs=1, random_state=0)
    model.fit(with_levels(fit.z, fit.unit, d.n_skus), fit.log_gmv - level[fit.unit])  # trees model the deviation from each SKU's level
    return np.exp(level[test.unit] + model.predict(with_levels(test.z, test.unit, d.n_skus)))


BASELINES: dict[str, Callable[[FoldDesign], np.ndarray]] = {
    "naive_mean": _naive_mean,
    "ols": _linear_model(_identity, penalized=False),
    "ridge": _linear_model(_identity, penalized=True),
    "loglog_ridge": _linear_model(_log_media, penalized=True),
    "gam": _linear_model(_spline_basis, penalized=True),
    "xgboost": _xgboost,
}
OPTIONAL = {"xgboost": "xgboost"}  # baseline -> the package it needs (pip install 'nam-mmm[baselines]')


def available_baselines(names: list[str] | None = None) -> tuple[list[str], dict[str, str]]:
    """The baselines that can run here, and ``{name: reason}`` for those skipped (a missing optional package)."""
    import importlib.util

    names = list(BASELINES) if names is None else names
    unknown = [n for n in names if n not in BASELINES]
    if unknown:
        from nam_mmm.errors import ConfigError

        raise ConfigError(f"unknown baseline(s) {', '.join(unknown)} (known: {', '.join(BASELINES)})")
    ok, skipped = [], {}
    for name in names:
        package = OPTIONAL.get(name)
        if package and importlib.util.find_spec(package) is None:
            skipped[name] = f"package '{package}' not installed (pip install 'nam-mmm[baselines]')"
        else:
            ok.append(name)
    return ok, skipped


def run_baselines(table: FeatureTable, folds: list[Fold], names: list[str] | None = None) -> tuple[pd.DataFrame, dict[str, float], dict[str, str]]:
    """Fit every available baseline on every fold; test predictions in rupees.

    Returns ``(predictions, fit_seconds, skipped)``: predictions have ``model, fold, period, brand, sku, actual,
    predicted, fit_weight`` (the columns of ``oos_predictions.csv`` plus ``model``); ``fit_seconds`` is the total
    fitting time per baseline over all folds; ``skipped`` gives the reason per baseline that could not run.
    """
    names, skipped = available_baselines(names)
    arrays = panel_arrays(table)
    designs = [fold_design(table, fold, arrays) for fold in folds]
    frames, seconds = [], {}
    for name in names:
        start = time.perf_counter()
        for fold, d in zip(folds, designs, strict=True):
            frames.append(d.test_rows.assign(model=name, fold=fold.index, predicted=BASELINES[name](d)))
        seconds[name] = time.perf_counter() - start
    cols = ["model", "fold", PERIOD, BRAND, SKU, "actual", "predicted", "fit_weight"]
    return pd.concat(frames, ignore_index=True)[cols], seconds, skipped
