"""The pictures of a report (§8), drawn from a :class:`~nam_mmm.reporting.run_data.RunData` (the run folder only).

Every function draws one figure into ``out_dir`` and returns its path, or None when the run folder lacks what the
picture needs (a walk-forward chart of a holdout run, a band without the bootstrap). One style for all
(:func:`nam_mmm.reporting.style.report_style`): the Okabe–Ito palette, money in ₹ crore / lakh, effects in %.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pandas as pd

from nam_mmm.reporting.run_data import RunData
from nam_mmm.reporting.text import elasticity_text
from nam_mmm.reporting.style import ACTUAL, GREY, LIGHT, colour, money_scale, report_style

PRETTY = {
    "price": "own price (₹)",
    "cross_price": "competitor price (₹)",
    "discount": "discount (share of MRP)",
    "promo_days": "promotion days",
    "nps": "NPS (points)",
    "month_sin": "season (sin of month)",
    "month_cos": "season (cos of month)",
    "time_index": "trend (period number)",
}


SHORT = {"month_sin": "season (sin)", "month_cos": "season (cos)", "price": "own price", "cross_price": "competitor price", "promo_days": "promotion days", "nps": "NPS", "time_index": "trend", "discount": "discount"}


def short(feature: str) -> str:
    """A feature's name for ticks and titles (season terms keep sin / cos apart)."""
    if feature in SHORT:
        return SHORT[feature]
    if feature.startswith("media_"):
        return feature[6:]
    return feature.replace("_", " ")


def label(feature: str) -> str:
    if feature in PRETTY:
        return PRETTY[feature]
    if feature.startswith("media_"):
        return f"{feature[6:]} (adstocked spend)"
    return feature.replace("_", " ")


def _pct_effect(effect_log: np.ndarray) -> np.ndarray:
    """Effect on log GMV → % change of GMV."""
    return (np.exp(np.asarray(effect_log, float)) - 1.0) * 100.0


def _attribution_rows(run: RunData) -> pd.DataFrame | None:
    """The decomposition rows ``roi.csv`` is computed on (walk-forward: every row; holdout: the training rows)."""
    d = run.decomposition
    if d is None:
        return None
    if run.mode == "holdout" and "split" in d:
        return d[d["split"] == "train"]
    return d


def _mark_unscored(ax, d: pd.DataFrame) -> None:
    """Shade the periods none of whose rows enter the fit (an outage dropped by cleaning, a missing month)."""
    if "fit_weight" not in d:
        return
    scored = d.groupby("period")["fit_weight"].max()
    periods = scored.index.sort_values()
    step = (periods[1:] - periods[:-1]).min() if len(periods) > 1 else pd.Timedelta(days=7)
    first = True
    for p in scored.index[scored <= 0]:
        ax.axvspan(p - step / 2, p + step / 2, facecolor="white", edgecolor=GREY, hatch="///", alpha=0.7, zorder=3, linewidth=0, label="period left out of the fit (no actual)" if first else None)
        first = False


def _dates(ax) -> None:
    """Readable date ticks on the x axis (a few, concise: 2023, Feb, Mar …)."""
    import matplotlib.dates as mdates

    locator = mdates.AutoDateLocator(minticks=3, maxticks=8)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))


def _few_ticks(axis, n: int = 5) -> None:
    """At most ``n`` ticks with thousands separators (long rupee labels must not collide)."""
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    axis.set_major_locator(MaxNLocator(n))
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.6g}"))


def _plain_log_ticks(axis) -> None:
    """Log-scale ticks as plain numbers (12, 20, 50), not 10^1 notation."""
    from matplotlib.ticker import FuncFormatter, LogLocator

    fmt = FuncFormatter(lambda v, _: f"{v:,.3g}")
    axis.set_major_formatter(fmt)
    axis.set_minor_locator(LogLocator(subs=(2.0, 5.0)))
    axis.set_minor_formatter(fmt)


def _save(fig, out_dir: Path, name: str) -> Path:
    import matplotlib.pyplot as plt

    path = out_dir / f"{name}.png"
    fig.savefig(path)
    plt.close(fig)
    return path


def _x_axis_label(feature: str, xs: np.ndarray) -> tuple[float, str]:
    if feature.startswith("media_"):
        div, unit = money_scale(xs)
        return div, f"{feature[6:]}: adstocked spend per period ({unit})"
    if feature in ("price", "cross_price"):
        div, unit = money_scale(xs)
        return div, f"{label(feature).split(' (')[0]} ({unit})"
    return 1.0, label(feature)


def elasticity_at_median(curve: pd.DataFrame, median_x: float) -> float | None:
    """d log GMV / d log x of a curve (``x``, ``effect_log_gmv``) at ``median_x`` (None for x <= 0)."""
    c = curve[curve["x"] > 0].sort_values("x")  # a media curve starts at zero spend: no log there
    x, y = c["x"].to_numpy(float), c["effect_log_gmv"].to_numpy(float)
    if median_x is None or not np.isfinite(median_x) or median_x <= 0 or len(x) < 3:
        return None
    lx = np.log(x)
    slope = np.gradient(y, lx)
    return float(np.interp(np.log(median_x), lx, slope))


def _observed_window(obs: pd.DataFrame | None, xs: np.ndarray, widen: float = 0.1) -> tuple[float, float]:
    """The x range a curve is drawn over: the observed values widened by ``widen`` of their range (the model's
    grid reaches further, where its curve is an extrapolation nobody should read)."""
    if obs is None or obs.empty:
        return float(np.min(xs)), float(np.max(xs))
    lo, hi = float(obs["x"].min()), float(obs["x"].max())
    pad = widen * (hi - lo) if hi > lo else 0.05 * max(abs(hi), 1.0)
    return lo - pad, hi + pad


def _curve_band(ax, run: RunData, feature: str, brand: str, cb: pd.DataFrame, window: tuple[float, float], div: float, col) -> tuple[list, list]:
    """Shade one brand's band under its curve ``cb``: the refits' band where the bootstrap ran, else the fold
    models' range (walk-forward); returns the refits' band's lowest and highest % effect (none for folds)."""
    lo_x, hi_x = window
    ymin, ymax = [], []
    if run.curve_band is not None:
        band = run.curve_band[(run.curve_band["feature"] == feature) & (run.curve_band["brand"] == brand)].sort_values("x")
        ok = band["lower"].notna() & band["upper"].notna() & (band["x"] >= lo_x) & (band["x"] <= hi_x)
        ax.fill_between(band["x"][ok] / div, _pct_effect(band["lower"][ok]), _pct_effect(band["upper"][ok]), color=col, alpha=0.18, linewidth=0)
        ymin.append(_pct_effect(band["lower"][ok]).min() if ok.any() else np.nan)
        ymax.append(_pct_effect(band["upper"][ok]).max() if ok.any() else np.nan)
    elif run.fold_curves:
        stack = []
        for fc in run.fold_curves.values():
            f = fc[(fc["feature"] == feature) & (fc["brand"] == brand)].sort_values("x")
            if len(f) >= 2:
                stack.append(np.interp(cb["x"], f["x"], f["effect_log_gmv"], left=np.nan, right=np.nan))
        if stack:
            with np.errstate(all="ignore"):
                lo, hi = np.nanmin(stack, axis=0), np.nanmax(stack, axis=0)
            ok = np.isfinite(lo) & np.isfinite(hi)
            ax.fill_between(cb["x"][ok] / div, _pct_effect(lo[ok]), _pct_effect(hi[ok]), color=col, alpha=0.18, linewidth=0)
    return ymin, ymax


def _brand_curve(ax, run: RunData, feature: str, c: pd.DataFrame, obs_all: pd.DataFrame | None, b: int, brand: str) -> tuple[list, list, float | None] | None:
    """One brand's curve of ``feature`` over its observed window, with its band, rug and median dot; returns
    the lowest and highest % effects drawn and the elasticity at the median (None without observed values), or
    None when the window holds no grid point."""
    obs = obs_all[obs_all["brand"] == brand] if obs_all is not None else None
    lo_x, hi_x = _observed_window(obs, c["x"].to_numpy())
    if feature.startswith("media_"):
        lo_x = min(lo_x, 0.0)  # a channel's response is read from zero spend
    cb = c[(c["brand"] == brand) & (c["x"] >= lo_x) & (c["x"] <= hi_x)].sort_values("x")
    if cb.empty:
        return None
    div, xlabel = _x_axis_label(feature, c["x"].to_numpy())
    col = colour(b)
    ymin, ymax = _curve_band(ax, run, feature, brand, cb, (lo_x, hi_x), div, col)
    y = _pct_effect(cb["effect_log_gmv"])
    ax.plot(cb["x"] / div, y, color=col, linewidth=1.6, label=brand)
    ymin.append(y.min())
    ymax.append(y.max())
    median = None
    if obs is not None and len(obs):
        ax.plot(obs["x"] / div, np.zeros(len(obs)), "|", color=col, markersize=7, alpha=0.6, transform=ax.get_xaxis_transform(), clip_on=False)
        med = float(np.median(obs["x"]))
        ax.plot([med / div], [float(np.interp(med, cb["x"], y))], "o", color=col, markersize=5, markeredgecolor="white", zorder=4)
        median = elasticity_at_median(c[c["brand"] == brand], med)
    ax.set_xlabel(xlabel)
    return ymin, ymax, median


def _curve_panel(ax, run: RunData, feature: str, brands: list[str], el_all: pd.DataFrame) -> None:
    """One feature's panel: every brand's curve, the elasticity at the median in the title, y range to fit."""
    c = run.curves[run.curves["feature"] == feature]
    obs_all = run.observed_inputs[run.observed_inputs["feature"] == feature] if run.observed_inputs is not None else None
    medians = []
    ymin, ymax = [], []
    for b, brand in enumerate(brands):
        drawn = _brand_curve(ax, run, feature, c, obs_all, b, brand)
        if drawn is None:
            continue
        ymin += drawn[0]
        ymax += drawn[1]
        medians.append(drawn[2])
    _few_ticks(ax.xaxis)
    title = short(feature)
    medians = [m for m in medians if m is not None]
    if feature in el_all.index and medians:
        r = el_all.loc[feature]
        title += f"\nelasticity at median {elasticity_text(np.mean(medians))}\n(mean {elasticity_text(r['elasticity'])}, {elasticity_text(r['lower'])} to {elasticity_text(r['upper'])})"  # three lines: no overlap with the next panel's title
    ax.set_title(title, fontsize=8.5)
    ax.set_ylabel("GMV vs anchor (%)")
    ax.axhline(0, color=LIGHT, linewidth=0.8, zorder=0)
    if ymin and ymax:
        lo_y, hi_y = np.nanmin(ymin), np.nanmax(ymax)
        pad = 0.08 * (hi_y - lo_y) if hi_y > lo_y else 1.0
        ax.set_ylim(lo_y - pad, hi_y + pad)


def response_curves(run: RunData, out_dir: Path) -> Path | None:
    """Every feature's response, one panel per feature: each brand's curve (% change of GMV against the curve's
    anchor) over the observed range, the refits' band where the bootstrap ran (else the fold models' range
    under walk-forward), a rug of the observed values and each brand's median observed value (dot) with the
    elasticity there."""
    curves = run.curves
    features = list(dict.fromkeys(curves["feature"]))
    if not features:
        return None
    brands = list(dict.fromkeys(curves["brand"]))
    ncol = 3 if len(features) > 4 else 2
    nrow = math.ceil(len(features) / ncol)
    band_kind = "refits' 90 % band" if run.curve_band is not None else ("fold models' range" if run.fold_curves else None)
    el_all = run.elasticities[run.elasticities["level"] == "all"].set_index("feature")
    with report_style() as plt:
        fig, axes = plt.subplots(nrow, ncol, figsize=(4.1 * ncol, 3.0 * nrow + 0.9), squeeze=False)
        for i, feature in enumerate(features):
            _curve_panel(axes[i // ncol][i % ncol], run, feature, brands, el_all)
        for j in range(len(features), nrow * ncol):
            axes[j // ncol][j % ncol].axis("off")
        handles, labels = axes[0][0].get_legend_handles_labels()
        note = "Lines: each brand's curve over its observed range; ticks: observed values; dots: the brand's median observed value" + (f"; shaded: {band_kind}" if band_kind else "")
        h = fig.get_figheight()
        fig.suptitle("Response curves: % change of GMV as each input moves, other inputs held", fontsize=11, fontweight="bold", y=1 - 0.08 / h)
        fig.legend(handles, labels, loc="upper center", ncol=min(len(brands), 6), bbox_to_anchor=(0.5, 1 - 0.38 / h))
        fig.text(0.5, 0.005, note, ha="center", fontsize=7.5, color=GREY)
        fig.tight_layout(rect=(0, 0.02, 1, 1 - 0.75 / h))
        return _save(fig, out_dir, "response_curves")


def brand_vs_sku(run: RunData, out_dir: Path, feature: str | None = None) -> Path | None:
    """One feature's curve per brand (thick) next to its SKUs' own curves (thin), each at its own price level."""
    if run.curves_sku is None:
        return None
    features = list(dict.fromkeys(run.curves["feature"]))
    if feature is None or feature not in features:
        feature = "price" if "price" in features else next((f for f in features if f.startswith("media_")), features[0] if features else None)
    if feature is None:
        return None
    c = run.curves[run.curves["feature"] == feature]
    s = run.curves_sku[run.curves_sku["feature"] == feature]
    brands = list(dict.fromkeys(c["brand"]))
    ncol = 2 if len(brands) == 4 else min(len(brands), 3)
    nrow = math.ceil(len(brands) / ncol)
    div, xlabel = _x_axis_label(feature, np.concatenate([c["x"].to_numpy(), s["x"].to_numpy()]))
    with report_style() as plt:
        fig, axes = plt.subplots(nrow, ncol, figsize=(3.8 * ncol, 2.9 * nrow + 0.5), squeeze=False, sharey=True)
        for b, brand in enumerate(brands):
            ax = axes[b // ncol][b % ncol]
            col = colour(b)
            obs = run.observed_inputs[(run.observed_inputs["feature"] == feature) & (run.observed_inputs["brand"] == brand)] if run.observed_inputs is not None else None
            zlo, zhi = (float(obs["z"].min()), float(obs["z"].max())) if obs is not None and len(obs) else (-np.inf, np.inf)
            pad = 0.1 * (zhi - zlo) if np.isfinite(zhi - zlo) else 0.0
            cb = c[(c["brand"] == brand) & (c["z"] >= zlo - pad) & (c["z"] <= zhi + pad)].sort_values("x")
            ax.plot(cb["x"] / div, _pct_effect(cb["effect_log_gmv"]), color=col, linewidth=4.0, alpha=0.45, label="brand curve")
            for sku, g in s[s["brand"] == brand].groupby("sku"):
                g = g[(g["z"] >= zlo - pad) & (g["z"] <= zhi + pad)] if "z" in g else g
                g = g.sort_values("x")
                ax.plot(g["x"] / div, _pct_effect(g["effect_log_gmv"]), color=col, linewidth=1.0, linestyle="--")
            ax.set_title(brand)
            ax.set_xlabel(xlabel)
            _few_ticks(ax.xaxis)
            if b % ncol == 0:
                ax.set_ylabel("GMV vs anchor (%)")
            ax.axhline(0, color=LIGHT, linewidth=0.8, zorder=0)
        for j in range(len(brands), nrow * ncol):
            axes[j // ncol][j % ncol].axis("off")
        fig.suptitle(f"{short(feature)}: brand curve (thick, at the brand's average level) and its SKUs' curves (dashed, each at its own level)", fontsize=11, fontweight="bold")
        fig.tight_layout()
        return _save(fig, out_dir, "brand_vs_sku")


def waterfall(run: RunData, out_dir: Path) -> Path | None:
    """Predicted GMV built up from the base (no media) by each channel's contribution and the channels' joint
    effect, on the rows ``roi.csv`` covers."""
    d = _attribution_rows(run)
    if d is None or not len(run.channels):
        return None
    steps = [("base (no media)", float(d["base_inr"].sum()))]
    steps += [(ch, float(d[f"media_{ch}_inr"].sum())) for ch in run.channels]
    inter = float(d["interaction_inr"].sum())
    if abs(inter) > 1e-9 * abs(steps[0][1]):
        steps.append(("channels jointly", inter))
    total = float(d["predicted"].sum())
    div, unit = money_scale([total])
    with report_style() as plt:
        fig, ax = plt.subplots(figsize=(max(6.0, 0.8 * len(steps) + 2.5), 3.9))
        running, tops = 0.0, []
        for i, (name, v) in enumerate(steps):
            bottom = running if i else 0.0
            col = GREY if i == 0 else (colour(0) if v >= 0 else colour(3))
            ax.bar(i, v / div, bottom=bottom / div, color=col, width=0.7)
            running = bottom + v
            top = max(bottom, bottom + v) if i else v
            tops.append(top)
            ax.text(i, top / div, f"{v / div:,.2f}" if i == 0 else f"{v / div:+,.2f}", ha="center", va="bottom", fontsize=7)
        ax.bar(len(steps), total / div, color=ACTUAL, width=0.7)
        ax.text(len(steps), total / div, f"{total / div:,.2f}", ha="center", va="bottom", fontsize=7)
        names = [n for n, _ in steps] + ["predicted GMV"]
        ax.set_xticks(range(len(names)), names, rotation=30, ha="right")
        ax.set_ylabel(f"GMV over the periods ({unit})")
        media = total - steps[0][1]
        rows = "every period" if run.mode == "walk_forward" else "the training periods"
        ax.set_title(f"Where predicted GMV comes from ({rows}): media add {media / total:.1%}")
        low = min(steps[0][1], min(tops[1:], default=steps[0][1]), total)
        high = max(max(tops), total)
        bottom_y = max(0.0, low - 1.5 * (high - low)) if high > low else 0.0
        ax.set_ylim(bottom_y / div, (high + 0.08 * (high - bottom_y)) / div)
        if bottom_y > 0:
            ax.set_ylabel(f"GMV over the periods ({unit})\naxis starts at {bottom_y / div:,.0f}, not 0")
        fig.tight_layout()
        return _save(fig, out_dir, "contribution_waterfall")


def decomposition_over_time(run: RunData, out_dir: Path) -> Path | None:
    """Per period (summed over SKUs): the base and each channel's contribution stacked, with actual GMV."""
    d = run.decomposition
    if d is None:
        return None
    per = d.groupby("period", sort=True).sum(numeric_only=True)
    div, unit = money_scale(per["predicted"])
    series = [("base (no media)", per["base_inr"])] + [(ch, per[f"media_{ch}_inr"].clip(lower=0)) for ch in run.channels]
    with report_style() as plt:
        fig, ax = plt.subplots(figsize=(8.5, 3.8))
        cols = [LIGHT] + [colour(i) for i in range(len(run.channels))]
        ax.stackplot(per.index, *[s.to_numpy() / div for _, s in series], labels=[n for n, _ in series], colors=cols, alpha=0.9)
        actual = (d[d["fit_weight"] > 0].groupby("period")["actual"].sum() if "fit_weight" in d else per["actual"]).reindex(per.index)
        ax.plot(actual.index, actual / div, color=ACTUAL, linewidth=1.2, label="actual GMV")
        ax.set_title("Predicted GMV per period: base and each channel's contribution")
        lo = float((per["base_inr"] / div).min())
        ax.set_ylim(bottom=max(0.0, lo * 0.8))
        _mark_unscored(ax, d)
        _dates(ax)
        if run.mode == "holdout" and "split" in d:
            test = d[d["split"] == "test"]["period"]
            if len(test):
                ax.axvspan(test.min(), test.max(), color=colour(5), alpha=0.12, zorder=0, label="test periods")
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0))
        ax.set_ylabel(f"GMV per period ({unit})\naxis cut above 0 to show the channels")
        fig.tight_layout()
        return _save(fig, out_dir, "decomposition_over_time")


def actual_vs_predicted(run: RunData, out_dir: Path) -> Path | None:
    """Left: per period, actual GMV, the model's prediction on every period, the out-of-sample predictions, and
    the refits' band (estimation uncertainty of the prediction, when the bootstrap ran). Right: actual against
    out-of-sample predicted per row (log axes)."""
    oos = run.oos[run.oos["fit_weight"] > 0]
    if oos.empty:
        return None
    oos_t = oos.groupby("date").agg(actual=("actual", "sum"), predicted=("predicted", "sum"))
    with report_style() as plt:
        fig, (ax, ax2) = plt.subplots(1, 2, figsize=(10.5, 3.8), gridspec_kw={"width_ratios": [2.2, 1]})
        values = [oos_t["actual"]]
        if run.decomposition is not None:
            d = run.decomposition
            scored = d[d["fit_weight"] > 0] if "fit_weight" in d else d
            full = scored.groupby("period").agg(actual=("actual", "sum"), predicted=("predicted", "sum")).reindex(sorted(d["period"].unique()))
            values.append(full["actual"])
        else:
            full = None
        div, unit = money_scale(pd.concat(values))
        if run.prediction_band is not None:
            band = run.prediction_band
            if full is not None:  # the periods that are scored (an outage period left out of the fit has no actual): a gap
                band = band.set_index("period").reindex(full.index)
                band.loc[full["actual"].isna(), ["lower", "upper"]] = np.nan
                band = band.reset_index(names="period")
            ax.fill_between(band["period"], band["lower"] / div, band["upper"] / div, color=colour(0), alpha=0.18, linewidth=0, label="90 % band of the refits' predictions (estimation uncertainty)")
        if full is not None:
            ax.plot(full.index, full["actual"] / div, color=ACTUAL, linewidth=1.1, marker="o", markersize=2.5, label="actual")
            ax.plot(full.index, full["predicted"] / div, color=colour(0), linewidth=1.3, marker="o", markersize=2, label="model, every scored period")
            _mark_unscored(ax, run.decomposition)
        else:
            ax.plot(oos_t.index, oos_t["actual"] / div, color=ACTUAL, linewidth=1.1, marker="o", markersize=2.5, label="actual")
        ax.plot(oos_t.index, oos_t["predicted"] / div, color=colour(3), linestyle="none", marker="D", markersize=3.5, label="out-of-sample prediction")
        ax.set_ylabel(f"GMV per period ({unit})")
        ax.set_title("Actual and predicted GMV (all SKUs)")
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=2)
        _dates(ax)
        a, p = oos["actual"].to_numpy(float), oos["predicted"].to_numpy(float)
        ok = (a > 0) & (p > 0)
        rdiv, runit = money_scale(a[ok])
        ax2.scatter(a[ok] / rdiv, p[ok] / rdiv, s=10, alpha=0.6, color=colour(0), linewidths=0)
        lim = [min(a[ok].min(), p[ok].min()) / rdiv, max(a[ok].max(), p[ok].max()) / rdiv]
        ax2.plot(lim, lim, color=GREY, linewidth=1, linestyle="--")
        ax2.set_xscale("log")
        ax2.set_yscale("log")
        _plain_log_ticks(ax2.xaxis)
        _plain_log_ticks(ax2.yaxis)
        ax2.set_xlabel(f"actual per SKU and period ({runit})")
        ax2.set_ylabel(f"predicted ({runit})")
        ax2.set_title("Out-of-sample rows")
        fig.tight_layout()
        return _save(fig, out_dir, "actual_vs_predicted")


def _test_titles(diag: pd.DataFrame | None):
    """``title(text, test_name, key)``: ``text`` with the out-of-sample test ``key`` of ``diagnostics.csv``
    appended (its p-value, else its statistic), or ``text`` alone when the test is absent or skipped."""
    result = {}
    if diag is not None:
        for t in diag[diag["sample"] == "out_of_sample"].itertuples():
            result[t.test.split("_lag")[0]] = t

    def tag(key: str) -> str:
        t = result.get(key)
        if t is None or t.verdict == "skipped":
            return ""
        return f" (p = {t.p_value:.2g})" if pd.notna(t.p_value) else f" ({t.statistic:.2f})"

    def title(text: str, name: str, key: str) -> str:
        return text + (f": {name}{tag(key)}" if tag(key) else "")

    return title


def _residuals_over_time(ax, r: pd.DataFrame, per: pd.Series, title: str) -> None:
    ax.scatter(r["period"], r["resid"] * 100, s=6, alpha=0.35, color=GREY, linewidths=0, label="rows")
    ax.plot(per.index, per * 100, color=colour(0), linewidth=1.3, marker="o", markersize=2.5, label="period mean")
    ax.axhline(0, color=ACTUAL, linewidth=0.8)
    ax.set_ylabel("log residual × 100 (≈ % error)")
    ax.set_title(title)
    ax.legend(loc="best")
    _dates(ax)


def _residual_distribution(ax, r: pd.DataFrame, title: str) -> None:
    x = r["resid"].to_numpy() * 100
    ax.hist(x, bins=min(30, max(8, len(x) // 8)), density=True, color=colour(0), alpha=0.6)
    grid = np.linspace(x.min(), x.max(), 200)
    sd = x.std() or 1.0
    ax.plot(grid, np.exp(-0.5 * ((grid - x.mean()) / sd) ** 2) / (sd * np.sqrt(2 * np.pi)), color=colour(3), linewidth=1.3, label="normal")
    ax.set_xlabel("log residual × 100 (≈ % error)")
    ax.set_ylabel("density")
    ax.set_title(title)
    ax.legend(loc="best")


def _residuals_vs_prediction(ax, r: pd.DataFrame, title: str) -> None:
    pdiv, punit = money_scale(r["predicted"])
    ax.scatter(r["predicted"] / pdiv, r["resid"] * 100, s=8, alpha=0.5, color=colour(0), linewidths=0)
    ax.set_xscale("log")
    _plain_log_ticks(ax.xaxis)
    ax.axhline(0, color=ACTUAL, linewidth=0.8)
    ax.set_xlabel(f"predicted GMV per row ({punit}, log scale)")
    ax.set_ylabel("log residual × 100 (≈ % error)")
    ax.set_title(title)


def _period_autocorrelation(ax, per: pd.Series, title: str) -> None:
    s = per.to_numpy() - per.mean()
    lags = int(min(10, max(1, len(s) - 2)))
    denom = (s**2).sum() or 1.0
    acf = [float((s[k:] * s[: len(s) - k]).sum() / denom) for k in range(1, lags + 1)]
    ax.bar(range(1, lags + 1), acf, color=colour(0))
    bound = 1.96 / np.sqrt(len(s))
    ax.axhspan(-bound, bound, color=LIGHT, alpha=0.6, zorder=0, label="±1.96/√n")
    ax.set_xlabel("lag (periods)")
    ax.set_ylabel("autocorrelation")
    ax.set_title(title)
    ax.legend(loc="best")


def residual_plots(run: RunData, out_dir: Path) -> Path | None:
    """Out-of-sample log residuals: over time, their distribution against a normal, against the prediction,
    and the autocorrelation of the period means; the tests of ``diagnostics.csv`` in the titles."""
    from nam_mmm.evaluation.diagnostics import log_residuals

    r = log_residuals(run.oos)
    if len(r) < 3:
        return None
    title = _test_titles(run.diagnostics)
    with report_style() as plt:
        fig, axes = plt.subplots(2, 2, figsize=(9.0, 6.0))
        per = r.groupby("period")["resid"].mean()
        _residuals_over_time(axes[0][0], r, per, title("Residuals over time", "Durbin–Watson", "durbin_watson"))
        _residual_distribution(axes[0][1], r, title("Distribution", "Shapiro–Wilk", "shapiro_wilk"))
        _residuals_vs_prediction(axes[1][0], r, title("Against the prediction", "Breusch–Pagan", "breusch_pagan"))
        _period_autocorrelation(axes[1][1], per, title("Autocorrelation of period means", "Ljung–Box", "ljung_box"))
        fig.suptitle("Out-of-sample residual diagnostics (log actual − log predicted)", fontsize=11, fontweight="bold")
        fig.tight_layout()
        return _save(fig, out_dir, "residual_diagnostics")


def roi_bars(run: RunData, out_dir: Path) -> Path | None:
    """ROI and marginal ROI per channel with their intervals; the break-even line at ₹1 per ₹1."""
    roi = run.roi
    if roi.empty:
        return None
    kind = str(roi["interval"].iloc[0]) if "interval" in roi else "none"
    order = roi.sort_values("roi", kind="stable")
    y = np.arange(len(order))
    with report_style() as plt:
        fig, axes = plt.subplots(1, 2, figsize=(9.0, max(2.6, 0.45 * len(order) + 1.4)), sharey=True)
        for ax, col, title in ((axes[0], "roi", "ROI: GMV per rupee spent"), (axes[1], "marginal_roi", "Marginal ROI: GMV of the next rupee")):
            v = order[col].to_numpy(float)
            lo, hi = order[f"{col}_lower"].to_numpy(float), order[f"{col}_upper"].to_numpy(float)
            has = np.isfinite(lo) & np.isfinite(hi)
            ax.barh(y, v, color=[colour(i) for i in range(len(order))], alpha=0.85, height=0.6)
            if has.any():
                err = np.vstack([np.where(has, v - lo, 0), np.where(has, hi - v, 0)])
                ax.errorbar(v, y, xerr=np.clip(err, 0, None), fmt="none", ecolor=ACTUAL, elinewidth=1, capsize=3)
            ax.axvline(1.0, color=GREY, linestyle="--", linewidth=1)
            ax.set_title(title)
            ax.set_xlabel("₹ GMV per ₹ spent")
            right = np.where(has, np.maximum(hi, v), v)
            for yi, vi, xi in zip(y, v, right, strict=True):
                ax.text(xi, yi, f"  {vi:.2f}", fontsize=7, ha="left", va="center")
            ax.set_xlim(right=max(float(np.nanmax(right)) * 1.15, 1.1))
        axes[0].set_yticks(y, order["channel"])
        what = {
            "none": "no interval",
            "row_spread_10_90": "no interval",
            "fold_mean_pm_1.96sd": "bars: fold mean ± 1.96 sd",
        }.get(kind, "bars: 90 % block-bootstrap interval" + (" with the fold spread" if "folds" in kind else ""))
        fig.suptitle(f"Return on media spend per channel ({what}; dashed: break-even ₹1 per ₹1)", fontsize=10, fontweight="bold")
        fig.tight_layout()
        return _save(fig, out_dir, "roi")


def parse_comparison(path: Path) -> pd.DataFrame | None:
    """The first markdown table of ``experiments/bench/models_<data>.md`` (``scripts/compare_models.py``):
    ``model`` and the metric columns; cells like ``> 1e6`` become NaN (off the chart)."""
    if path is None or not Path(path).is_file():
        return None
    lines = Path(path).read_text().splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("| model")), None)
    if start is None:
        return None
    rows = []
    header = [h.strip() for h in lines[start].strip("|").split("|")]
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([c.strip() for c in line.strip("|").split("|")])
    frame = pd.DataFrame(rows, columns=header)
    for c in header[1:]:
        frame[c] = pd.to_numeric(frame[c].map(lambda s: re.sub(r"[*`]", "", s)), errors="coerce")
    frame["model"] = frame["model"].map(lambda s: re.sub(r"[*`]", "", s))
    return frame


def model_comparison(table: pd.DataFrame | None, out_dir: Path, source: str = "") -> Path | None:
    """MAPE and skill versus the naive mean of HR-NAM and the baselines on the same folds (HR-NAM highlighted)."""
    if table is None or table.empty or "mape" not in table:
        return None
    t = table.sort_values("mape", kind="stable", na_position="last")
    with report_style() as plt:
        fig, axes = plt.subplots(1, 2, figsize=(9.0, max(2.6, 0.42 * len(t) + 1.3)), sharey=True)
        y = np.arange(len(t))
        cols = [colour(3) if m == "hr_nam" else colour(0) for m in t["model"]]
        for ax, col, title, xl in ((axes[0], "mape", "Out-of-sample MAPE (lower is better)", "MAPE (%)"), (axes[1], "skill_vs_naive", "Skill vs the naive mean (higher is better)", "1 − SSE / SSE(naive)")):
            if col not in t:
                ax.axis("off")
                continue
            v = t[col].to_numpy(float)
            shown = np.where(np.isfinite(v), v, 0.0)
            ax.barh(y, shown, color=cols, height=0.6)
            for yi, vi in zip(y, v, strict=True):
                ax.text(0 if not np.isfinite(vi) else vi, yi, " off the chart" if not np.isfinite(vi) else f" {vi:.2f}", va="center", fontsize=7)
            ax.set_title(title)
            ax.set_xlabel(xl)
            if col == "skill_vs_naive":
                ax.axvline(0, color=GREY, linewidth=0.8)
        axes[0].set_yticks(y, t["model"])
        axes[0].invert_yaxis()
        fig.suptitle("HR-NAM (orange) next to the baselines on the same folds" + (f" — {source}" if source else ""), fontsize=10, fontweight="bold")
        fig.tight_layout()
        return _save(fig, out_dir, "model_comparison")


def elasticity_stability_plot(run: RunData, out_dir: Path) -> Path | None:
    """Walk-forward: each overall elasticity of every fold model (dots) and their mean (bar), per feature."""
    if not run.fold_elasticities:
        return None
    frames = [e[e["level"] == "all"].assign(fold=k) for k, e in run.fold_elasticities.items()]
    long = pd.concat(frames, ignore_index=True)
    features = list(dict.fromkeys(long["feature"]))
    with report_style() as plt:
        fig, ax = plt.subplots(figsize=(max(5.5, 0.9 * len(features) + 2), 3.6))
        for i, f in enumerate(features):
            v = long[long["feature"] == f].sort_values("fold")
            ax.scatter(np.full(len(v), i) + np.linspace(-0.2, 0.2, len(v)), v["elasticity"], s=18, c=[colour(k) for k in v["fold"]], zorder=3)
            ax.hlines(v["elasticity"].mean(), i - 0.3, i + 0.3, color=ACTUAL, linewidth=1.5)
        ax.set_xticks(range(len(features)), [short(f) for f in features], rotation=30, ha="right")
        ax.axhline(0, color=GREY, linewidth=0.8)
        ax.set_ylabel("elasticity (d log GMV / d log x)")
        ax.set_title("Elasticity of each fold model on its training rows (dots, earliest to latest window) and their mean (bar)", fontsize=9.5)
        fig.tight_layout()
        return _save(fig, out_dir, "elasticity_stability")


def importance_plot(importance: pd.DataFrame | None, out_dir: Path) -> Path | None:
    """Mean absolute contribution of each feature (how much it moves GMV around its average effect)."""
    if importance is None or importance.empty:
        return None
    t = importance.sort_values("mean_abs_effect_log_gmv", kind="stable")
    with report_style() as plt:
        fig, ax = plt.subplots(figsize=(6.5, max(2.5, 0.32 * len(t) + 1.0)))
        v = t["mean_abs_effect_log_gmv"].to_numpy(float) * 100
        ax.barh(range(len(t)), v, color=[colour(3) if f.startswith("media_") else colour(0) for f in t["feature"]], height=0.6)
        ax.set_yticks(range(len(t)), [short(f) for f in t["feature"]])
        for i, vi in enumerate(v):
            ax.text(vi, i, f" {vi:.1f}", va="center", fontsize=7)
        ax.set_xlabel("mean absolute contribution (% of GMV, log points)")
        ax.set_title("Feature importance: how much each input moves sales (orange: media)")
        fig.tight_layout()
        return _save(fig, out_dir, "feature_importance")


def write_plots(run: RunData, out_dir: Path, comparison: pd.DataFrame | None = None, comparison_source: str = "", feature: str | None = None, importance: pd.DataFrame | None = None) -> dict[str, Path]:
    """Every picture of the report into ``out_dir`` (created); returns ``{name: path}`` of those drawn."""
    out_dir.mkdir(parents=True, exist_ok=True)
    drawn = {
        "response_curves": response_curves(run, out_dir),
        "brand_vs_sku": brand_vs_sku(run, out_dir, feature),
        "contribution_waterfall": waterfall(run, out_dir),
        "decomposition_over_time": decomposition_over_time(run, out_dir),
        "actual_vs_predicted": actual_vs_predicted(run, out_dir),
        "residual_diagnostics": residual_plots(run, out_dir),
        "roi": roi_bars(run, out_dir),
        "model_comparison": model_comparison(comparison, out_dir, comparison_source),
        "elasticity_stability": elasticity_stability_plot(run, out_dir),
        "feature_importance": importance_plot(importance, out_dir),
    }
    return {k: v for k, v in drawn.items() if v is not None}
