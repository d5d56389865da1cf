"""Recovery of the synthetic generator's known truth: the out-of-sample evidence that the model finds real effects."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from nam_mmm.evaluation.metrics import accuracy, mape


def recovery_metrics(truth: dict, elasticities: pd.DataFrame, roi: pd.DataFrame, test_predictions: pd.DataFrame) -> dict[str, float]:
    """Compare a fitted model with the generator's truth.

    Returns:
        ``own_price_elasticity_mae``: mean |estimated − true| own-price elasticity over SKUs;
        ``roi_rank_corr``: Spearman correlation of channel ROI with the true ROI;
        ``roi_mape``: mean relative ROI error in percent;
        ``cross_price_elasticity_mae``: mean |estimated − true| cross-price elasticity over SKUs (brand truth);
        ``contribution_share_mae_pp``: mean |estimated − true| channel share of the media contribution, points;
        ``oracle_*``: the test metrics of the noiseless truth (the noise floor) on the same test rows;
        ``gap_*``: oracle minus model on those metrics (how far above the noise floor the model is).
    """
    out: dict[str, float] = {}
    own = elasticities[(elasticities["level"] == "sku") & (elasticities["feature"] == "price")]
    if len(own) and "own_price_elasticity" in truth:
        true = own["unit"].map(truth["own_price_elasticity"])
        out["own_price_elasticity_mae"] = float((own["elasticity"] - true).abs().mean())
    out.update({k: v for k, v in elasticity_recovery(truth, elasticities).items() if k == "cross_price_elasticity_mae"})
    if len(roi) and "roi" in truth:
        true_roi = roi["channel"].map(truth["roi"]).to_numpy(float)
        est = roi["roi"].to_numpy(float)
        out["roi_rank_corr"] = float(spearmanr(est, true_roi)[0]) if len(roi) > 2 else float("nan")
        out["roi_mape"] = float(np.mean(np.abs(est - true_roi) / np.abs(true_roi)) * 100)
        if "contribution_inr" in truth and "contribution_inr" in roi:
            # the share is scale-free, so it also holds for a fold's ROI table on its training periods only
            out["contribution_share_mae_pp"] = attribution_recovery(truth["roi"], truth["contribution_inr"], roi)["contribution_share_mae_pp"]
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


def attribution_recovery(true_roi: dict[str, float], true_contribution: dict[str, float], estimate: pd.DataFrame) -> dict[str, float]:
    """Channel attribution against the truth, for any model (HR-NAM ``roi.csv`` or a baseline's).

    ``estimate`` has ``channel``, ``roi`` and ``contribution_inr`` (sales units, summed over the panel). Channels
    with a non-finite or zero true ROI (never spent) are left out. Returns:

    * ``roi_mape``: mean |estimated − true| / |true| ROI, percent;
    * ``roi_rank_corr``: Spearman rank correlation of the ROIs (nan with fewer than 3 channels or a constant side);
    * ``contribution_share_mae_pp``: mean |estimated − true| share of the total media contribution, percentage points;
    * ``media_total_ratio``: estimated total media contribution / true total (1 = right size);
    * ``n_channels``.
    """
    est = estimate.set_index("channel")
    channels = [c for c in est.index if c in true_roi and np.isfinite(true_roi[c]) and true_roi[c] != 0]
    t_roi = np.array([true_roi[c] for c in channels], float)
    e_roi = est.loc[channels, "roi"].to_numpy(float)
    t_con = np.array([true_contribution[c] for c in channels], float)
    e_con = est.loc[channels, "contribution_inr"].to_numpy(float)
    out = {"n_channels": float(len(channels))}
    out["roi_mape"] = float(np.mean(np.abs(e_roi - t_roi) / np.abs(t_roi)) * 100) if channels else float("nan")
    varied = len(channels) > 2 and np.ptp(e_roi) > 0 and np.ptp(t_roi) > 0
    out["roi_rank_corr"] = float(spearmanr(e_roi, t_roi)[0]) if varied else float("nan")
    t_sum, e_sum = t_con.sum(), e_con.sum()
    if channels and t_sum and e_sum:
        out["contribution_share_mae_pp"] = float(np.mean(np.abs(e_con / e_sum - t_con / t_sum)) * 100)
    else:
        out["contribution_share_mae_pp"] = float("nan")
    out["media_total_ratio"] = float(e_sum / t_sum) if t_sum else float("nan")
    return out


def elasticity_recovery(truth: dict, elasticities: pd.DataFrame) -> dict[str, float]:
    """Own- and cross-price elasticity MAE over SKUs (``level == "sku"`` rows of ``elasticities.csv``).

    The generator's cross-price elasticity is a brand value shared by the brand's SKUs, so each SKU's estimate is
    compared with its brand's. Keys are present only where both the estimate and the truth exist.
    """
    out: dict[str, float] = {}
    sku = elasticities[elasticities["level"] == "sku"]
    own = sku[sku["feature"] == "price"]
    if len(own) and "own_price_elasticity" in truth:
        true = own["unit"].map(truth["own_price_elasticity"]).to_numpy(float)
        out["own_price_elasticity_mae"] = float(np.nanmean(np.abs(own["elasticity"].to_numpy(float) - true)))
    cross = sku[sku["feature"] == "cross_price"]
    if len(cross) and "cross_price_elasticity" in truth and "skus" in truth:
        brand_of = cross["unit"].map(truth["skus"])
        true = brand_of.map(truth["cross_price_elasticity"]).to_numpy(float)
        out["cross_price_elasticity_mae"] = float(np.nanmean(np.abs(cross["elasticity"].to_numpy(float) - true)))
    return out


def noise_floor_gap(rows: pd.DataFrame, predictions: pd.DataFrame) -> dict[str, float]:
    """Out-of-sample MAPE of a model next to the noiseless truth's MAPE on the same rows (the noise floor).

    ``rows``: the generator's ``truth_rows`` (period, sku, log_gmv_mean); ``predictions``: period, sku, actual,
    predicted (and optionally fit_weight). Returns ``mape``, ``floor_mape`` and ``mape_gap_pp`` = model − floor
    (percentage points; positive = above the floor).
    """
    merged = predictions.merge(rows[["period", "sku", "log_gmv_mean"]], on=["period", "sku"], how="left", validate="many_to_one")
    if "fit_weight" in merged:
        merged = merged[merged["fit_weight"] > 0]
    if merged["log_gmv_mean"].isna().any():
        raise ValueError("predictions hold rows the truth does not have")
    model = mape(merged["actual"], merged["predicted"])
    floor = mape(merged["actual"], np.exp(merged["log_gmv_mean"]))
    return {"mape": model, "floor_mape": floor, "mape_gap_pp": model - floor}
