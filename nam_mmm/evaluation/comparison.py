"""The model-comparison table: HR-NAM and the baselines scored on the same out-of-sample rows.

Input is a long frame of test predictions (``model, fold, period, brand, sku, actual, predicted, fit_weight``);
rows with zero fit weight (outages, missing GMV) are not scored, as in the walk-forward summary.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from nam_mmm.evaluation.metrics import accuracy, mape


def wmape(actual: np.ndarray, predicted: np.ndarray) -> float:
    """Weighted MAPE in percent: Σ|actual − predicted| / Σ actual (rows with actual > 0)."""
    a, p = np.asarray(actual, float), np.asarray(predicted, float)
    ok = a > 0
    return float(np.abs(a[ok] - p[ok]).sum() / a[ok].sum() * 100.0) if ok.any() else float("nan")


def comparison_table(predictions: pd.DataFrame, fit_seconds: dict[str, float], reference: str = "naive_mean") -> pd.DataFrame:
    """One row per model: pooled R² and MAPE (rupees), wMAPE, within-SKU R² (log GMV), skill versus ``reference``
    (1 − SSE / SSE of the reference on the same rows), worst-fold MAPE, and the total fit time in seconds.

    Rows are sorted by pooled MAPE; ``reference`` must be one of the models (the naive mean by default)."""
    scored = predictions[predictions["fit_weight"] > 0]
    ref = scored[scored["model"] == reference]
    ref_sse = float(((ref["actual"] - ref["predicted"]) ** 2).sum()) if len(ref) else float("nan")
    rows = []
    for name, g in scored.groupby("model", sort=False):
        acc = accuracy(g["actual"], g["predicted"], g["sku"])
        fold_mape = g.groupby("fold").apply(lambda f: mape(f["actual"], f["predicted"]), include_groups=False)
        sse = float(((g["actual"] - g["predicted"]) ** 2).sum())
        rows.append(
            {
                "model": name,
                "r2": acc["r2"],
                "mape": acc["mape"],
                "wmape": wmape(g["actual"], g["predicted"]),
                "r2_within_sku_log": acc["r2_within_sku_log"],
                "skill_vs_naive": 1.0 - sse / ref_sse if ref_sse > 0 else float("nan"),
                "worst_fold_mape": float(fold_mape.max()),
                "fit_seconds": float(fit_seconds.get(name, float("nan"))),
                "n": acc["n"],
            }
        )
    return pd.DataFrame(rows).sort_values("mape", kind="stable").reset_index(drop=True)


def fold_mape_table(predictions: pd.DataFrame) -> pd.DataFrame:
    """MAPE per fold (rows) and model (columns)."""
    scored = predictions[predictions["fit_weight"] > 0]
    return scored.groupby(["fold", "model"], sort=False).apply(lambda f: mape(f["actual"], f["predicted"]), include_groups=False).unstack("model")
