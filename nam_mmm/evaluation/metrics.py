"""Accuracy metrics on original units (rupees) and on log GMV."""

from __future__ import annotations

import numpy as np


def r2(actual: np.ndarray, predicted: np.ndarray) -> float:
    """Coefficient of determination, 1 − SSE/SST (nan for fewer than 2 points or constant actuals)."""
    a, p = np.asarray(actual, float), np.asarray(predicted, float)
    sst = ((a - a.mean()) ** 2).sum()
    if len(a) < 2 or sst <= 0:
        return float("nan")
    return float(1.0 - ((a - p) ** 2).sum() / sst)


def within_group_r2(actual: np.ndarray, predicted: np.ndarray, group: np.ndarray) -> float:
    """R² after removing each group's mean actual from both series (how well the model tracks changes
    over time within a SKU, not the easy cross-sectional level differences between SKUs)."""
    a, p, g = np.asarray(actual, float), np.asarray(predicted, float), np.asarray(group)
    _, inv = np.unique(g, return_inverse=True)
    means = np.bincount(inv, weights=a) / np.bincount(inv)
    return r2(a - means[inv], p - means[inv])


def mape(actual: np.ndarray, predicted: np.ndarray) -> float:
    """Mean absolute percentage error in percent, over rows with actual > 0."""
    a, p = np.asarray(actual, float), np.asarray(predicted, float)
    ok = a > 0
    if not ok.any():
        return float("nan")
    return float(np.mean(np.abs((a[ok] - p[ok]) / a[ok])) * 100.0)


def rmse(actual: np.ndarray, predicted: np.ndarray) -> float:
    a, p = np.asarray(actual, float), np.asarray(predicted, float)
    return float(np.sqrt(np.mean((a - p) ** 2))) if len(a) else float("nan")


def nrmse(actual: np.ndarray, predicted: np.ndarray) -> float:
    """RMSE divided by the mean actual."""
    a = np.asarray(actual, float)
    m = a.mean() if len(a) else float("nan")
    return rmse(actual, predicted) / m if m else float("nan")


def accuracy(actual_gmv: np.ndarray, predicted_gmv: np.ndarray, sku: np.ndarray) -> dict[str, float]:
    """The standard metric set: R² and MAPE in rupees, R² on log GMV, within-SKU R² on log GMV, RMSE, NRMSE."""
    a, p = np.asarray(actual_gmv, float), np.asarray(predicted_gmv, float)
    ok = (a > 0) & (p > 0)
    la, lp = np.log(a[ok]), np.log(p[ok])
    return {
        "r2": r2(a, p),
        "mape": mape(a, p),
        "rmse": rmse(a, p),
        "nrmse": nrmse(a, p),
        "r2_log": r2(la, lp),
        "r2_within_sku_log": within_group_r2(la, lp, np.asarray(sku)[ok]),
        "n": int(len(a)),
    }
