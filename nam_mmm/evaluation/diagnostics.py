"""Residual diagnostics (§7.2) and the per-row tables a report draws from: decomposition and observed inputs.

* :func:`residual_diagnostics`: on log residuals (log actual − log predicted) of a set of rows, the Shapiro–Wilk
  test of normality (``scipy.stats.shapiro``; statsmodels has none), and with statsmodels the Durbin–Watson
  statistic and the Ljung–Box test on the period-mean residual series (serial correlation: with national media
  every SKU of a period shares the period's shocks, so the series of period means is the time series) and the
  Breusch–Pagan test of the residuals on the log prediction (heteroskedasticity). Each row says in words what the
  result means for a reader.
* :func:`decomposition_table`: per row (period × SKU), predicted GMV, the base (every channel's spend at zero) and
  each channel's contribution (predicted minus predicted with that channel at zero, as in ``roi.csv``); under
  walk-forward the mean over the fold models, as the attribution tables are.
* :func:`observed_inputs_table`: the observed values of every feature in the coordinates of ``curves.csv`` (per
  brand), for the rug under each response curve.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

DIAGNOSTIC_COLUMNS = ["sample", "test", "statistic", "p_value", "n", "verdict", "reading"]
ALPHA = 0.05  # tests reject at this level
DW_RANGE = (1.5, 2.5)  # Durbin–Watson statistics outside this range: serial correlation worth a look


def log_residuals(rows: pd.DataFrame) -> pd.DataFrame:
    """Scored rows (fit weight > 0, actual and predicted > 0) with ``resid`` = log actual − log predicted and
    ``log_pred``; ``period`` (or ``date``) as the time key."""
    frame = rows.rename(columns={"date": "period"})
    ok = (frame["actual"] > 0) & (frame["predicted"] > 0)
    if "fit_weight" in frame:
        ok &= frame["fit_weight"] > 0
    out = frame.loc[ok, ["period", "sku", "actual", "predicted"]].copy()
    out["resid"] = np.log(out["actual"]) - np.log(out["predicted"])
    out["log_pred"] = np.log(out["predicted"])
    return out.reset_index(drop=True)


def _row(sample: str, test: str, stat: float, p: float | None, n: int, verdict: str, reading: str) -> dict:
    return {"sample": sample, "test": test, "statistic": stat, "p_value": p, "n": n, "verdict": verdict, "reading": reading}


def residual_diagnostics(rows: pd.DataFrame, sample: str, max_lags: int = 10) -> pd.DataFrame:
    """The four tests on one sample's rows (``period``/``date``, ``sku``, ``actual``, ``predicted``, optionally
    ``fit_weight``); a test that cannot run (too few rows or periods) is reported as ``skipped`` with the reason."""
    from scipy.stats import shapiro
    from statsmodels.stats.diagnostic import acorr_ljungbox, het_breuschpagan
    from statsmodels.stats.stattools import durbin_watson

    r = log_residuals(rows)
    out = []
    n = len(r)
    if n >= 3:
        x = r["resid"].to_numpy()
        if n > 5000:  # Shapiro–Wilk's p-value is accurate up to 5,000 points: an evenly spread subsample
            x = np.sort(x)[np.linspace(0, n - 1, 5000).astype(int)]
        stat, p = shapiro(x)
        ok = p >= ALPHA
        out.append(_row(sample, "shapiro_wilk", float(stat), float(p), n, "pass" if ok else "warn",
                        "residuals look normal" if ok else f"residuals are not normal (p = {p:.3g}): heavy tails or outliers; intervals built on normality would mislead"))
    else:
        out.append(_row(sample, "shapiro_wilk", np.nan, None, n, "skipped", f"{n} residuals (< 3)"))
    series = r.groupby("period", sort=True)["resid"].mean()
    t = len(series)
    if t >= 4:
        dw = float(durbin_watson(series.to_numpy()))
        ok = DW_RANGE[0] <= dw <= DW_RANGE[1]
        sku_dw = [durbin_watson(g.sort_values("period")["resid"].to_numpy()) for _, g in r.groupby("sku") if len(g) >= 4]
        sku_text = f"; median over SKUs {np.median(sku_dw):.2f}" if sku_dw else ""
        reading = "no sign of serial correlation" if ok else ("positive serial correlation: errors persist from period to period" if dw < DW_RANGE[0] else "negative serial correlation: errors alternate")
        out.append(_row(sample, "durbin_watson", dw, None, t, "pass" if ok else "warn",
                        f"{reading} (period-mean residuals, {DW_RANGE[0]}–{DW_RANGE[1]} is fine{sku_text})"))
        lags = int(max(1, min(max_lags, t // 5)))
        lb = acorr_ljungbox(series.to_numpy(), lags=[lags], return_df=True)
        stat, p = float(lb["lb_stat"].iloc[0]), float(lb["lb_pvalue"].iloc[0])
        ok = p >= ALPHA
        out.append(_row(sample, f"ljung_box_lag{lags}", stat, p, t, "pass" if ok else "warn",
                        "no autocorrelation left in the period-mean residuals" if ok else f"autocorrelation left up to lag {lags} (p = {p:.3g}): some timing effect (carry-over, season) is missed"))
    else:
        for test in ("durbin_watson", "ljung_box"):
            out.append(_row(sample, test, np.nan, None, t, "skipped", f"{t} periods (< 4)"))
    if n >= 5 and r["log_pred"].std() > 0:
        exog = np.column_stack([np.ones(n), r["log_pred"].to_numpy()])
        lm, p, _, _ = het_breuschpagan(r["resid"].to_numpy(), exog)
        ok = p >= ALPHA
        out.append(_row(sample, "breusch_pagan", float(lm), float(p), n, "pass" if ok else "warn",
                        "error size does not depend on the level of sales" if ok else f"error size changes with the level of sales (p = {p:.3g}): small and large SKUs are fitted with different precision"))
    else:
        out.append(_row(sample, "breusch_pagan", np.nan, None, n, "skipped", f"{n} residuals (< 5) or a constant prediction"))
    return pd.DataFrame(out, columns=DIAGNOSTIC_COLUMNS)


def run_diagnostics(in_sample: pd.DataFrame | None, out_of_sample: pd.DataFrame | None) -> pd.DataFrame:
    """``diagnostics.csv``: the tests on the training rows (``in_sample``) and on the test rows (``out_of_sample``)."""
    parts = []
    if in_sample is not None and len(in_sample):
        parts.append(residual_diagnostics(in_sample, "in_sample"))
    if out_of_sample is not None and len(out_of_sample):
        parts.append(residual_diagnostics(out_of_sample, "out_of_sample"))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=DIAGNOSTIC_COLUMNS)


# ------------------------------------------------------------------------------------------ decomposition
def _member_decomposition(model, dm, split: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(N,) predicted GMV, (N,) base GMV (every channel at zero), (N, C) one-channel-off contributions and
    (N, F) each feature's additive effect on log GMV (the curve's value at the row, anchored as ``curves.csv``)."""
    import torch

    b = dm.splits[split]
    with torch.no_grad():
        out = model(b["x"], b["media"], b["brand"], b["sku"])
        pred = out["log_gmv"].exp()
        effects = (out["contrib"] * model.y_scale).cpu().numpy()
        base = model(b["x"], torch.zeros_like(b["media"]), b["brand"], b["sku"])["log_gmv"].exp()
        contrib = []
        for c in range(b["media"].shape[1]):
            m = b["media"].clone()
            m[:, c, :] = 0.0
            contrib.append(pred - model(b["x"], m, b["brand"], b["sku"])["log_gmv"].exp())
    stacked = torch.stack(contrib, 1) if contrib else torch.zeros((len(pred), 0), dtype=pred.dtype)
    return pred.cpu().numpy(), base.cpu().numpy(), stacked.cpu().numpy(), effects


def decomposition_table(models: list, dm, split_of_rows: bool = True) -> pd.DataFrame:
    """``decomposition.csv``: every row of the panel (period, brand, SKU, its split in ``dm``'s fold), actual and
    predicted GMV, ``base_inr`` (predicted with every channel's spend at zero), ``media_<channel>_inr`` (predicted
    minus predicted with that channel at zero, the per-row terms of ``roi.csv``'s ``contribution_inr``) and
    ``interaction_inr`` = predicted − base − Σ channels (the channels' joint effect beyond their one-at-a-time
    sum, in a model additive in log GMV), and ``effect_<feature>`` each feature's additive effect on log GMV.
    Several ``models`` (the fold ensemble) are averaged, as ``roi.csv`` is."""
    parts = [_member_decomposition(m.eval(), dm, "all") for m in models]
    pred = np.mean([p[0] for p in parts], axis=0)
    base = np.mean([p[1] for p in parts], axis=0)
    contrib = np.mean([p[2] for p in parts], axis=0)
    effects = np.mean([p[3] for p in parts], axis=0)
    rows = dm.rows("all").rename(columns={"gmv": "actual"})
    out = rows[["period", "brand", "sku", "actual"]].copy()
    if split_of_rows:
        split = np.full(len(out), "", dtype=object)
        for name in ("train", "val", "test"):
            split[dm.split_mask(name)[dm.split_mask("all")]] = name
        out.insert(3, "split", split)
    out["fit_weight"] = dm.splits["all"]["weight"].cpu().numpy()
    out["predicted"] = pred
    out["base_inr"] = base
    for c, name in enumerate(dm.channels):
        out[f"media_{name}_inr"] = contrib[:, c]
    out["interaction_inr"] = pred - base - contrib.sum(axis=1)
    names = [s.name if j < models[0].n_scalar else f"media_{s.name}" for j, s in enumerate(models[0].slots)]
    for j, name in enumerate(names):
        out[f"effect_{name}"] = effects[:, j]
    return out


def feature_importance(decomposition: pd.DataFrame) -> pd.DataFrame:
    """Mean absolute contribution of each feature: the mean over scored rows of |effect − its mean| on log GMV
    (anchor-free: a curve's anchor shifts every row's effect alike), with its share of the total. On log GMV,
    0.05 is about a 5 % swing of sales around the feature's average effect."""
    d = decomposition[decomposition["fit_weight"] > 0] if "fit_weight" in decomposition else decomposition
    cols = [c for c in d if c.startswith("effect_")]
    values = {c[len("effect_") :]: float((d[c] - d[c].mean()).abs().mean()) for c in cols}
    out = pd.DataFrame({"feature": list(values), "mean_abs_effect_log_gmv": list(values.values())})
    total = out["mean_abs_effect_log_gmv"].sum()
    out["share"] = out["mean_abs_effect_log_gmv"] / total if total > 0 else np.nan
    return out.sort_values("mean_abs_effect_log_gmv", ascending=False, kind="stable").reset_index(drop=True)


def observed_inputs_table(model, dm, split: str = "all", max_points: int = 200) -> pd.DataFrame:
    """``observed_inputs.csv``: the values each feature took on ``split``'s rows, per brand, in the ``x`` / ``z``
    coordinates of ``curves.csv`` (raw units at the brand's average centre; media: adstocked spend in rupees with
    the model's decay). At most ``max_points`` evenly spaced order statistics per feature and brand (a rug, not a
    data dump); ``rows`` is how many rows the values stand for."""
    import torch

    b = dm.splits[split]
    with torch.no_grad():
        z = model.scale_inputs(b["x"], b["media"], b["sku"], b["brand"])
    n_b = model.n_brands
    sku_brand = model.sku_brand
    counts = torch.bincount(sku_brand, minlength=n_b).clamp_min(1).to(model.center.dtype)
    brand_center = torch.zeros((n_b, model.n_scalar), dtype=model.center.dtype).index_add_(0, sku_brand, model.center) / counts[:, None]
    brands = dm.table.panel.brands
    brand_idx = b["brand"]
    frames = []
    for j, slot in enumerate(model.slots):
        zj = z[:, j]
        if j < model.n_scalar:
            t = zj * model.scale[j] + brand_center[brand_idx, j]
            x = t.exp() if bool(model.log_mask[j]) else t
            name = slot.name
        else:
            x = zj * model.media_scale[j - model.n_scalar]
            name = f"media_{slot.name}"
        frame = pd.DataFrame({"brand": np.asarray(brands)[brand_idx.cpu().numpy()], "x": x.cpu().numpy(), "z": zj.cpu().numpy()})
        for brand, g in frame.groupby("brand", sort=True):
            g = g.sort_values("z", kind="stable")
            keep = np.unique(np.linspace(0, len(g) - 1, min(max_points, len(g))).astype(int))
            sub = g.iloc[keep]
            frames.append(pd.DataFrame({"feature": name, "role": slot.role, "brand": brand, "x": sub["x"].to_numpy(), "z": sub["z"].to_numpy(), "rows": len(g)}))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["feature", "role", "brand", "x", "z", "rows"])


def sku_curves_table(model, dm, points: int = 41) -> pd.DataFrame:
    """``curves_sku.csv``: every feature's combined (brand + SKU) curve per SKU on the grid of ``curves.csv``:
    ``x`` in raw units at the SKU's own centre (price in rupees at the SKU's typical level; media: adstocked spend
    in rupees), ``z`` the model input, ``effect_log_gmv`` as in ``curves.csv``. Next to the brand curve it shows how far SKUs depart."""
    import torch

    from nam_mmm.evaluation.attribution import curve_grid

    with torch.no_grad():
        grid = curve_grid(model, points)
        combined = model.curves(grid)["combined"] * model.y_scale  # (S, G, F)
    skus = dm.table.panel.skus
    brand_of = dm.table.panel.sku_brand
    frames = []
    for j, slot in enumerate(model.slots):
        z = grid[:, j]
        if j < model.n_scalar:
            t = z[None, :] * model.scale[j] + model.center[:, j : j + 1]
            x = t.exp() if bool(model.log_mask[j]) else t
            name = slot.name
        else:
            x = (z * model.media_scale[j - model.n_scalar]).expand(len(skus), -1)
            name = f"media_{slot.name}"
        frames.append(
            pd.DataFrame(
                {
                    "feature": name,
                    "brand": np.repeat([brand_of[s] for s in skus], len(z)),
                    "sku": np.repeat(skus, len(z)),
                    "x": x.reshape(-1).cpu().numpy(),
                    "z": z.repeat(len(skus)).cpu().numpy(),
                    "effect_log_gmv": combined[:, :, j].reshape(-1).cpu().numpy(),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def run_tables(result) -> dict[str, pd.DataFrame]:
    """The report tables of a finished run, from its :class:`~nam_mmm.evaluation.run_result.RunResult`:
    ``decomposition`` (the run's model, or the fold ensemble, on every period), ``observed_inputs`` (for the
    curves of ``curves.csv``: the run's model, or the last fold's) and ``diagnostics`` (in-sample: the training
    rows of the run's model, or of the last fold's; out-of-sample: every test row) and ``curves_sku`` (the model
    of ``curves.csv``, per SKU)."""
    last = result.folds[-1]
    dm = last.datamodule
    models = result.members if result.mode == "walk_forward" else [last.model]
    preds = last.evaluation.predictions
    train = preds[preds["split"] == "train"]
    return {
        "decomposition": decomposition_table(models, dm),
        "observed_inputs": observed_inputs_table(last.model.eval(), dm, "all"),
        "curves_sku": sku_curves_table(last.model.eval(), dm),
        "diagnostics": run_diagnostics(train, result.oos_predictions),
    }
