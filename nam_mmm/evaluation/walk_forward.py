"""Walk-forward summaries (seed §6.5): fold table, pooled out-of-sample accuracy, elasticity stability,
acceptance criteria, and the fold ensemble's elasticities and ROI with their spread across folds."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from nam_mmm.data.folds.splitters import Fold
from nam_mmm.evaluation.metrics import accuracy


@dataclass
class AcceptanceCriteria:
    """Thresholds a walk-forward must meet (``validation.acceptance`` in config; seed defaults).

    Attributes:
        min_r2: pooled out-of-sample R² (rupees) at least this.
        max_r2_std: standard deviation of the fold R²s at most this.
        max_r2_range: max − min of the fold R²s at most this.
        max_elasticity_cv: coefficient of variation across folds (sd / |mean|) of each stability feature's
            overall elasticity at most this.
        stability_features: features whose elasticity stability is judged (default: own and cross price).
    """

    min_r2: float = 0.75
    max_r2_std: float = 0.10
    max_r2_range: float = 0.25
    max_elasticity_cv: float = 0.30
    stability_features: list[str] = field(default_factory=lambda: ["price", "cross_price"])


def fold_table(folds: list[Fold], evaluations: list) -> pd.DataFrame:
    """One row per fold: periods and test accuracy (R², MAPE, RMSE, NRMSE in rupees; R² on log GMV)."""
    rows = []
    for fold, ev in zip(folds, evaluations, strict=True):
        d = fold.describe()
        test = ev.metrics.get("test", {})
        rows.append(
            {
                "fold": fold.index,
                "train": d["train"],
                "val": d["val"],
                "test": d["test"],
                **{k: test.get(k, np.nan) for k in ("r2", "mape", "rmse", "nrmse", "r2_log", "r2_within_sku_log", "n")},
                "epochs": ev.metrics.get("epochs"),
                "fit_seconds": ev.metrics.get("fit_seconds"),
            }
        )
    return pd.DataFrame(rows)


def elasticity_stability(evaluations: list, level: str = "all") -> pd.DataFrame:
    """Each elasticity across folds (fold models on their training rows): mean, sd, CV, min, max."""
    frames = []
    for i, ev in enumerate(evaluations):
        e = ev.elasticities[ev.elasticities["level"] == level][["unit", "feature", "elasticity"]].copy()
        e["fold"] = i
        frames.append(e)
    if not frames:
        return pd.DataFrame(columns=["unit", "feature", "mean", "sd", "cv", "min", "max", "folds"])
    long = pd.concat(frames, ignore_index=True)
    g = long.groupby(["unit", "feature"], sort=False)["elasticity"]
    out = pd.DataFrame({"mean": g.mean(), "sd": g.std(ddof=1), "min": g.min(), "max": g.max(), "folds": g.size()})
    out["cv"] = out["sd"] / out["mean"].abs().where(out["mean"].abs() > 1e-12)
    return out.reset_index()[["unit", "feature", "mean", "sd", "cv", "min", "max", "folds"]]


def aggregate(oos: pd.DataFrame, folds_df: pd.DataFrame, stability: pd.DataFrame) -> dict:
    """Pooled OOS accuracy over every test row, and fold R² mean ± sd and range."""
    fit = oos[oos["fit_weight"] > 0]
    pooled = accuracy(fit["actual"], fit["predicted"], fit["sku"])
    r2s = folds_df["r2"].astype(float)
    return {
        "pooled": pooled,
        "fold_r2_mean": float(r2s.mean()),
        "fold_r2_std": float(r2s.std(ddof=1)) if len(r2s) > 1 else 0.0,
        "fold_r2_range": float(r2s.max() - r2s.min()),
        "fold_mape_mean": float(folds_df["mape"].astype(float).mean()),
        "elasticity_cv": {f"{r.feature}": (None if pd.isna(r.cv) else float(r.cv)) for r in stability.itertuples()},
        "folds": int(len(folds_df)),
    }


def acceptance(summary: dict, criteria: AcceptanceCriteria) -> pd.DataFrame:
    """Pass/fail table with the reason for each failure."""
    rows = []

    def check(name: str, value: float | None, op: str, threshold: float, what: str) -> None:
        if value is None or not np.isfinite(value):
            rows.append({"criterion": name, "value": value, "threshold": f"{op} {threshold}", "passed": False, "reason": f"{what} could not be computed"})
            return
        ok = value >= threshold if op == ">=" else value <= threshold
        reason = "" if ok else f"{what} is {value:.3f}, {'below' if op == '>=' else 'above'} the {threshold} limit"
        rows.append({"criterion": name, "value": round(float(value), 4), "threshold": f"{op} {threshold}", "passed": bool(ok), "reason": reason})

    check("overall_r2", summary["pooled"]["r2"], ">=", criteria.min_r2, "pooled out-of-sample R²")
    check("r2_std", summary["fold_r2_std"], "<=", criteria.max_r2_std, "the standard deviation of fold R²")
    check("r2_range", summary["fold_r2_range"], "<=", criteria.max_r2_range, "the range of fold R²")
    for feature in criteria.stability_features:
        key = feature if feature in summary["elasticity_cv"] else f"media_{feature}"
        if key not in summary["elasticity_cv"]:
            continue  # the feature is not in this model
        check(f"elasticity_cv[{key}]", summary["elasticity_cv"][key], "<=", criteria.max_elasticity_cv, f"the fold-to-fold CV of the {key} elasticity")
    return pd.DataFrame(rows)


def ensemble_tables(elasticities: list[pd.DataFrame], rois: list[pd.DataFrame], z: float = 1.96) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Fold-ensemble elasticities and ROI: mean over fold models, interval mean ± z·sd across them.

    The spread across fold models (each trained on a different window) is the uncertainty a marketer sees
    when the data change by a few periods; ``lower``/``upper`` are that interval.
    """
    e = pd.concat([x.assign(member=i) for i, x in enumerate(elasticities)], ignore_index=True)
    g = e.groupby(["level", "unit", "feature"], sort=False)["elasticity"]
    el = pd.DataFrame({"elasticity": g.mean(), "sd": g.std(ddof=1).fillna(0.0), "members": g.size()}).reset_index()
    el["lower"], el["upper"] = el["elasticity"] - z * el["sd"], el["elasticity"] + z * el["sd"]
    cols = ["level", "unit", "feature", "elasticity", "lower", "upper", "sd", "members"]
    if "n_rows" in e:  # rows each member's elasticity averages over (the same rows for every member)
        el["n_rows"] = e.groupby(["level", "unit", "feature"], sort=False)["n_rows"].first().to_numpy()
        cols.append("n_rows")
    el = el[cols]
    r = pd.concat([x.assign(member=i) for i, x in enumerate(rois)], ignore_index=True)
    cols = ["contribution_inr", *(["share_of_gmv"] if "share_of_gmv" in r else []), "roi", "marginal_roi", "adstock_decay"]
    gr = r.groupby("channel", sort=False)
    roi = gr[["spend_inr", *cols]].mean()
    for c in ("roi", "marginal_roi"):
        sd = gr[c].std(ddof=1).fillna(0.0)
        roi[f"{c}_lower"], roi[f"{c}_upper"] = roi[c] - z * sd, roi[c] + z * sd
    return el, roi.reset_index()
