"""Recovery of the synthetic generator's known truth: the out-of-sample evidence that the model finds real effects."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from nam_mmm.evaluation.metrics import accuracy


def recovery_metrics(truth: dict, elasticities: pd.DataFrame, roi: pd.DataFrame, test_predictions: pd.DataFrame) -> dict[str, float]:
    """Compare a fitted model with the generator's truth.

    Returns:
        ``own_price_elasticity_mae``: mean |estimated − true| own-price elasticity over SKUs;
        ``roi_rank_corr``: Spearman correlation of channel ROI with the true ROI;
        ``roi_mape``: mean relative ROI error in percent;
        ``oracle_*``: the test metrics of the noiseless truth (the noise floor) on the same test rows;
        ``gap_*``: oracle minus model on those metrics (how far above the noise floor the model is).
    """
    out: dict[str, float] = {}
    own = elasticities[(elasticities["level"] == "sku") & (elasticities["feature"] == "price")]
    if len(own) and "own_price_elasticity" in truth:
        true = own["unit"].map(truth["own_price_elasticity"])
        out["own_price_elasticity_mae"] = float((own["elasticity"] - true).abs().mean())
    if len(roi) and "roi" in truth:
        true_roi = roi["channel"].map(truth["roi"]).to_numpy(float)
        est = roi["roi"].to_numpy(float)
        out["roi_rank_corr"] = float(spearmanr(est, true_roi)[0]) if len(roi) > 2 else float("nan")
        out["roi_mape"] = float(np.mean(np.abs(est - true_roi) / np.abs(true_roi)) * 100)
    rows = truth.get("rows")
    if rows is not None and len(test_predictions):
        merged = test_predictions.merge(rows, on=["period", "sku"], how="left")
        ok = merged["fit_weight"] > 0 if "fit_weight" in merged else np.ones(len(merged), bool)
        merged = merged[ok]
        oracle = accuracy(merged["actual"], np.exp(merged["log_gmv_mean"]), merged["sku"])
        model = accuracy(merged["actual"], merged["predicted"], merged["sku"])
        for k in ("r2", "r2_log", "r2_within_sku_log", "mape"):
            out[f"oracle_{k}"] = oracle[k]
            out[f"gap_{k}"] = oracle[k] - model[k]
    return out
