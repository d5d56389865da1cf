"""Can the data tell the media channels apart? Evidence from the spend alone, before any model is trusted.

Per-channel ROIs are only as good as the spend variation behind them. With national spend, every SKU of a
period sees the same spend, so the information is the number of periods, not rows. This check measures, on
the training periods:

* per channel, the number of distinct spend levels (periods whose spend differs by more than 1 % of the
  channel's mean) and the periods per channel of the whole media block;
* the pairwise Pearson correlation of the channels' per-period spend;
* the condition number of the standardized per-period spend matrix (with a constant column, as the model has
  a level): large means some mix of channels barely varies, so their effects trade off freely.

A channel is flagged when it has too few distinct levels, when it correlates with another beyond the threshold,
or when the whole block is ill-conditioned or has too few periods per channel. The verdict is a warning with
the evidence, in the manner of Meridian refusing such data by default; the run goes on but says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class IdentifiabilityThresholds:
    """Limits of the check (``identifiability`` in the config)."""

    max_abs_correlation: float = 0.8  # |Pearson r| of two channels' per-period spend above this: not separable
    max_condition_number: float = 30.0  # of the standardized spend matrix with a constant column
    min_distinct_levels: int = 4  # distinct spend levels a channel needs over the training periods
    min_periods_per_channel: float = 5.0  # training periods per channel of the media block


@dataclass
class IdentifiabilityReport:
    """The evidence and the verdict; ``flagged`` maps each channel to the reasons it cannot be trusted alone."""

    channels: list[str]
    n_periods: int
    distinct_levels: dict[str, int]
    correlation: np.ndarray
    condition_number: float
    flagged: dict[str, list[str]] = field(default_factory=dict)
    block_reasons: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.flagged and not self.block_reasons

    def pairs_above(self, limit: float) -> list[tuple[str, str, float]]:
        out = []
        for i in range(len(self.channels)):
            for j in range(i + 1, len(self.channels)):
                r = float(self.correlation[i, j])
                if np.isfinite(r) and abs(r) > limit:
                    out.append((self.channels[i], self.channels[j], r))
        return out

    def message(self) -> str:
        """One line: which channels the data cannot tell apart and why (empty when all is well)."""
        if self.ok:
            return ""
        parts = [f"{c}: {'; '.join(r)}" for c, r in self.flagged.items()]
        head = f"identifiability: per-channel ROIs are not identified from {self.n_periods} periods of spend"
        return head + " — " + " | ".join(self.block_reasons + parts)

    def to_dict(self) -> dict:
        corr = np.where(np.isfinite(self.correlation), self.correlation, np.nan)
        return {
            "ok": self.ok,
            "n_periods": self.n_periods,
            "condition_number": self.condition_number if np.isfinite(self.condition_number) else None,
            "distinct_levels": self.distinct_levels,
            "correlation": {a: {b: (None if not np.isfinite(corr[i, j]) else round(float(corr[i, j]), 4)) for j, b in enumerate(self.channels)} for i, a in enumerate(self.channels)},
            "flagged": self.flagged,
            "block_reasons": self.block_reasons,
            "message": self.message(),
        }


def check_identifiability(spend: np.ndarray, channels: list[str], thresholds: IdentifiabilityThresholds | None = None) -> IdentifiabilityReport:
    """Check per-period spend ``spend`` (T, C) in rupees of the training periods (national spend per period, or
    spend summed over units for unit-level spend)."""
    th = thresholds or IdentifiabilityThresholds()
    x = np.asarray(spend, dtype=float)
    n_t, n_c = x.shape
    mean = np.abs(x).mean(axis=0)
    distinct = {}
    for j, c in enumerate(channels):
        tol = 0.01 * mean[j] if mean[j] > 0 else 1.0
        levels = np.unique(np.round(x[:, j] / tol)) if mean[j] > 0 else np.array([0.0])
        distinct[c] = int(len(levels))
    sd = x.std(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = np.corrcoef(x, rowvar=False) if n_t > 1 and n_c > 1 else np.ones((n_c, n_c))
    corr = np.atleast_2d(corr)
    z = np.where(sd > 0, (x - x.mean(axis=0)) / np.where(sd > 0, sd, 1.0), 0.0)
    design = np.concatenate([np.ones((n_t, 1)), z], axis=1)
    sv = np.linalg.svd(design, compute_uv=False) if n_t else np.zeros(1)
    cond = float(sv[0] / sv[-1]) if len(sv) and sv[-1] > 1e-12 * max(sv[0], 1e-300) and n_t >= design.shape[1] else float("inf")
    report = IdentifiabilityReport(list(channels), n_t, distinct, corr, cond)
    for j, c in enumerate(channels):
        reasons = []
        if sd[j] == 0:
            reasons.append("spend never varies")
        elif distinct[c] < th.min_distinct_levels:
            reasons.append(f"{distinct[c]} distinct spend levels (< {th.min_distinct_levels})")
        for k, other in enumerate(channels):
            if k != j and np.isfinite(corr[j, k]) and abs(corr[j, k]) > th.max_abs_correlation:
                reasons.append(f"spend correlates with {other} (r = {corr[j, k]:+.2f})")
        if reasons:
            report.flagged[c] = reasons
    if n_c and n_t / n_c < th.min_periods_per_channel:
        report.block_reasons.append(f"{n_t} periods for {n_c} channels ({n_t / n_c:.1f} per channel < {th.min_periods_per_channel:g})")
    if n_c > 1 and cond > th.max_condition_number:
        cond_text = "infinite" if not np.isfinite(cond) else f"{cond:.0f}"
        report.block_reasons.append(f"condition number of the spend matrix {cond_text} (> {th.max_condition_number:g})")
    if report.block_reasons:  # a block-level problem concerns every channel
        for c in channels:
            report.flagged.setdefault(c, [])
        report.flagged = {c: r for c, r in report.flagged.items() if r}
    return report
