"""The plain words of a report: what the numbers of a run folder mean for a marketer, one sentence at a time."""

from __future__ import annotations

import numpy as np
import pandas as pd

from nam_mmm.reporting.run_data import RunData
from nam_mmm.reporting.style import money

INTERVAL_WORDS = {
    "none": "no interval",
    "row_spread_10_90": "the 10–90 % spread of row-level values (operating points, not uncertainty)",
    "fold_mean_pm_1.96sd": "fold mean ± 1.96 sd across the walk-forward fold models",
}


def interval_words(kind: str) -> str:
    if kind in INTERVAL_WORDS:
        return INTERVAL_WORDS[kind]
    if kind.startswith("block_bootstrap_folds_"):
        return f"{kind.rsplit('_', 1)[-1]} % interval: refits on moving-block bootstrap resamples of the periods, combined with the spread across walk-forward fold models"
    if kind.startswith("block_bootstrap_"):
        return f"{kind.rsplit('_', 1)[-1]} % interval: refits on moving-block bootstrap resamples of the periods"
    return kind


def elasticity_text(v: float) -> str:
    """An elasticity with the digits it needs (media elasticities are often a few thousandths)."""
    return f"{v:+.3f}" if abs(v) < 0.1 else f"{v:+.2f}"


def pooled(run: RunData) -> dict:
    """Pooled out-of-sample accuracy of ``metrics.json``."""
    return run.metrics.get("test", {})


def skill(run: RunData) -> float | None:
    m = run.metrics_by_unit
    if m is None:
        return None
    row = m[m["level"] == "all"]
    return None if row.empty or pd.isna(row["skill_vs_naive"].iloc[0]) else float(row["skill_vs_naive"].iloc[0])


def fit_sentence(run: RunData) -> str:
    """How well the model predicts, in one or two sentences."""
    t = pooled(run)
    mape, r2 = t.get("mape"), t.get("r2")
    where = "over the walk-forward test periods (each predicted by a model that never saw them)" if run.mode == "walk_forward" else "on the held-out test periods"
    s = f"Out of sample, {where}, predictions are off by {mape:.1f} % on average (MAPE) and explain {r2:.0%} of the variation in GMV (R²)." if mape is not None and r2 is not None else "No out-of-sample accuracy was recorded."
    sk = skill(run)
    if sk is not None:
        if sk > 0:
            s += f" That is {sk:.0%} less squared error than simply forecasting each SKU's past average."
        else:
            s += f" That is no better than forecasting each SKU's past average (skill {sk:+.2f})."
    if run.acceptance is not None:
        failed = [c for c in run.acceptance.get("criteria", []) if not c.get("passed")]
        if run.acceptance.get("passed"):
            s += " The walk-forward acceptance criteria are met."
        else:
            s += " The walk-forward acceptance criteria are not met: " + "; ".join(c.get("reason") or c.get("criterion") for c in failed) + "."
    return s


def identifiability_sentences(run: RunData) -> list[str]:
    """Which channels the data cannot tell apart, and why, from ``identifiability.json``."""
    ident = run.identifiability
    if ident is None:
        return ["The run folder has no identifiability check."]
    if ident.get("ok"):
        return [f"The spend data can tell the {len(ident.get('distinct_levels', {}))} channels apart: enough distinct spend levels, no two channels' spend moving together, and a well-conditioned spend matrix over {ident.get('n_periods')} periods."]
    th = float(((run.config.get("identifiability") or {}).get("max_abs_correlation")) or 0.8)
    channels = list(ident.get("distinct_levels", {}))
    corr = ident.get("correlation", {})
    pairs = []
    for i, a in enumerate(channels):
        for b in channels[i + 1 :]:
            r = (corr.get(a) or {}).get(b)
            if r is not None and abs(r) > th:
                pairs.append((a, b, r))
    out = []
    flagged = list(ident.get("flagged", {}))
    if ident.get("block_reasons"):
        flagged = channels  # a problem of the whole spend block concerns every channel
    if flagged:
        out.append(f"The data cannot tell these channels apart: {', '.join(flagged)}. Their separate ROIs are not identified by this data; read them as one combined media effect, not as a ranking.")
    for a, b, r in pairs:
        out.append(f"{a} and {b} cannot be told apart: their spend moves together (correlation {r:+.2f}), so the model cannot say which of the two drove sales.")
    for reason in ident.get("block_reasons", []):
        if "periods for" in reason:
            out.append(f"Only {ident.get('n_periods')} periods of spend for {len(channels)} channels ({reason.split('(')[-1].rstrip(')')}): too few periods to give every channel its own effect.")
        elif "condition number" in reason:
            out.append(f"Some mix of the channels barely varies over these periods ({reason}): shifting credit between them hardly changes the fit.")
        else:
            out.append(reason)
    for c, reasons in ident.get("flagged", {}).items():
        own = [r for r in reasons if "correlates" not in r]
        if own:
            out.append(f"{c}: {'; '.join(own)}.")
    return out


def channel_sentences(run: RunData) -> list[str]:
    """The best and the worst channel by ROI, with their intervals."""
    roi = run.roi.dropna(subset=["roi"])
    if roi.empty:
        return ["The model has no media channels."]
    kind = str(roi["interval"].iloc[0])
    def with_interval(r) -> str:
        if kind in ("none", "row_spread_10_90") or not np.isfinite(r.roi_lower):
            return f"₹{r.roi:.2f} per rupee"
        return f"₹{r.roi:.2f} per rupee (90 % interval ₹{r.roi_lower:.2f} to ₹{r.roi_upper:.2f})" if "bootstrap" in kind else f"₹{r.roi:.2f} per rupee (fold range ₹{r.roi_lower:.2f} to ₹{r.roi_upper:.2f})"
    best, worst = roi.sort_values("roi").iloc[-1], roi.sort_values("roi").iloc[0]
    out = [f"Best channel: {best.channel}, returning {with_interval(best)} on {money(best.spend_inr)} of spend."]
    if worst.channel != best.channel:
        out.append(f"Weakest channel: {worst.channel}, returning {with_interval(worst)} on {money(worst.spend_inr)}.")
    if kind not in ("none", "row_spread_10_90") and np.isfinite(best.roi_lower) and np.isfinite(worst.roi_upper) and best.channel != worst.channel:
        if best.roi_lower > worst.roi_upper:
            out.append("Their intervals do not overlap: the ranking of these two is clear.")
        else:
            out.append("Their intervals overlap: the data do not settle which of the two returns more.")
    if (roi["roi"] < 1).all():
        out.append("Every channel returns less than ₹1 of GMV per rupee spent: at the GMV level (before margins) no channel pays for itself on these data.")
    share = float(run.roi["share_of_gmv"].sum())
    out.append(f"All media together account for {share:.1%} of predicted GMV.")
    return out


def elasticity_rows(run: RunData) -> pd.DataFrame:
    """The overall elasticities with their intervals (price, cross price, media …)."""
    e = run.elasticities[run.elasticities["level"] == "all"]
    return e[["feature", "elasticity", "lower", "upper", "interval"]].reset_index(drop=True)


def elasticity_sentence(run: RunData) -> str:
    e = run.elasticities
    own = e[(e["level"] == "all") & (e["feature"] == "price")]
    if own.empty:
        return "The model has no own-price feature."
    r = own.iloc[0]
    s = f"A 1 % price increase changes GMV by {r.elasticity:+.2f} % on average (own-price elasticity)"
    if str(r.interval).startswith("block_bootstrap") or r.interval == "fold_mean_pm_1.96sd":
        s += f", with a {'90 % interval' if 'bootstrap' in str(r.interval) else 'fold range'} of {r.lower:+.2f} to {r.upper:+.2f}"
    return s + "."


def health_summary(run: RunData, skip: tuple[str, ...] = ()) -> list[str]:
    """The counts of the verdicts, then one line per failed and warned check (checks in ``skip`` left out of the lines)."""
    h = run.health
    if h is None:
        return ["No health checks in the run folder."]
    fails = h[h["verdict"] == "fail"]
    warns = h[h["verdict"] == "warn"]
    out = [f"{len(h[h['verdict'] == 'pass'])} checks pass, {len(warns)} warn, {len(fails)} fail, {len(h[h['verdict'] == 'skipped'])} skipped."]
    for r in pd.concat([fails, warns]).itertuples():
        if r.check in skip:
            continue
        out.append(f"{r.verdict.upper()} {r.check}: {r.reason}")
    return out


def budget_sentence(run: RunData) -> str:
    """The budget headline from the planner's ``budget_summary.json`` (``scripts/plan_budget.py`` writes it into
    the run folder), or what to run when there is none."""
    import json

    p = run.root / "budget_summary.json"
    if not p.is_file():
        return "No budget plan in this run folder yet: python scripts/plan_budget.py run_dir=<this folder> writes one (budget_summary.json), and the report then states its headline."
    try:
        r = json.loads(p.read_text())
        s = f"Budget plan ({r.get('mode', 'plan')}): moving the same budget to the recommended mix changes predicted GMV by {money(r['uplift_vs_current_mix_inr'])} ({r['uplift_vs_current_mix_pct']:+.2f} %)"
        unc = r.get("uplift_by_member") or {}
        if unc.get("interval") not in (None, "none"):
            s += f", between {money(unc['lower'])} and {money(unc['upper'])} across the fold models"
        return s + "."
    except (KeyError, TypeError, ValueError) as err:
        return f"budget_summary.json could not be read ({type(err).__name__}: {err})."
