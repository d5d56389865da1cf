"""The executive summary: two A4 pages in plain words (matplotlib's PdfPages; no other PDF library).

Page 1 — how well the model predicts, the key elasticities, the best and worst channels with their uncertainty.
Page 2 — what the data cannot tell (identifiability), the health checks that need attention, the budget headline.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np

from nam_mmm.reporting import text
from nam_mmm.reporting.plots import short
from nam_mmm.reporting.run_data import RunData
from nam_mmm.reporting.style import ACTUAL, GREY, colour, report_style

A4 = (8.27, 11.69)
PAGES = ["Summary: accuracy, elasticities, channels", "Limits: what the data cannot tell, health, budget"]
WRAP = 92
ELASTICITY_FLOOR = 0.42  # page 1: elasticity bullets stop below this height (figure coordinates), "… and N more"
MIN_CHART = 0.08  # page 1: the ROI chart needs at least this much height, else report.html has it


class _Writer:
    """Text flowing down a page in figure coordinates."""

    def __init__(self, fig, top: float = 0.95) -> None:
        self.fig, self.y = fig, top

    def heading(self, s: str) -> None:
        self.y -= 0.012
        self.fig.text(0.07, self.y, s, fontsize=13, fontweight="bold", color=colour(0), va="top")
        self.y -= 0.032

    def para(self, s: str, size: float = 10, colour_: str = ACTUAL, bullet: bool = False) -> None:
        lines = textwrap.wrap(s, int(WRAP * 10 / size) - (3 if bullet else 0)) or [""]
        for i, line in enumerate(lines):
            prefix = ("•  " if i == 0 else "   ") if bullet else ""
            self.fig.text(0.08 if bullet else 0.07, self.y, prefix + line, fontsize=size, color=colour_, va="top")
            self.y -= 0.0185 * size / 10
        self.y -= 0.006


def _roi_chart(fig, run: RunData, rect: tuple[float, float, float, float]) -> None:
    roi = run.roi.dropna(subset=["roi"]).sort_values("roi", kind="stable")
    if roi.empty:
        return
    ax = fig.add_axes(rect)
    y = np.arange(len(roi))
    v = roi["roi"].to_numpy(float)
    ax.barh(y, v, color=[colour(i) for i in range(len(roi))], height=0.6)
    lo, hi = roi["roi_lower"].to_numpy(float), roi["roi_upper"].to_numpy(float)
    has = np.isfinite(lo) & np.isfinite(hi)
    if has.any():
        ax.errorbar(v[has], y[has], xerr=np.clip(np.vstack([v[has] - lo[has], hi[has] - v[has]]), 0, None), fmt="none", ecolor=ACTUAL, capsize=3, elinewidth=1)
    ax.axvline(1.0, color=GREY, linestyle="--", linewidth=1)
    ax.set_yticks(y, roi["channel"])
    ax.set_xlabel("₹ GMV per ₹ spent (dashed: break-even)")
    ax.set_title("ROI per channel" + (" with 90 % intervals" if has.any() and "bootstrap" in str(roi["interval"].iloc[0]) else (" with fold ranges" if has.any() else "")), fontsize=10)


def _header(fig, w: _Writer, title: str, size: float, subtitle: str) -> None:
    fig.text(0.07, w.y, title, fontsize=size, fontweight="bold", va="top")
    w.y -= 0.03
    fig.text(0.07, w.y, subtitle, fontsize=9, color=GREY, va="top")
    w.y -= 0.03


def _summary_page(fig, run: RunData) -> None:
    """Page 1: accuracy, the key elasticities, the best and worst channels with the ROI chart."""
    w = _Writer(fig)
    _header(fig, w, f"Marketing-mix model — {run.data_name}", 17, f"Run {run.root.name} · {'walk-forward validation' if run.mode == 'walk_forward' else 'holdout validation'} · page 1 of 2")
    w.heading("How well the model predicts")
    w.para(text.fit_sentence(run))
    w.heading("Key elasticities")
    w.para(text.elasticity_sentence(run))
    rows = text.elasticity_rows(run)
    interval_kind = str(rows["interval"].iloc[0]) if len(rows) else "none"
    show_interval = interval_kind not in ("none", "row_spread_10_90")
    for i, r in enumerate(rows.itertuples()):
        if w.y < ELASTICITY_FLOOR:  # many features (controls, channels): keep room for the channels and the chart
            w.para(f"… and {len(rows) - i} more in report.html (Elasticities).", size=9, colour_=GREY)
            break
        extra = f"  ({text.elasticity_text(r.lower)} to {text.elasticity_text(r.upper)})" if show_interval else ""
        w.para(f"{short(r.feature)}: {text.elasticity_text(r.elasticity)}{extra}", size=9.5, bullet=True)
    w.para("Elasticity = % change of GMV for a 1 % change of the input. " + ("Ranges: " + text.interval_words(interval_kind) + "." if show_interval else "No estimation interval in this run."), size=8, colour_=GREY)
    w.heading("Best and worst channels")
    for line in text.channel_sentences(run):
        w.para(line, bullet=True)
    room = w.y - 0.07  # the chart's axes end above the text; its labels need the margin below
    if room < MIN_CHART:
        w.para("The ROI chart is in report.html (no room left on this page).", size=8, colour_=GREY)
        return
    height = min(0.32, max(0.12, 0.035 * len(run.roi) + 0.06), room)
    bottom = max(0.05, w.y - height - 0.02)
    _roi_chart(fig, run, (0.22, bottom, 0.68, height))


def _limits_page(fig, run: RunData) -> None:
    """Page 2: what the data cannot tell, the health checks needing attention, the budget, how to read it."""
    w = _Writer(fig)
    _header(fig, w, "What the numbers cannot tell, and what to check", 15, f"Run {run.root.name} · page 2 of 2")
    w.heading("What the data cannot tell")
    for line in text.identifiability_sentences(run):
        w.para(line, bullet=True)
    w.heading("Health checks")
    lines = text.health_summary(run, skip=("identifiability",))
    w.para(lines[0] + (" Identifiability: see above." if run.identifiability and not run.identifiability.get("ok") else ""))
    shown = 0
    for line in lines[1:]:
        if w.y < 0.36 or shown == 10:  # keep room for the budget and the reading notes
            w.para(f"… and {len(lines) - 1 - shown} more in report.html (Health checks).", size=9, colour_=GREY)
            break
        w.para(line, size=9, bullet=True)
        shown += 1
    w.heading("Budget")
    w.para(text.budget_sentence(run))
    w.heading("How to read this")
    w.para("ROI = GMV the channel added (predicted GMV minus predicted GMV with that channel's spend at zero) per rupee spent. "
           "Marginal ROI = GMV of the next rupee at today's spend: below ₹1, more spend on that channel loses money at the GMV level. "
           "Intervals come from refitting the model on resampled blocks of periods; they cover estimation uncertainty, not changes of the market.", size=8.5, colour_=GREY)
    w.para(f"Full report with every table and chart: {run.root / 'report.html'}", size=8, colour_=GREY)


def write_pdf(run: RunData, path: Path) -> Path:
    """The two-page executive summary of ``run`` at ``path``."""
    from matplotlib.backends.backend_pdf import PdfPages

    with report_style() as plt, PdfPages(path, metadata={"Title": f"Executive summary — {run.data_name} run {run.root.name}", "Subject": " | ".join(PAGES), "Creator": "nam-mmm"}) as pdf:
        plt.rcParams["savefig.bbox"] = "standard"  # full A4 pages, not cropped to the content
        for page in (_summary_page, _limits_page):
            fig = plt.figure(figsize=A4)
            page(fig, run)
            pdf.savefig(fig)
            plt.close(fig)
    return path
