"""The synthetic generator's true GMV over a planning horizon, for judging plans against the truth.

The generator (:mod:`nam_mmm.data.sources.synthetic`) is additive in log GMV: a non-media part per SKU and period plus,
per channel, ``media_mult[brand] · beta_scale · response_c(adstock_c(spend)[t] / mean adstock_c)``. Given its truth
dictionary and noiseless rows, the true GMV of a future plan is that sum with

* the non-media part of each horizon and tail period taken from the reference period the planner used (the truth
  rows' ``log_gmv_mean`` minus every ``effect_media_*``), the same "the future looks like the reference" the model
  is asked about;
* the true adstock (geometric or delayed, per channel) over the training spend, then the plan, then zero spend in a
  tail of the generator's ``max_lag`` periods;
* the true response curves (Hill, exponential, log) in torch, so the true optimum is found with the same solver.

National spend only (``spend_level: national``), the level the model's national planner decides at.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from nam_mmm.data.sources.synthetic import ChannelTruth, SyntheticConfig, delayed_weights
from nam_mmm.errors import ConfigError
from nam_mmm.optimization.response import DTYPE


def true_response(x: torch.Tensor, ch: ChannelTruth, saturation: str) -> torch.Tensor:
    """Torch twin of :func:`nam_mmm.data.sources.synthetic.media_response` (adstock in multiples of its mean, brand multiplier 1)."""
    x = x.clamp_min(0.0)
    form = ch.saturation or saturation
    if form == "hill":
        k, n = float(ch.half_saturation), float(ch.hill_n)
        safe = x.clamp_min(1e-12)  # x^n has an infinite slope at 0 for n < 1: keep the gradient finite there
        value = ch.beta * (1 + k**n) * safe**n / (k**n + safe**n)
        return torch.where(x > 0, value, torch.zeros_like(value))
    if form == "exponential":
        k = float(ch.half_saturation)
        return ch.beta * -torch.expm1(-x / k) / -np.expm1(-1.0 / k)
    return ch.beta * torch.log1p(x) / np.log(2.0)


def adstock_weights(cfg: SyntheticConfig) -> np.ndarray:
    """(C, L+1) the generator's carry-over weights per channel and lag."""
    lags = np.arange(cfg.max_lag + 1)
    rows = []
    for ch in cfg.channels:
        kind = ch.adstock or cfg.adstock
        rows.append(delayed_weights(ch.decay, ch.peak_lag, cfg.max_lag) if kind == "delayed" else ch.decay**lags)
    return np.stack(rows)


class GeneratorResponse:
    """True GMV of a national plan over ``n_h`` horizon periods and the generator's carry-over tail.

    Args:
        truth: the panel's truth dictionary (``Panel.truth``: ``config``, ``media_brand_multiplier``,
            ``adstock_mean_inr`` …, and ``rows``, the noiseless truth rows).
        history: (T, C) national spend before the horizon, rupees, in the truth config's channel order.
        source_periods: ISO date of the reference period of each horizon and tail period (at least ``n_h + max_lag``).
        n_h: horizon periods.
    """

    def __init__(self, truth: dict, history: np.ndarray, source_periods: list[str], n_h: int) -> None:
        cfg_dict = dict(truth["config"])
        self.cfg = SyntheticConfig(**cfg_dict)
        if self.cfg.spend_level != "national":
            raise ConfigError(f"the true response is built for national spend; this panel's spend is per {self.cfg.spend_level}")
        self.channels = [ch.name for ch in self.cfg.channels]
        self.n_h, self.lags = int(n_h), int(self.cfg.max_lag)
        self.n_p = self.n_h + self.lags
        if len(source_periods) < self.n_p:
            raise ConfigError(f"the truth needs {self.n_p} reference periods (horizon {self.n_h} + the generator's max_lag {self.lags}), got {len(source_periods)}")
        rows: pd.DataFrame = truth["rows"]
        skus = list(truth["skus"])
        self.skus = skus
        media_cols = [f"effect_media_{c}" for c in self.channels]
        rows = rows.assign(nonmedia=rows["log_gmv_mean"] - rows[media_cols].sum(1))
        rows = rows.assign(period=pd.to_datetime(rows["period"]))
        wide = rows.pivot_table(index="period", columns="sku", values="nonmedia").reindex(columns=skus)
        src = pd.to_datetime(pd.Series(source_periods[: self.n_p]))
        self.nonmedia = torch.as_tensor(wide.reindex(src).to_numpy(dtype=float, copy=True), dtype=DTYPE)  # (P, S)
        if torch.isnan(self.nonmedia).any():
            raise ConfigError("a reference period has no truth rows")
        brand_of = [truth["skus"][s] for s in skus]
        scale = float(truth.get("media_beta_scale", 1.0))
        self.mult = torch.as_tensor([truth["media_brand_multiplier"][b] * scale for b in brand_of], dtype=DTYPE)  # (S,)
        self.adstock_mean = torch.as_tensor([truth["adstock_mean_inr"][c] for c in self.channels], dtype=DTYPE)
        self.weights = torch.as_tensor(adstock_weights(self.cfg), dtype=DTYPE)  # (C, L+1)
        hist = np.asarray(history, dtype=float)
        pad = np.zeros((max(self.lags - len(hist), 0), len(self.channels)))
        self.history = torch.as_tensor(np.concatenate([pad, hist])[-self.lags :] if self.lags else hist[:0], dtype=DTYPE)
        p, lag = np.arange(self.n_p)[:, None], np.arange(self.lags + 1)[None, :]
        self.lag_index = torch.as_tensor(self.lags + p - lag, dtype=torch.long)

    def log_gmv(self, plan: torch.Tensor) -> torch.Tensor:
        """(P, S) true noiseless log GMV for a (H, C) national plan."""
        plan = torch.as_tensor(plan, dtype=DTYPE)
        series = torch.cat([self.history, plan, plan.new_zeros((self.n_p - self.n_h, len(self.channels)))])
        stack = series[self.lag_index]  # (P, L+1, C)
        adstock = (stack * self.weights.T.unsqueeze(0)).sum(1)  # (P, C)
        x = adstock / torch.where(self.adstock_mean > 0, self.adstock_mean, torch.ones_like(self.adstock_mean))
        media = torch.stack([true_response(x[:, c], ch, self.cfg.saturation) for c, ch in enumerate(self.cfg.channels)], 1)  # (P, C)
        return self.nonmedia + media.sum(1, keepdim=True) * self.mult.unsqueeze(0)

    def total(self, plan: torch.Tensor) -> torch.Tensor:
        """True GMV over the horizon and tail, rupees (noiseless median, as the truth's contributions)."""
        return self.log_gmv(plan).exp().sum()
