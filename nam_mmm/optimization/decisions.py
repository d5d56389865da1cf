"""What the planner decides and how a decision becomes the spend the model sees.

Three granularities (``budget.granularity``):

* ``channel``: one amount per channel for the whole horizon, spread over its periods by the *pacing*;
* ``channel_period``: one amount per channel and period;
* ``brand_channel``: one amount per brand and channel for the whole horizon (paced like ``channel``).

Pacing (``budget.pacing``): ``reference`` keeps the current plan's pattern over the periods (a channel the current
plan does not spend on is spread evenly), ``even`` spreads every amount evenly.

How an amount reaches the model's rows:

* national media (one spend per period for every SKU): a channel's amount is the national spend. A brand's amount
  is a campaign for that brand only, which the national model has never seen; it is mapped to the national spend
  that gives the brand's SKUs the same spend *intensity*: brand ``b``'s SKUs see ``amount / w_b``, with ``w_b`` the
  brand's share of the training GMV (a brand given its GMV share of a national budget sees that national budget,
  so the current plan maps to itself). The same mapping the generator uses for brand-level spend.
* per-SKU media: an amount is split over SKUs by the current plan's pattern (SKU shares of the channel's spend in
  each period; for a brand's amount, within the brand), falling back to the SKUs' shares of the channel's training
  spend where the current plan has none.

Every decision is linear in the spend the model sees: ``plan[h, s, c] = x[group(h, s), c] · weight[h, s, c]``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from nam_mmm.errors import ConfigError
from nam_mmm.optimization.response import DTYPE

GRANULARITIES = ("channel", "channel_period", "brand_channel")
PACINGS = ("reference", "even")


@dataclass
class DecisionSpace:
    """Decision variables ``x`` (rupees) and their map to the model's (H, S, C) plan.

    Attributes:
        granularity: one of :data:`GRANULARITIES`.
        channels, periods, brands: labels (periods as ISO dates).
        group_of: (H, S) index of each horizon row's group (0 for ``channel``, the period, or the SKU's brand).
        weight: (H, S, C) spend a row sees per rupee of its decision.
        rupees_per_period: (H, n) rupees of each decision spent in each period (sums to 1 over periods).
        current: (n,) the current plan in decision space (maps exactly to the current plan).
        channel_of: (n,) channel index of each decision; ``group``: (n,) its group index.
    """

    granularity: str
    channels: list[str]
    periods: list[str]
    brands: list[str]
    group_of: np.ndarray
    weight: np.ndarray
    rupees_per_period: np.ndarray
    current: np.ndarray
    channel_of: np.ndarray
    group: np.ndarray

    @property
    def n(self) -> int:
        return len(self.current)

    @property
    def n_groups(self) -> int:
        return int(self.group.max()) + 1 if self.n else 0

    def labels(self) -> list[dict[str, str]]:
        """Per decision: its channel and, by granularity, period or brand."""
        out = []
        for k in range(self.n):
            row = {"channel": self.channels[self.channel_of[k]]}
            if self.granularity == "channel_period":
                row["period"] = self.periods[self.group[k]]
            elif self.granularity == "brand_channel":
                row["brand"] = self.brands[self.group[k]]
            out.append(row)
        return out

    def name(self, k: int) -> str:
        return "/".join(self.labels()[k].values())

    def to_plan(self, x: torch.Tensor | np.ndarray) -> torch.Tensor:
        """(H, S, C) spend the model sees for decisions ``x``."""
        grid = torch.as_tensor(x, dtype=DTYPE).reshape(self.n_groups, len(self.channels))
        return grid[torch.as_tensor(self.group_of)] * torch.as_tensor(self.weight, dtype=DTYPE)

    def channel_totals(self, x: np.ndarray) -> np.ndarray:
        """(C,) rupees per channel."""
        return np.bincount(self.channel_of, weights=np.asarray(x, dtype=float), minlength=len(self.channels))


def _pace(current: np.ndarray, pacing: str) -> np.ndarray:
    """(H, C) share of each channel's amount spent in each period."""
    n_h = current.shape[0]
    even = np.full(current.shape, 1.0 / n_h)
    if pacing == "even":
        return even
    total = current.sum(0, keepdims=True)
    return np.where(total > 0, current / np.where(total > 0, total, 1.0), even)


def _shares(values: np.ndarray, fallback: np.ndarray, axis) -> np.ndarray:
    """``values`` normalized to sum 1 over ``axis``; ``fallback`` (same shape, normalized) where they sum to 0."""
    total = values.sum(axis, keepdims=True)
    return np.where(total > 0, values / np.where(total > 0, total, 1.0), fallback)


def _national(granularity: str, pacing: str, cur: np.ndarray, b_of_s: np.ndarray, n_c: int, brand_weight: np.ndarray | None):
    """National media: ``(group_of, weight, current, rupees)`` of a granularity (``rupees``: (H, C) pace of a
    horizon amount, None for ``channel_period``)."""
    n_h, n_s = cur.shape[0], len(b_of_s)
    pace = _pace(cur, pacing)  # (H, C)
    if granularity == "channel":
        return np.zeros((n_h, n_s), dtype=np.int64), np.repeat(pace[:, None, :], n_s, 1), cur.sum(0), pace
    if granularity == "channel_period":
        return np.repeat(np.arange(n_h)[:, None], n_s, 1), np.ones((n_h, n_s, n_c)), cur.reshape(-1), None
    if brand_weight is None:
        raise ConfigError("brand_channel on national media needs each brand's GMV share")
    w = np.asarray(brand_weight, dtype=float)
    group_of = np.repeat(b_of_s[None, :], n_h, 0)
    weight = pace[:, None, :] / w[b_of_s][None, :, None]
    current = (w[:, None] * cur.sum(0)[None, :]).reshape(-1)
    return group_of, weight, current, pace


def _per_sku(granularity: str, pacing: str, cur: np.ndarray, history: np.ndarray, b_of_s: np.ndarray, n_c: int, n_b: int):
    """Per-SKU media: ``(group_of, weight, current, rupees)`` of a granularity (``rupees``: (H, C) share of a
    channel amount per period for ``channel``, else None)."""
    n_h, n_s = cur.shape[0], len(b_of_s)
    hist = np.asarray(history, dtype=float).sum(0)  # (S, C) training spend per SKU
    sku_share = _shares(hist, np.full((n_s, n_c), 1.0 / n_s), 0)  # (S, C)
    if granularity == "channel":
        fallback = np.repeat(sku_share[None] / n_h, n_h, 0)
        weight = _shares(cur, fallback, (0, 1)) if pacing == "reference" else fallback
        return np.zeros((n_h, n_s), dtype=np.int64), weight, cur.sum((0, 1)), weight.sum(1)
    if granularity == "channel_period":
        weight = _shares(cur, np.repeat(sku_share[None], n_h, 0), 1)
        return np.repeat(np.arange(n_h)[:, None], n_s, 1), weight, cur.sum(1).reshape(-1), None
    weight = np.zeros((n_h, n_s, n_c))
    current = np.zeros((n_b, n_c))
    for b in range(n_b):  # brands are few; each brand's block is normalized on its own
        members = b_of_s == b
        within = _shares(hist[members], np.full((int(members.sum()), n_c), 1.0 / max(int(members.sum()), 1)), 0)
        fallback = np.repeat(within[None] / n_h, n_h, 0)
        block = cur[:, members]
        weight[:, members] = _shares(block, fallback, (0, 1)) if pacing == "reference" else fallback
        current[b] = block.sum((0, 1))
    return np.repeat(b_of_s[None, :], n_h, 0), weight, current.reshape(-1), None


def _rupees_per_period(granularity: str, national: bool, rupees, weight: np.ndarray, b_of_s: np.ndarray, group: np.ndarray, n_groups: int, n_c: int) -> np.ndarray:
    """(H, n) rupees of each decision spent in each period (``n_groups``: 1, the periods or the brands)."""
    n_h = weight.shape[0]
    if granularity == "channel_period":
        out = np.zeros((n_h, n_groups * n_c))
        out[group, np.arange(n_groups * n_c)] = 1.0
        return out
    if granularity == "channel":
        return rupees
    if national:
        return np.tile(rupees, (1, n_groups))
    # per-SKU brand amounts: the share of the brand block spent in each period
    return np.stack([weight[:, b_of_s == b, :].sum(1) for b in range(n_groups)], 1).reshape(n_h, -1)


def build_decisions(
    granularity: str,
    pacing: str,
    current_spend: np.ndarray,
    history: np.ndarray,
    channels: list[str],
    periods: list[str],
    sku_brand_index: np.ndarray,
    brands: list[str],
    brand_weight: np.ndarray | None = None,
) -> DecisionSpace:
    """The decision space of a plan.

    Args:
        granularity, pacing: see the module docstring.
        current_spend: the current plan, rupees: (H, C) national or (H, S, C) per SKU.
        history: training spend, (T, C) or (T, S, C) (per-SKU fallback shares).
        channels, periods: labels; ``sku_brand_index`` (S,) brand index of each SKU, ``brands`` their names.
        brand_weight: (B,) each brand's share of GMV, national ``brand_channel`` only.
    """
    if granularity not in GRANULARITIES:
        raise ConfigError(f"budget.granularity must be one of {', '.join(GRANULARITIES)}, got {granularity!r}")
    if pacing not in PACINGS:
        raise ConfigError(f"budget.pacing must be one of {', '.join(PACINGS)}, got {pacing!r}")
    cur = np.asarray(current_spend, dtype=float)
    n_h, n_c = cur.shape[0], len(channels)
    n_b = len(brands)
    national = cur.ndim == 2
    b_of_s = np.asarray(sku_brand_index)
    if national:
        group_of, weight, current, rupees = _national(granularity, pacing, cur, b_of_s, n_c, brand_weight)
    else:
        group_of, weight, current, rupees = _per_sku(granularity, pacing, cur, history, b_of_s, n_c, n_b)
    n_groups = {"channel": 1, "channel_period": n_h, "brand_channel": n_b}[granularity]
    group = np.repeat(np.arange(n_groups), n_c)
    channel_of = np.tile(np.arange(n_c), n_groups)
    return DecisionSpace(
        granularity=granularity,
        channels=list(channels),
        periods=list(periods),
        brands=list(brands),
        group_of=group_of,
        weight=weight,
        rupees_per_period=_rupees_per_period(granularity, national, rupees, weight, b_of_s, group, n_groups, n_c),
        current=np.asarray(current, dtype=float),
        channel_of=channel_of,
        group=group,
    )
