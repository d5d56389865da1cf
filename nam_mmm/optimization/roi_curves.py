"""The ROI simulator: per channel, average and marginal ROI over a range of spend, the other channels held.

For each channel, its amount over the horizon runs from 0 to ``max_multiple`` × its current amount (paced like the
current plan, carry-over included: GMV over the horizon and its tail); the other channels keep the current plan.

* average ROI = (GMV − GMV with the channel at zero) / the channel's spend;
* marginal ROI = d GMV / d spend of the channel (autograd through the model), GMV rupees per rupee.

With a fold ensemble each value also gets the spread across fold models (mean ± 1.96 sd). A channel the current plan
does not spend on is scanned over the range of its average training spend per horizon; a channel never spent in
the training data is left out (its curve has no evidence behind it) and named in the notes.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from nam_mmm.optimization.planner import Z, PlanningContext
from nam_mmm.optimization.response import DTYPE


def _member_values_and_grads(ctx: PlanningContext, x: np.ndarray, channel: int) -> tuple[float, float, np.ndarray, np.ndarray]:
    """Ensemble GMV and its derivative in the channel's amount, and the same per fold model."""
    t = torch.as_tensor(x, dtype=DTYPE).clone().requires_grad_(True)
    log = ctx.response.member_log_gmv(ctx.space.to_plan(t))  # (M, P, S)
    ensemble = log.mean(0).exp().sum()
    members = log.exp().sum((1, 2))
    outputs = [ensemble, *members]
    grads = [torch.autograd.grad(o, t, retain_graph=True)[0][channel].item() for o in outputs]
    return float(ensemble.detach()), grads[0], members.detach().numpy(), np.array(grads[1:])


def roi_curves(ctx: PlanningContext, max_multiple: float = 3.0, points: int = 31) -> tuple[pd.DataFrame, list[str]]:
    """The ROI table over each channel's spend range (``ctx`` at channel granularity) and notes on skipped channels."""
    space = ctx.space
    if space.granularity != "channel":
        raise ValueError("roi_curves needs a channel-granularity planning context")
    current = space.current
    hist = np.asarray(ctx.predictor.history, dtype=float)
    per_period = hist.reshape(hist.shape[0], -1, hist.shape[-1]).sum(1).mean(0)  # (C,) average training spend per period
    n_h = len(ctx.horizon.periods)
    rows, notes = [], []
    grid = np.linspace(0.0, float(max_multiple), int(points))
    for c, ch in enumerate(space.channels):
        if current[c] > 0:
            scale, note = current[c], ""
        elif per_period[c] > 0:
            scale, note = per_period[c] * n_h, "no spend in the current plan: range in multiples of the average training spend"
            notes.append(f"{ch}: {note}")
        else:
            notes.append(f"{ch}: never spent in the training data, left out")
            continue
        grid_c = np.union1d(grid, [1.0]) if current[c] > 0 else grid
        x0 = current.copy()
        x0[c] = 0.0
        g_zero, _, m_zero, _ = _member_values_and_grads(ctx, x0, c)
        for mult in grid_c:
            x = current.copy()
            x[c] = mult * scale
            g, dg, m, dm = _member_values_and_grads(ctx, x, c)
            spend = float(x[c])
            roi_m = (m - m_zero) / spend if spend > 0 else np.full(len(m), np.nan)
            rows.append({
                "channel": ch,
                "multiplier": float(mult),
                "spend_inr": spend,
                "gmv_inr": g,
                "contribution_inr": g - g_zero,
                "roi": (g - g_zero) / spend if spend > 0 else np.nan,
                "roi_lower": _lower(roi_m),
                "roi_upper": _upper(roi_m),
                "marginal_roi": dg,
                "marginal_roi_lower": _lower(dm),
                "marginal_roi_upper": _upper(dm),
                "is_current": bool(current[c] > 0 and np.isclose(mult, 1.0)),
                "interval": "fold_mean_pm_1.96sd" if len(m) > 1 else "none",
                "note": note,
            })
    return pd.DataFrame(rows), notes


def _lower(v: np.ndarray) -> float | None:
    return float(v.mean() - Z * v.std(ddof=1)) if len(v) > 1 and np.isfinite(v).all() else None


def _upper(v: np.ndarray) -> float | None:
    return float(v.mean() + Z * v.std(ddof=1)) if len(v) > 1 and np.isfinite(v).all() else None
