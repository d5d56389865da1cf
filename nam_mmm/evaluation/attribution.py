"""Tables a marketer reads from a trained model: predictions, elasticities, contributions, ROI, curves.

Everything is in original units: GMV in rupees, spend in rupees, elasticities as d log GMV / d log x.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from nam_mmm.data.folds.datamodule import PanelDataModule
from nam_mmm.models.elasticity import channel_contributions, marginal_gmv, row_elasticities
from nam_mmm.models.nam import HierarchicalNAM


@torch.no_grad()
def predictions(model: HierarchicalNAM, dm: PanelDataModule, split: str) -> pd.DataFrame:
    """Rows of a split with actual and predicted GMV in rupees (prediction = exp of predicted log GMV)."""
    b = dm.splits[split]
    out = model(b["x"], b["media"], b["brand"], b["sku"])
    rows = dm.rows(split).rename(columns={"gmv": "actual"})
    rows["predicted"] = out["log_gmv"].exp().cpu().numpy()
    rows["fit_weight"] = b["weight"].cpu().numpy()
    return rows


def _summary(values: pd.DataFrame, keys: list[str], q: tuple[float, float]) -> pd.DataFrame:
    g = values.groupby(keys, sort=False)["elasticity"]
    out = g.mean().to_frame("elasticity")
    out["lower"] = g.quantile(q[0])
    out["upper"] = g.quantile(q[1])
    out["n_rows"] = g.size()
    return out.reset_index()


def elasticity_table(model: HierarchicalNAM, dm: PanelDataModule, split: str = "all", quantiles: tuple[float, float] = (0.1, 0.9)) -> pd.DataFrame:
    """Elasticities per SKU, per brand and overall for every feature with one (own price, media …).

    ``elasticity`` is the mean over the rows; ``lower``/``upper`` are quantiles of the row-level values (the spread
    across observed operating points — prices, spend levels, seasons — not a sampling interval).
    """
    b = dm.splits[split]
    el_x, el_m = row_elasticities(model, b["x"], b["media"], b["brand"], b["sku"])
    slots = model.slots
    keep = [j for j, s in enumerate(slots[: model.n_scalar]) if s.elasticity]
    cols = {slots[j].name: el_x[:, j].cpu().numpy() for j in keep}
    cols.update({f"media_{s.name}": el_m[:, c].cpu().numpy() for c, s in enumerate(slots[model.n_scalar :])})
    if not cols:
        return pd.DataFrame(columns=["level", "unit", "feature", "elasticity", "lower", "upper", "n_rows"])
    rows = dm.rows(split)
    wide = pd.DataFrame(cols)
    wide["sku"], wide["brand"] = rows["sku"].to_numpy(), rows["brand"].to_numpy()
    long = wide.melt(id_vars=["sku", "brand"], var_name="feature", value_name="elasticity")
    parts = []
    for level, keys in (("sku", ["sku", "feature"]), ("brand", ["brand", "feature"]), ("all", ["feature"])):
        s = _summary(long, keys, quantiles)
        s.insert(0, "level", level)
        s = s.rename(columns={keys[0]: "unit"}) if level != "all" else s.assign(unit="all")
        parts.append(s[["level", "unit", "feature", "elasticity", "lower", "upper", "n_rows"]])
    return pd.concat(parts, ignore_index=True)


def spend_totals(dm: PanelDataModule, split: str = "all") -> np.ndarray:
    """(C,) rupees spent per channel over the periods of a split (national spend counted once per period)."""
    panel = dm.table.panel
    periods = np.unique(dm.splits[split]["period"].cpu().numpy())
    by_period = panel.spend_by_period().to_numpy()
    if panel.national_spend():
        return by_period[periods].sum(axis=0)
    return dm.splits[split]["media"][:, :, 0].sum(0).cpu().numpy()


def roi_table(model: HierarchicalNAM, dm: PanelDataModule, split: str = "all") -> pd.DataFrame:
    """Per channel: spend, contribution (rupees), ROI = contribution / spend, marginal ROI at observed spend,
    share of predicted GMV, and the learned adstock decay."""
    b = dm.splits[split]
    contrib = channel_contributions(model, b["x"], b["media"], b["brand"], b["sku"]).cpu().numpy()
    marginal = marginal_gmv(model, b["x"], b["media"], b["brand"], b["sku"]).cpu().numpy()
    spend = spend_totals(dm, split)
    with torch.no_grad():
        total = float(model(b["x"], b["media"], b["brand"], b["sku"])["log_gmv"].exp().sum())
    decay = model.adstock_decay().detach().cpu().numpy()
    decay = decay.mean(0) if decay.ndim > 1 else decay
    with np.errstate(divide="ignore", invalid="ignore"):
        table = pd.DataFrame(
            {
                "channel": dm.channels,
                "spend_inr": spend,
                "contribution_inr": contrib,
                "share_of_gmv": contrib / total,
                "roi": np.where(spend > 0, contrib / spend, np.nan),
                "marginal_roi": np.where(spend > 0, marginal / spend, np.nan),
                "adstock_decay": decay,
            }
        )
    peaks = response_peaks(model, b["media"], b["brand"])
    if peaks is not None:
        table["peak_adstock_inr"], table["peak_vs_max_observed"] = peaks
    return table


@torch.no_grad()
def response_peaks(model: HierarchicalNAM, media: torch.Tensor, brand: torch.Tensor) -> tuple[np.ndarray, np.ndarray] | None:
    """For a media family that peaks (beta-gamma: rises to x = α/β, then falls), where the brand-level peak
    sits: adstocked spend in rupees (mean over brands) and its ratio to the largest observed adstocked spend.
    A ratio below 1 means observed spend already went past the point where more spend lowers GMV."""
    n_s = model.n_scalar
    peaks = np.full(model.n_media, np.nan)
    for g in range(model.n_groups):
        comp = model.brand_parts[g]
        if not hasattr(comp, "peak"):
            continue
        idx = getattr(model, f"group_idx_{g}").tolist()
        per_feature = comp.peak().mean(0).cpu().numpy()  # (F_g,) in multiples of mean spend, mean over brands
        for k, j in enumerate(idx):
            if j >= n_s:
                peaks[j - n_s] = per_feature[k]
    if np.isnan(peaks).all():
        return None
    scale = model.media_scale.cpu().numpy()
    observed = model.adstock(media, brand).max(0).values.cpu().numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        return peaks * scale, np.where(observed > 0, peaks / observed, np.nan)


def curve_grid(model: HierarchicalNAM, points: int) -> torch.Tensor:
    """(points, F) model inputs the curves are drawn on: the model's own grid, or ``points`` steps over the same
    range (scalar features over ± the grid half-width, media from zero to the largest spend seen)."""
    grid = model.grid() if points == model.grid_points else None
    if grid is None:
        g = torch.linspace(0, 1, points, dtype=model.scale.dtype).unsqueeze(1)
        scalar = (2 * g - 1) * model.grid_halfwidth
        grid = torch.cat([scalar.expand(points, model.n_scalar), g * model.media_max.unsqueeze(0)], 1)
    return grid


@torch.no_grad()
def curve_table(model: HierarchicalNAM, dm: PanelDataModule, points: int = 41) -> pd.DataFrame:
    """Each feature's function on a grid, per brand: the brand's average combined (brand + SKU) curve.

    ``x`` is in raw units (for SKU-centred features, at the brand's average centre: e.g. price in rupees at the
    brand's typical level); ``effect_log_gmv`` is the additive effect on log GMV relative to the anchor.
    """
    grid = curve_grid(model, points)
    combined = model.curves(grid)["combined"] * model.y_scale  # (S, G, F) in log GMV
    sku_brand = model.sku_brand
    n_b = model.n_brands
    counts = torch.bincount(sku_brand, minlength=n_b).clamp_min(1).to(combined.dtype)
    brand_curve = torch.zeros((n_b, *combined.shape[1:]), dtype=combined.dtype).index_add_(0, sku_brand, combined) / counts[:, None, None]
    brand_center = torch.zeros((n_b, model.n_scalar), dtype=combined.dtype).index_add_(0, sku_brand, model.center) / counts[:, None]
    brands = dm.table.panel.brands
    frames = []
    for j, slot in enumerate(model.slots):  # one table block per feature (reporting, not the forward pass)
        z = grid[:, j]
        if j < model.n_scalar:
            t = z[None, :] * model.scale[j] + brand_center[:, j : j + 1]
            x = t.exp() if bool(model.log_mask[j]) else t
        else:
            x = (z * model.media_scale[j - model.n_scalar]).expand(n_b, -1)
        frames.append(
            pd.DataFrame(
                {
                    "feature": slot.name if j < model.n_scalar else f"media_{slot.name}",
                    "role": slot.role,
                    "brand": np.repeat(brands, len(z)),
                    "x": x.reshape(-1).cpu().numpy(),
                    "z": z.repeat(n_b).cpu().numpy(),
                    "effect_log_gmv": brand_curve[:, :, j].reshape(-1).cpu().numpy(),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)
