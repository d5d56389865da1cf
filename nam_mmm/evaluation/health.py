"""Named health checks of a finished run (§7.3), in the manner of Meridian's review checks.

Each check reads the run folder only and gives one row per subject: ``check``, ``subject`` (a channel, a
feature, a brand or ``all``), ``value``, ``threshold``, ``verdict`` (``pass``, ``warn``, ``fail`` or
``skipped``) and ``reason`` (one line a marketer can read). :func:`health_checks` returns them all
(``health.csv``); the thresholds are :class:`HealthConfig` (``health`` in the config).

Checks:

* ``own_price_elasticity``: the overall and each brand's own-price elasticity lies within ``own_price_bounds``;
* ``marketing_share``: media's share of predicted GMV (Σ ``share_of_gmv``) within ``media_share_range``;
* ``diminishing_returns``: per channel, marginal ROI at the observed spend is at most the average ROI
  (a concave response from zero spend has mROI ≤ ROI) and the curve in ``curves.csv`` does not steepen over the
  observed spend;
* ``baseline``: the base (GMV with every channel's spend at zero, ``decomposition.csv``) is positive in every
  period and at least ``min_baseline_share`` of predicted GMV overall;
* ``roi_range`` per channel: ROI within ``roi_range``; ``roi_benchmark`` per channel: ROI within the user's
  benchmark range (a YAML or CSV of ``channel, roi`` or ``channel, roi_low, roi_high``; skipped with a message when
  none is given);
* ``interval_width`` per channel ROI and the overall own- and cross-price elasticity: interval width / |estimate|
  at most ``max_relative_width``;
* ``identifiability``: the evidence of ``identifiability.json`` (condition number, periods per channel, and per
  channel the distinct spend levels and the strongest spend correlation);
* ``elasticity_stability``: per feature of ``elasticity_stability.csv``, the fold-to-fold CV at most ``max_elasticity_cv``
  (skipped under holdout).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np
import pandas as pd

PRICE_FEATURES = ("price", "cross_price")  # elasticities whose interval width is checked (media: through their ROI)
HEALTH_COLUMNS = ["check", "subject", "value", "threshold", "verdict", "reason"]
VERDICTS = ("fail", "warn", "pass", "skipped")


@dataclass
class HealthConfig:
    """Thresholds of the health checks (``health`` in the config)."""

    own_price_bounds: list[float] = field(default_factory=lambda: [-4.0, -0.2])  # plausible own-price elasticity
    media_share_range: list[float] = field(default_factory=lambda: [0.01, 0.40])  # media's share of predicted GMV
    min_baseline_share: float = 0.40  # base GMV (no media) at least this share of predicted GMV overall
    roi_range: list[float] = field(default_factory=lambda: [0.0, 20.0])  # plausible ROI, rupees per rupee
    benchmarks: str | None = None  # YAML/CSV of channel ROI benchmarks (channel, roi | roi_low, roi_high)
    benchmark_factor: float = 2.0  # with a point benchmark: ROI within [roi / factor, roi · factor]
    max_relative_width: float = 1.0  # interval width / |estimate| at most
    max_elasticity_cv: float = 0.30  # fold-to-fold CV of an elasticity at most
    mroi_tolerance: float = 0.05  # mROI / ROI may exceed 1 by this much (numerical slack)

    @classmethod
    def from_dict(cls, d: dict | None) -> HealthConfig:
        """From a config block; unknown keys are an error (a misspelt threshold must not pass silently)."""
        d = dict(d or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"health: unknown setting(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})")
        return cls(**d)


def _row(check: str, subject: str, value, threshold: str, verdict: str, reason: str) -> dict:
    v = None if value is None or (isinstance(value, float) and not np.isfinite(value)) else value
    return {"check": check, "subject": subject, "value": v, "threshold": threshold, "verdict": verdict, "reason": reason}


def _read(run_dir: Path, name: str) -> pd.DataFrame | None:
    path = run_dir / name
    return pd.read_csv(path) if path.is_file() else None


def own_price_check(elasticities: pd.DataFrame, cfg: HealthConfig) -> list[dict]:
    lo, hi = cfg.own_price_bounds
    e = elasticities[(elasticities["feature"] == "price") & elasticities["level"].isin(["all", "brand"])]
    if e.empty:
        return [_row("own_price_elasticity", "all", None, f"in [{lo}, {hi}]", "skipped", "the model has no own-price feature")]
    out = []
    for r in e.itertuples():
        subject = "all" if r.level == "all" else r.unit
        ok = lo <= r.elasticity <= hi
        who = "overall" if r.level == "all" else f"brand {r.unit}"
        if ok:
            reason = f"{who}: a 1 % price rise changes GMV by {r.elasticity:+.2f} %, a plausible response"
        elif r.elasticity > hi:
            reason = f"{who}: elasticity {r.elasticity:+.2f} is weaker than {hi} (or of the wrong sign): price barely moves sales, check price variation and confounding"
        else:
            reason = f"{who}: elasticity {r.elasticity:+.2f} is stronger than {lo}: implausibly price-sensitive"
        out.append(_row("own_price_elasticity", subject, round(float(r.elasticity), 4), f"in [{lo}, {hi}]", "pass" if ok else "fail", reason))
    return out


def marketing_share_check(roi: pd.DataFrame, cfg: HealthConfig) -> list[dict]:
    lo, hi = cfg.media_share_range
    if roi.empty or "share_of_gmv" not in roi:
        return [_row("marketing_share", "all", None, f"in [{lo}, {hi}]", "skipped", "no media channels")]
    share = float(roi["share_of_gmv"].sum())
    ok = lo <= share <= hi
    reason = f"media drive {share:.1%} of predicted GMV" + ("" if ok else (f", below the {lo:.0%} floor: media look ineffective" if share < lo else f", above the {hi:.0%} ceiling: media take credit for base sales"))
    return [_row("marketing_share", "all", round(share, 4), f"in [{lo}, {hi}]", "pass" if ok else "warn", reason)]


def _curve_steepens(curves: pd.DataFrame | None, observed: pd.DataFrame | None, feature: str) -> float | None:
    """Share of the curve's grid steps inside the observed spend range where the slope grows (0 = concave)."""
    if curves is None:
        return None
    c = curves[curves["feature"] == feature]
    if c.empty:
        return None
    shares = []
    for brand, g in c.groupby("brand"):
        g = g.sort_values("x")
        if observed is not None:
            o = observed[(observed["feature"] == feature) & (observed["brand"] == brand)]
            if len(o):
                g = g[(g["x"] >= o["x"].min()) & (g["x"] <= o["x"].max())]
        if len(g) < 4:
            continue
        slope = np.diff(g["effect_log_gmv"].to_numpy()) / np.diff(g["x"].to_numpy())
        scale = np.abs(slope).max() or 1.0
        shares.append(float(np.mean(np.diff(slope) > 1e-6 * scale)))
    return float(np.mean(shares)) if shares else None


def diminishing_returns_check(roi: pd.DataFrame, curves: pd.DataFrame | None, observed: pd.DataFrame | None, cfg: HealthConfig) -> list[dict]:
    out = []
    limit = 1.0 + cfg.mroi_tolerance
    for r in roi.itertuples():
        if not np.isfinite(r.roi) or not np.isfinite(r.marginal_roi) or r.roi <= 0:
            out.append(_row("diminishing_returns", r.channel, None, f"mROI / ROI <= {limit:g}", "skipped", f"{r.channel}: no positive ROI to compare the marginal ROI with"))
            continue
        ratio = float(r.marginal_roi / r.roi)
        steep = _curve_steepens(curves, observed, f"media_{r.channel}")
        steep_text = "" if steep is None else f"; the curve steepens on {steep:.0%} of the observed range"
        ok = ratio <= limit and (steep is None or steep <= 0.05)
        if ok:
            reason = f"{r.channel}: the next rupee returns {r.marginal_roi:.2f}, less than the average {r.roi:.2f}: returns diminish{steep_text}"
        else:
            reason = f"{r.channel}: the next rupee returns {r.marginal_roi:.2f}, more than the average {r.roi:.2f}: no diminishing returns at the observed spend{steep_text}"
        out.append(_row("diminishing_returns", r.channel, round(ratio, 4), f"mROI / ROI <= {limit:g}", "pass" if ok else "warn", reason))
    return out


def baseline_check(decomposition: pd.DataFrame | None, roi: pd.DataFrame, cfg: HealthConfig) -> list[dict]:
    thr = cfg.min_baseline_share
    if decomposition is not None and "base_inr" in decomposition:
        d = decomposition
        per = d.groupby("period")[["base_inr", "predicted"]].sum()
        share = float(per["base_inr"].sum() / per["predicted"].sum())
        worst = float((per["base_inr"] / per["predicted"]).min())
        negative = int((per["base_inr"] <= 0).sum())
        if negative:
            return [_row("baseline", "all", round(share, 4), f"> 0 every period, >= {thr} overall", "fail", f"the base (no media) is zero or negative in {negative} periods: the model is not plausible")]
        ok = share >= thr
        reason = f"without any media, {share:.1%} of predicted GMV remains (lowest period {worst:.1%})" + ("" if ok else f": below {thr:.0%}, the model credits media with sales a brand would make anyway")
        return [_row("baseline", "all", round(share, 4), f"> 0 every period, >= {thr} overall", "pass" if ok else "warn", reason)]
    if roi.empty:
        return [_row("baseline", "all", None, f">= {thr}", "skipped", "no media channels: the whole prediction is base")]
    share = 1.0 - float(roi["share_of_gmv"].sum())  # one-channel-off shares: an approximation without decomposition.csv
    ok = share >= thr
    return [_row("baseline", "all", round(share, 4), f">= {thr} overall", "pass" if ok else "warn", f"1 − media share = {share:.1%} of predicted GMV (no decomposition.csv: per-period base not checked)")]


def load_benchmarks(path: str | Path) -> pd.DataFrame:
    """User ROI benchmarks from YAML (``{channel: roi}`` or ``{channel: [low, high]}`` or a list of records) or
    CSV (``channel`` and ``roi`` or ``roi_low``/``roi_high``) → ``channel, roi_low, roi_high, roi``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"health.benchmarks: {path} does not exist")
    if path.suffix.lower() in (".yaml", ".yml"):
        import yaml

        data = yaml.safe_load(path.read_text()) or {}
        if isinstance(data, dict) and "benchmarks" in data:
            data = data["benchmarks"]
        if isinstance(data, dict):
            recs = []
            for ch, v in data.items():
                if isinstance(v, (list, tuple)):
                    recs.append({"channel": ch, "roi_low": float(v[0]), "roi_high": float(v[1])})
                elif isinstance(v, dict):
                    recs.append({"channel": ch, **{k: float(x) for k, x in v.items()}})
                else:
                    recs.append({"channel": ch, "roi": float(v)})
            frame = pd.DataFrame(recs)
        else:
            frame = pd.DataFrame(data)
    else:
        frame = pd.read_csv(path)
    if "channel" not in frame:
        raise ValueError(f"health.benchmarks: {path} needs a 'channel' column or key")
    for c in ("roi", "roi_low", "roi_high"):
        if c not in frame:
            frame[c] = np.nan
    return frame[["channel", "roi", "roi_low", "roi_high"]]


def roi_checks(roi: pd.DataFrame, cfg: HealthConfig, base_dir: Path | None = None) -> list[dict]:
    lo, hi = cfg.roi_range
    out = []
    for r in roi.itertuples():
        ok = np.isfinite(r.roi) and lo <= r.roi <= hi
        reason = f"{r.channel}: ₹{r.roi:.2f} of GMV per rupee spent" + ("" if ok else f", outside the plausible {lo}–{hi}")
        out.append(_row("roi_range", r.channel, round(float(r.roi), 4), f"in [{lo}, {hi}]", "pass" if ok else "warn", reason))
    if not cfg.benchmarks:
        out.append(_row("roi_benchmark", "all", None, "within the benchmark range", "skipped", "no ROI benchmarks given (health.benchmarks: a YAML or CSV of channel ROIs)"))
        return out
    path = Path(cfg.benchmarks)
    if not path.is_absolute() and base_dir is not None and not path.exists():
        path = base_dir / path
    bench = load_benchmarks(path).set_index("channel")
    f = cfg.benchmark_factor
    for r in roi.itertuples():
        if r.channel not in bench.index:
            out.append(_row("roi_benchmark", r.channel, round(float(r.roi), 4), "within the benchmark range", "skipped", f"{r.channel}: no benchmark in {path.name}"))
            continue
        b = bench.loc[r.channel]
        low = b["roi_low"] if np.isfinite(b["roi_low"]) else b["roi"] / f
        high = b["roi_high"] if np.isfinite(b["roi_high"]) else b["roi"] * f
        ok = bool(low <= r.roi <= high)
        reason = f"{r.channel}: ROI {r.roi:.2f} against the benchmark {low:.2f}–{high:.2f}" + ("" if ok else ": far from what is known for this channel")
        out.append(_row("roi_benchmark", r.channel, round(float(r.roi), 4), f"in [{low:.3g}, {high:.3g}]", "pass" if ok else "warn", reason))
    return out


def _width_row(subject: str, estimate: float, lower: float, upper: float, thr: float, reading: str, warning: str) -> dict:
    """An ``interval_width`` row: the interval's width relative to |estimate| against ``thr`` (``warning``
    appended to ``reading`` when wider)."""
    rel = float((upper - lower) / abs(estimate)) if estimate else float("inf")
    ok = rel <= thr
    return _row("interval_width", subject, round(rel, 4) if np.isfinite(rel) else None, f"<= {thr}", "pass" if ok else "warn", reading + ("" if ok else warning))


def interval_width_checks(elasticities: pd.DataFrame, roi: pd.DataFrame, cfg: HealthConfig) -> list[dict]:
    thr = cfg.max_relative_width
    out = []
    kinds = set(roi.get("interval", pd.Series(dtype=str)).dropna()) | set(elasticities.get("interval", pd.Series(dtype=str)).dropna())
    if not kinds or kinds <= {"none", "row_spread_10_90"}:
        return [_row("interval_width", "all", None, f"width / |estimate| <= {thr}", "skipped", "no estimation interval in this run (holdout without the bootstrap: the row spread is not uncertainty)")]
    for r in roi.itertuples():
        if r.interval in ("none", "row_spread_10_90") or not np.isfinite(r.roi_lower):
            continue
        reading = f"{r.channel}: ROI between {r.roi_lower:.2f} and {r.roi_upper:.2f}"
        out.append(_width_row(f"roi:{r.channel}", r.roi, r.roi_lower, r.roi_upper, thr, reading, ": too uncertain to rank this channel or move budget on it"))
    e = elasticities[(elasticities["level"] == "all") & elasticities["feature"].isin(PRICE_FEATURES) & ~elasticities["interval"].isin(["none", "row_spread_10_90"])]
    for r in e.itertuples():
        reading = f"{r.feature}: elasticity between {r.lower:+.2f} and {r.upper:+.2f}"
        out.append(_width_row(f"elasticity:{r.feature}", r.elasticity, r.lower, r.upper, thr, reading, ": the data pin it down poorly"))
    return out


def identifiability_checks(ident: dict | None, thresholds: dict | None = None) -> list[dict]:
    """Rows from ``identifiability.json``; ``thresholds`` are the run's ``identifiability`` settings (for the
    threshold column; the verdicts are the file's own)."""
    if ident is None:
        return [_row("identifiability", "all", None, "", "skipped", "no identifiability.json in the run folder")]
    th = {"max_abs_correlation": 0.8, "max_condition_number": 30.0, "min_distinct_levels": 4, "min_periods_per_channel": 5.0, **(thresholds or {})}
    channels = list(ident.get("distinct_levels", {}))
    n_t = int(ident.get("n_periods", 0))
    out = []
    cond = ident.get("condition_number")
    block = ident.get("block_reasons", [])
    cond_bad = cond is None or cond > th["max_condition_number"]
    out.append(_row("identifiability", "condition_number", None if cond is None else round(float(cond), 2), f"<= {th['max_condition_number']:g}",
                    "fail" if cond_bad and len(channels) > 1 else "pass",
                    ("the channels' spend moves together: some mix of channels barely varies, so their effects trade off freely" if cond_bad else "the spend matrix is well conditioned") if len(channels) > 1 else "one channel: nothing to tell apart"))
    if channels:
        per = n_t / len(channels)
        ok = per >= th["min_periods_per_channel"]
        out.append(_row("identifiability", "periods_per_channel", round(per, 2), f">= {th['min_periods_per_channel']:g}", "pass" if ok else "fail",
                        f"{n_t} periods of spend for {len(channels)} channels" + ("" if ok else ": too few periods to estimate a separate effect per channel")))
    corr = ident.get("correlation", {})
    flagged = ident.get("flagged", {})
    for c in channels:
        others = {o: r for o, r in (corr.get(c) or {}).items() if o != c and r is not None}
        top = max(others.items(), key=lambda kv: abs(kv[1])) if others else None
        reasons = list(flagged.get(c, [])) + list(block)  # a block-level problem concerns every channel
        verdict = "fail" if reasons else "pass"
        value = None if top is None else round(float(top[1]), 4)
        text = f"{c}: {ident['distinct_levels'][c]} distinct spend levels" + (f", strongest spend correlation with {top[0]} (r = {top[1]:+.2f})" if top else "")
        text += f": cannot be told apart from the other channels ({'; '.join(reasons)})" if reasons else ": can be told apart from the others"
        out.append(_row("identifiability", c, value, f"|r| <= {th['max_abs_correlation']:g}, >= {th['min_distinct_levels']} levels", verdict, text))
    return out


def stability_checks(stability: pd.DataFrame | None, cfg: HealthConfig) -> list[dict]:
    thr = cfg.max_elasticity_cv
    if stability is None or stability.empty:
        return [_row("elasticity_stability", "all", None, f"CV <= {thr}", "skipped", "holdout run: one model, no fold-to-fold comparison (validation=walk_forward)")]
    out = []
    for r in stability.itertuples():
        cv = r.cv if np.isfinite(r.cv) else None
        if cv is None:
            out.append(_row("elasticity_stability", r.feature, None, f"CV <= {thr}", "skipped", f"{r.feature}: mean elasticity is zero, no CV"))
            continue
        ok = cv <= thr
        reason = f"{r.feature}: fold models range {r.min:+.2f} to {r.max:+.2f} (CV {cv:.2f})" + ("" if ok else ": the estimate moves when the training window moves")
        out.append(_row("elasticity_stability", r.feature, round(float(cv), 4), f"<= {thr}", "pass" if ok else "warn", reason))
    return out


def health_checks(run_dir: str | Path, config: HealthConfig | dict | None = None) -> pd.DataFrame:
    """Every check on the run folder ``run_dir`` (``health.csv``). ``config``: thresholds; default the run's own
    ``health`` block in ``config.yaml`` if it has one, else :class:`HealthConfig`'s defaults."""
    run_dir = Path(run_dir)
    run_cfg = _run_config(run_dir)
    if config is None:
        cfg = HealthConfig.from_dict(run_cfg.get("health"))
    elif isinstance(config, dict):
        cfg = HealthConfig.from_dict(config)
    else:
        cfg = config
    el = _read(run_dir, "elasticities.csv")
    roi = _read(run_dir, "roi.csv")
    if el is None or roi is None:
        raise FileNotFoundError(f"{run_dir} is not a finished run folder (no elasticities.csv / roi.csv)")
    curves = _read(run_dir, "curves.csv")
    observed = _read(run_dir, "observed_inputs.csv")
    decomposition = _read(run_dir, "decomposition.csv")
    ident_path = run_dir / "identifiability.json"
    ident = json.loads(ident_path.read_text()) if ident_path.is_file() else None
    rows = [
        *own_price_check(el, cfg),
        *marketing_share_check(roi, cfg),
        *diminishing_returns_check(roi, curves, observed, cfg),
        *baseline_check(decomposition, roi, cfg),
        *roi_checks(roi, cfg, run_dir),
        *interval_width_checks(el, roi, cfg),
        *identifiability_checks(ident, run_cfg.get("identifiability")),
        *stability_checks(_read(run_dir, "elasticity_stability.csv"), cfg),
    ]
    return pd.DataFrame(rows, columns=HEALTH_COLUMNS)


def _run_config(run_dir: Path) -> dict:
    path = run_dir / "config.yaml"
    if not path.is_file():
        return {}
    import yaml

    return yaml.safe_load(path.read_text()) or {}
