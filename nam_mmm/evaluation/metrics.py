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


# ---------------------------------------------------------------------------------------------------------------
# The full metric set of a report (§7.1): overall, per brand and per SKU, in rupees.
#
# Zeros in the target: MAPE divides by the actual, so rows with actual <= 0 are left out of MAPE (and counted in
# ``n_zero_actual``); wMAPE (Σ|error| / Σ actual) and every other metric keep them. MAPE is therefore finite whenever
# at least one actual is positive; a unit whose actuals are all zero has no MAPE (NaN), as no percentage exists.


def mae(actual: np.ndarray, predicted: np.ndarray) -> float:
    """Mean absolute error (units of the inputs)."""
    a, p = np.asarray(actual, float), np.asarray(predicted, float)
    return float(np.mean(np.abs(a - p))) if len(a) else float("nan")


def wmape(actual: np.ndarray, predicted: np.ndarray) -> float:
    """Weighted MAPE in percent: Σ|actual − predicted| / Σ|actual| over every row (zeros included)."""
    a, p = np.asarray(actual, float), np.asarray(predicted, float)
    denom = np.abs(a).sum()
    return float(np.abs(a - p).sum() / denom * 100.0) if denom > 0 else float("nan")


def mean_error(actual: np.ndarray, predicted: np.ndarray) -> float:
    """Mean of predicted − actual (positive: the model over-predicts on average)."""
    a, p = np.asarray(actual, float), np.asarray(predicted, float)
    return float(np.mean(p - a)) if len(a) else float("nan")


def median_error(actual: np.ndarray, predicted: np.ndarray) -> float:
    """Median of predicted − actual."""
    a, p = np.asarray(actual, float), np.asarray(predicted, float)
    return float(np.median(p - a)) if len(a) else float("nan")


def pearson(actual: np.ndarray, predicted: np.ndarray) -> float:
    """Pearson correlation (nan for fewer than 3 points or a constant side)."""
    a, p = np.asarray(actual, float), np.asarray(predicted, float)
    if len(a) < 3 or a.std() == 0 or p.std() == 0:
        return float("nan")
    return float(np.corrcoef(a, p)[0, 1])


def spearman(actual: np.ndarray, predicted: np.ndarray) -> float:
    """Spearman rank correlation (nan for fewer than 3 points or a constant side)."""
    from scipy.stats import rankdata

    a, p = np.asarray(actual, float), np.asarray(predicted, float)
    if len(a) < 3:
        return float("nan")
    return pearson(rankdata(a), rankdata(p))


def skill_vs_naive(actual: np.ndarray, predicted: np.ndarray, naive: np.ndarray) -> float:
    """1 − SSE / SSE of the naive forecast on the same rows (0 = as good as the naive mean, 1 = perfect)."""
    a, p, n = np.asarray(actual, float), np.asarray(predicted, float), np.asarray(naive, float)
    ref = float(((a - n) ** 2).sum())
    return float(1.0 - ((a - p) ** 2).sum() / ref) if ref > 0 else float("nan")


def full_metrics(actual: np.ndarray, predicted: np.ndarray, sku: np.ndarray | None = None, naive: np.ndarray | None = None) -> dict[str, float]:
    """Every metric of the report for one set of rows (rupees): R², MAE, RMSE, MAPE (rows with actual > 0),
    wMAPE, NRMSE, mean and median error (predicted − actual), Pearson, Spearman, within-SKU R² on log GMV (when
    ``sku`` is given and some SKU has two rows), skill versus ``naive`` (when given), ``n`` and ``n_zero_actual``."""
    a, p = np.asarray(actual, float), np.asarray(predicted, float)
    out = {
        "n": int(len(a)),
        "n_zero_actual": int((a <= 0).sum()),
        "r2": r2(a, p),
        "mae": mae(a, p),
        "rmse": rmse(a, p),
        "mape": mape(a, p),
        "wmape": wmape(a, p),
        "nrmse": nrmse(a, p),
        "mean_error": mean_error(a, p),
        "median_error": median_error(a, p),
        "pearson": pearson(a, p),
        "spearman": spearman(a, p),
    }
    if sku is not None:
        s = np.asarray(sku)
        ok = (a > 0) & (p > 0)
        _, counts = np.unique(s[ok], return_counts=True)
        out["r2_within_sku_log"] = within_group_r2(np.log(a[ok]), np.log(p[ok]), s[ok]) if (counts > 1).any() else float("nan")
    else:
        out["r2_within_sku_log"] = float("nan")
    out["skill_vs_naive"] = skill_vs_naive(a, p, naive) if naive is not None else float("nan")
    return out


METRIC_COLUMNS = [
    "level", "unit", "n", "n_zero_actual", "r2", "mae", "rmse", "mape", "wmape", "nrmse", "mean_error", "median_error",
    "pearson", "spearman", "r2_within_sku_log", "skill_vs_naive",
]


def metrics_table(rows, naive_column: str | None = "naive") -> "pd.DataFrame":
    """:func:`full_metrics` overall (``level`` ``all``), per brand and per SKU of a frame with ``brand``, ``sku``,
    ``actual``, ``predicted`` (rupees) and optionally the naive forecast in ``naive_column``. Rows with a
    ``fit_weight`` of 0 are not scored."""
    import pandas as pd

    frame = rows[rows["fit_weight"] > 0] if "fit_weight" in rows else rows
    has_naive = naive_column is not None and naive_column in frame
    out = []
    groups = [("all", [("all", frame)]), ("brand", list(frame.groupby("brand", sort=True))), ("sku", list(frame.groupby("sku", sort=True)))]
    for level, parts in groups:
        for unit, g in parts:
            m = full_metrics(g["actual"], g["predicted"], g["sku"], g[naive_column] if has_naive else None)
            out.append({"level": level, "unit": str(unit), **m})
    return pd.DataFrame(out, columns=METRIC_COLUMNS)


def naive_mean_forecast(test_rows, train_rows) -> np.ndarray:
    """The naive mean of ``scripts/compare_models.py`` for each test row: its SKU's mean actual over the training
    rows (every split before the test periods, fit weight > 0) of the same fold. ``test_rows`` and ``train_rows``
    have ``fold``, ``sku``, ``actual`` (and ``fit_weight``); a SKU without training rows gets the fold's mean."""
    train = train_rows[train_rows["fit_weight"] > 0] if "fit_weight" in train_rows else train_rows
    means = train.groupby(["fold", "sku"])["actual"].mean()
    fold_means = train.groupby("fold")["actual"].mean()
    keys = list(zip(test_rows["fold"], test_rows["sku"], strict=True))
    by_sku = means.reindex(keys).to_numpy(dtype=float)
    fallback = fold_means.reindex(test_rows["fold"]).to_numpy(dtype=float)
    return np.where(np.isfinite(by_sku), by_sku, fallback)
