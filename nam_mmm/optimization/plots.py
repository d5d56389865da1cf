"""Charts of the planner, the scenarios and the ROI simulator (matplotlib, written as PNG)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(plt, fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _crore(v):
    return np.asarray(v, dtype=float) / 1e7  # 1 crore = 10 million rupees


def allocation_chart(channels: pd.DataFrame, path: Path, title: str) -> Path:
    """Current vs proposed spend per channel (bars, crore rupees), with each channel's marginal ROI at the optimum."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(max(6.0, 1.1 * len(channels) + 2), 4.2))
    idx = np.arange(len(channels))
    ax.bar(idx - 0.2, _crore(channels["current_inr"]), 0.4, label="current mix", color="#9aa5b1")
    ax.bar(idx + 0.2, _crore(channels["proposed_inr"]), 0.4, label="proposed", color="#2f6db5")
    for i, row in enumerate(channels.itertuples()):
        ax.annotate(f"mROI {row.marginal_roi:.2f}", (i + 0.2, _crore(row.proposed_inr)), ha="center", va="bottom", fontsize=8)
    ax.set_xticks(idx, channels["channel"], rotation=20)
    ax.set_ylabel("spend over the horizon (crore ₹)")
    ax.set_title(title, fontsize=10)
    ax.legend()
    return _save(plt, fig, path)


def frontier_chart(frontier: pd.DataFrame, path: Path) -> Path:
    """Optimal GMV and the current mix's GMV over the budgets (with the fold interval), and the ROIs."""
    plt = _plt()
    ok = frontier[frontier["status"] == "ok"]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4))
    b = _crore(ok["budget_inr"])
    a1.plot(b, _crore(ok["gmv_inr"]), "o-", label="optimal", color="#2f6db5")
    if ok["gmv_lower_inr"].notna().all():
        a1.fill_between(b, _crore(ok["gmv_lower_inr"]), _crore(ok["gmv_upper_inr"]), alpha=0.2, color="#2f6db5", label="fold interval")
    a1.plot(b, _crore(ok["gmv_current_mix_inr"]), "s--", label="current mix", color="#9aa5b1")
    a1.set_xlabel("budget over the horizon (crore ₹)")
    a1.set_ylabel("GMV over horizon + carry-over (crore ₹)")
    a1.legend()
    a2.plot(b, ok["media_roi"], "o-", label="average ROI of the plan")
    a2.plot(b, ok["marginal_roi"], "s-", label="marginal ROI (free channels)")
    a2.axhline(1.0, color="grey", lw=0.8, ls=":")
    a2.set_xlabel("budget over the horizon (crore ₹)")
    a2.set_ylabel("GMV ₹ per ₹")
    a2.legend()
    fig.suptitle("Efficient frontier", fontsize=10)
    return _save(plt, fig, path)


def scenario_chart(table: pd.DataFrame, path: Path) -> Path:
    """Lift over the baseline per scenario (bars, with the fold interval), labelled with GMV and investment."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(max(6.0, 1.4 * len(table) + 2), 4.2))
    idx = np.arange(len(table))
    lift = table["lift_pct"].to_numpy(dtype=float)
    err = None
    if table["lift_lower_pct"].notna().all():
        err = np.vstack([lift - table["lift_lower_pct"].to_numpy(dtype=float), table["lift_upper_pct"].to_numpy(dtype=float) - lift])
    ax.bar(idx, lift, yerr=err, capsize=4, color=np.where(lift >= 0, "#2f6db5", "#c0504d"))
    for i, row in enumerate(table.itertuples()):
        ax.annotate(f"GMV {row.gmv_inr / 1e7:,.0f} cr\nspend {row.investment_inr / 1e7:,.1f} cr", (i, lift[i]), ha="center",
                    va="bottom" if lift[i] >= 0 else "top", fontsize=7)
    ax.axhline(0.0, color="grey", lw=0.8)
    ax.set_xticks(idx, table["scenario"], rotation=15)
    ax.set_ylabel("GMV lift vs baseline (%), horizon + carry-over")
    ax.set_title("Scenarios" + (" (bars: mean ± 1.96 sd across fold models)" if err is not None else ""), fontsize=10)
    ax.margins(y=0.2)
    return _save(plt, fig, path)


def roi_grid(curves: pd.DataFrame, path: Path) -> Path:
    """One panel per channel: average and marginal ROI over the spend range, the current spend marked."""
    plt = _plt()
    channels = list(dict.fromkeys(curves["channel"]))
    cols = min(3, len(channels))
    rows = math.ceil(len(channels) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.2 * rows), squeeze=False)
    for ax, ch in zip(axes.ravel(), channels, strict=False):
        g = curves[curves["channel"] == ch]
        x = _crore(g["spend_inr"])
        ax.plot(x, g["roi"], label="average ROI")
        ax.plot(x, g["marginal_roi"], label="marginal ROI")
        if g["roi_lower"].notna().any():
            ax.fill_between(x, g["marginal_roi_lower"], g["marginal_roi_upper"], alpha=0.2, color="C1")
        cur = g[g["is_current"]]
        if len(cur):
            ax.axvline(_crore(cur["spend_inr"].iloc[0]), color="grey", ls="--", lw=1, label="current")
        ax.axhline(1.0, color="grey", lw=0.6, ls=":")
        finite = g["roi"].to_numpy(dtype=float)
        finite = finite[np.isfinite(finite)]
        if len(finite):  # the marginal ROI of a concave curve is unbounded at zero spend: keep the range readable
            ax.set_ylim(bottom=min(0.0, float(np.nanmin(g["marginal_roi"]))), top=1.15 * float(finite.max()))
        ax.set_title(ch, fontsize=10)
        ax.set_xlabel("spend over the horizon (crore ₹)")
        ax.set_ylabel("GMV ₹ per ₹")
    for ax in axes.ravel()[len(channels):]:
        ax.set_visible(False)
    axes.ravel()[0].legend(fontsize=8)
    return _save(plt, fig, path)
