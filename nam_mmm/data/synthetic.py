"""Synthetic hierarchical panels with known ground truth.

The generating process is multiplicative (additive in log GMV), per SKU ``s`` of brand ``b`` and period ``t``::

    log GMV[s,t] = base[s] + season[b](t) + trend·years(t)
                   + Σ_c media_mult[b] · response_c(adstock_c(spend_c)[t] / mean adstock_c)
                   + own_elasticity[s] · log(price[s,t] / base_price[s])
                   + cross_elasticity[b] · log(cross_price[s,t] / mean cross_price[s])
                   + discount_effect · discount[s,t] + promo_effect · promo_days[t] / days_per_period
                   + nps_effect · (nps[b,t] − 50) + ε,     ε ~ N(0, noise_sd²)

``response_c`` is a Hill curve ``beta·(1+kⁿ)·xⁿ/(kⁿ+xⁿ)`` (equal to ``beta`` at average adstock) or
``beta·log2(1+x)``; adstock is geometric with per-channel decay. Own-price elasticities are brand-level
values plus SKU deviations. Media spend is national (the same for every SKU of a period), bursty
(on/off flighting) and correlated across channels through a common budget factor.

``truth_rows`` holds, per row, the noiseless mean log GMV and each additive term of it (``effect_<term>``).
The truth dictionary holds every parameter, per-channel true contribution (rupees, summed over the
panel: GMV minus GMV with that channel's spend at zero, on the noiseless median) and ROI
(contribution / spend), the true own-price elasticity per SKU, and the noise floor (R² of the
noiseless mean against the noisy log GMV). Same seed → byte-identical files.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from nam_mmm.data.adstock import geometric_adstock
from nam_mmm.errors import ConfigError
from nam_mmm.data.panel import (
    BRAND,
    CROSS_PRICE,
    DISCOUNT,
    FIT_WEIGHT,
    GMV,
    MRP,
    NPS,
    PERIOD,
    PRICE,
    PROMO_DAYS,
    ROW,
    SKU,
    TOTAL_SPEND,
    UNITS,
    Panel,
    spend_col,
)


@dataclass
class ChannelTruth:
    """One media channel of the generator.

    Attributes:
        name: channel name (spend column ``spend_<name>``).
        mean_spend: average spend per period while the channel is on air, rupees.
        decay: geometric adstock decay per period, in [0, 1).
        beta: effect on log GMV at average adstock (brand multiplier 1).
        half_saturation: Hill k, in units of the channel's mean adstock.
        hill_n: Hill exponent (≤ 1 keeps the response concave).
        on_air_share: long-run share of periods the channel is on air (bursty flighting).
    """

    name: str
    mean_spend: float
    decay: float
    beta: float
    half_saturation: float = 1.0
    hill_n: float = 0.8
    on_air_share: float = 0.8


def default_channels() -> list[ChannelTruth]:
    return [
        ChannelTruth("tv", 2.0e7, 0.6, 0.060, 1.2, 0.9, 0.65),
        ChannelTruth("digital", 8.0e6, 0.3, 0.045, 0.8, 0.8, 0.9),
        ChannelTruth("sponsorship", 1.5e7, 0.5, 0.015, 1.0, 0.8, 0.5),
        ChannelTruth("search", 3.0e6, 0.1, 0.030, 0.7, 0.7, 0.95),
        ChannelTruth("social", 5.0e6, 0.2, 0.012, 0.9, 0.8, 0.8),
    ]


@dataclass
class SyntheticConfig:
    """Parameters of the generator (every one recorded in the truth file)."""

    n_brands: int = 4
    skus_per_brand: int = 5
    n_periods: int = 104
    freq: str = "W-MON"  # W-MON weekly, MS monthly
    start: str = "2023-01-02"
    seed: int = 7
    channels: list[ChannelTruth] = field(default_factory=default_channels)
    saturation: str = "hill"  # hill | log
    max_lag: int = 8  # adstock carry-over length, periods
    own_elasticity_range: tuple[float, float] = (-2.2, -1.0)  # brand-level own-price elasticity
    sku_elasticity_sd: float = 0.15  # SKU deviation from the brand's own-price elasticity
    cross_elasticity_range: tuple[float, float] = (0.15, 0.6)  # brand-level cross-price elasticity
    media_brand_spread: float = 0.3  # brand media multipliers drawn in 1 ± spread
    discount_effect: float = 0.4  # log GMV per unit discount depth
    promo_effect: float = 0.15  # log GMV when every day of the period is a promo day
    nps_effect: float = 0.01  # log GMV per NPS point
    season_amplitude: float = 0.15  # annual seasonality amplitude in log GMV
    trend_per_year: float = 0.05  # log GMV growth per year
    noise_sd: float = 0.05  # sd of the log-GMV noise (the noise floor)
    price_change_prob: float = 0.15  # chance per period and SKU of a list-price change
    price_change_sd: float = 0.08  # sd of a list-price change in log price

    def __post_init__(self) -> None:
        self.channels = [c if isinstance(c, ChannelTruth) else ChannelTruth(**c) for c in self.channels]
        if self.saturation not in ("hill", "log"):
            raise ConfigError(f"saturation must be 'hill' or 'log', got {self.saturation!r}")
        if self.n_brands < 1 or self.skus_per_brand < 1 or self.n_periods < 2:
            raise ConfigError("synthetic panel needs at least 1 brand, 1 SKU per brand and 2 periods")
        if self.n_brands * self.skus_per_brand < 2:
            raise ConfigError("synthetic panel needs at least 2 SKUs: the cross price is the price of the other SKUs")


def _periods_per_year(freq: str) -> float:
    if freq.upper().startswith("W"):
        return 52.0
    if freq.upper().startswith("M"):
        return 12.0
    raise ValueError(f"synthetic generator supports weekly (W-*) or monthly (MS) periods, got {freq!r}")


def _days_per_period(freq: str) -> float:
    return 7.0 if freq.upper().startswith("W") else 30.4


def _flighting(rng: np.random.Generator, n: int, on_share: float, stay: float = 0.85) -> np.ndarray:
    """On/off bursts from a two-state Markov chain with the given long-run on-air share."""
    p_on_to_off = 1.0 - stay
    p_off_to_on = p_on_to_off * on_share / max(1.0 - on_share, 1e-9)
    p_off_to_on = min(p_off_to_on, 1.0)
    on = np.empty(n, dtype=bool)
    on[0] = rng.random() < on_share
    u = rng.random(n)
    for t in range(1, n):  # a Markov chain over time: inherently sequential
        on[t] = (u[t] >= p_on_to_off) if on[t - 1] else (u[t] < p_off_to_on)
    return on


def _ar1(rng: np.random.Generator, n: int, rho: float, sd: float) -> np.ndarray:
    e = rng.normal(0.0, sd, n)
    out = np.empty(n)
    out[0] = e[0] / np.sqrt(1 - rho**2)
    for t in range(1, n):
        out[t] = rho * out[t - 1] + e[t]
    return out


def media_response(x: np.ndarray, ch: ChannelTruth, saturation: str) -> np.ndarray:
    """Channel response on log GMV for adstock ``x`` in units of its mean adstock (brand multiplier 1)."""
    x = np.maximum(x, 0.0)
    if saturation == "hill":
        k, n = ch.half_saturation, ch.hill_n
        return ch.beta * (1 + k**n) * x**n / (k**n + x**n)
    return ch.beta * np.log1p(x) / np.log(2.0)


@dataclass
class SyntheticPanel:
    """Generator output: the long panel, the truth dictionary and the per-row noiseless mean."""

    frame: pd.DataFrame
    truth: dict
    truth_rows: pd.DataFrame
    config: SyntheticConfig

    def write(self, out_dir: str | Path) -> dict[str, Path]:
        """Write ``panel.csv``, ``truth.json`` and ``truth_rows.csv``; byte-identical for the same seed."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        paths = {"panel": out / "panel.csv", "truth": out / "truth.json", "truth_rows": out / "truth_rows.csv"}
        frame = self.frame.drop(columns=[ROW, FIT_WEIGHT]).copy()
        frame[PERIOD] = frame[PERIOD].dt.strftime("%Y-%m-%d")
        frame.to_csv(paths["panel"], index=False, float_format="%.10g", lineterminator="\n")
        rows = self.truth_rows.copy()
        rows[PERIOD] = rows[PERIOD].dt.strftime("%Y-%m-%d")
        rows.to_csv(paths["truth_rows"], index=False, float_format="%.10g", lineterminator="\n")
        paths["truth"].write_text(json.dumps(self.truth, indent=2, sort_keys=True) + "\n")
        return paths


def generate(config: SyntheticConfig | None = None) -> SyntheticPanel:
    """Draw one panel from the generating process described in the module docstring."""
    cfg = config or SyntheticConfig()
    rng = np.random.default_rng(cfg.seed)
    n_t, n_b, n_k = cfg.n_periods, cfg.n_brands, cfg.skus_per_brand
    n_s = n_b * n_k
    periods = pd.date_range(cfg.start, periods=n_t, freq=cfg.freq)
    ppy = _periods_per_year(cfg.freq)
    days = _days_per_period(cfg.freq)
    years = np.arange(n_t) / ppy
    phase = 2 * np.pi * years

    # --- national media: common budget factor (correlation) × bursty flighting × noise
    budget = np.exp(_ar1(rng, n_t, 0.7, 0.15) + 0.15 * np.sin(phase - 1.0))
    spend = np.zeros((n_t, len(cfg.channels)))
    for c, ch in enumerate(cfg.channels):
        on = _flighting(rng, n_t, ch.on_air_share)
        level = budget * np.exp(rng.normal(0.0, 0.35, n_t))
        spend[:, c] = np.round(ch.mean_spend * on * level / level.mean(), 0)
    decays = np.array([ch.decay for ch in cfg.channels])
    adstock = geometric_adstock(spend, decays, cfg.max_lag)
    adstock_mean = adstock.mean(axis=0)
    x_media = adstock / np.where(adstock_mean > 0, adstock_mean, 1.0)
    response = np.stack([media_response(x_media[:, c], ch, cfg.saturation) for c, ch in enumerate(cfg.channels)], 1)
    response_zero = np.stack([media_response(np.zeros(1), ch, cfg.saturation) for ch in cfg.channels], 1)[0]

    # --- promotions (national) and brand health (per brand)
    promo_on = rng.random(n_t) < 0.18
    promo_days = np.where(promo_on, rng.integers(2, int(days) + 1, n_t), 0).astype(float)
    nps = 50.0 + np.stack([_ar1(rng, n_t, 0.8, 1.5) for _ in range(n_b)], 1)  # (T, B)

    # --- hierarchy and prices
    brands = [f"brand_{b + 1}" for b in range(n_b)]
    sku_brand = np.repeat(np.arange(n_b), n_k)
    skus = [f"{brands[b]}_sku_{k + 1}" for b in range(n_b) for k in range(n_k)]
    brand_price = np.exp(rng.uniform(np.log(2_000), np.log(40_000), n_b))
    base_price = brand_price[sku_brand] * np.exp(rng.normal(0.0, 0.3, n_s))
    base_units = np.exp(rng.uniform(np.log(500), np.log(5_000), n_s))
    steps = np.where(rng.random((n_t, n_s)) < cfg.price_change_prob, rng.normal(0, cfg.price_change_sd, (n_t, n_s)), 0)
    log_list = np.log(base_price)[None, :] + np.cumsum(steps, axis=0)
    log_list -= log_list.mean(axis=0, keepdims=True) - np.log(base_price)[None, :]  # list price centred on base
    discount = np.clip(
        0.05 + 0.20 * (promo_days / days)[:, None] + 0.04 * np.abs(rng.normal(0, 1, (n_t, n_s))), 0.0, 0.6
    )
    mrp = np.exp(log_list)
    price = mrp * (1.0 - discount)
    # cross price: mean price of the other SKUs of the same brand (all SKUs when a brand has one)
    brand_sum = np.stack([price[:, sku_brand == b].sum(1) for b in range(n_b)], 1)[:, sku_brand]
    peers = np.bincount(sku_brand)[sku_brand] - 1
    cross = np.where(peers > 0, (brand_sum - price) / np.maximum(peers, 1), (price.sum(1, keepdims=True) - price) / max(n_s - 1, 1))

    # --- effects
    lo, hi = cfg.own_elasticity_range
    brand_own = rng.uniform(lo, hi, n_b)
    own = np.clip(brand_own[sku_brand] + rng.normal(0, cfg.sku_elasticity_sd, n_s), -3.0, -0.5)
    brand_cross = rng.uniform(*cfg.cross_elasticity_range, n_b)
    media_mult = rng.uniform(1 - cfg.media_brand_spread, 1 + cfg.media_brand_spread, n_b)
    season_amp = cfg.season_amplitude * rng.uniform(0.6, 1.4, n_b)
    season_phase = rng.uniform(0, 2 * np.pi, n_b)
    base_log = np.log(base_price * base_units)

    season = season_amp[None, :] * np.sin(phase[:, None] + season_phase[None, :])  # (T, B)
    log_cross_ref = np.log(cross).mean(0)
    effects = {  # each additive term of log GMV, (T, S)
        "base": np.broadcast_to(base_log[None, :], (n_t, n_s)),
        "season": season[:, sku_brand],
        "trend": np.broadcast_to(cfg.trend_per_year * years[:, None], (n_t, n_s)),
        "own_price": own[None, :] * np.log(price / base_price[None, :]),
        "cross_price": brand_cross[sku_brand][None, :] * (np.log(cross) - log_cross_ref[None, :]),
        "discount": cfg.discount_effect * discount,
        "promo": np.broadcast_to(cfg.promo_effect * (promo_days / days)[:, None], (n_t, n_s)),
        "nps": cfg.nps_effect * (nps[:, sku_brand] - 50.0),
    }
    for c, ch in enumerate(cfg.channels):
        effects[f"media_{ch.name}"] = response[:, c][:, None] * media_mult[sku_brand][None, :]
    mu = sum(effects.values())  # (T, S)
    noise = rng.normal(0.0, cfg.noise_sd, (n_t, n_s))
    log_gmv = mu + noise
    gmv = np.exp(log_gmv)
    units = np.maximum(np.round(gmv / price), 1.0)

    # --- truth: contributions on the noiseless median, ROI per channel
    median_gmv = np.exp(mu)
    contributions, roi = {}, {}
    for c, ch in enumerate(cfg.channels):
        drop = (response[:, c] - response_zero[c])[:, None] * media_mult[sku_brand][None, :]
        contrib = float((median_gmv - np.exp(mu - drop)).sum())
        contributions[ch.name] = contrib
        roi[ch.name] = contrib / float(spend[:, c].sum()) if spend[:, c].sum() > 0 else float("nan")
    resid = log_gmv - mu
    noise_floor_r2 = float(1 - (resid**2).sum() / ((log_gmv - log_gmv.mean()) ** 2).sum())

    tt, ss = np.meshgrid(np.arange(n_t), np.arange(n_s), indexing="ij")
    tt, ss = tt.ravel(), ss.ravel()
    frame = pd.DataFrame(
        {
            PERIOD: periods[tt],
            BRAND: np.array(brands)[sku_brand[ss]],
            SKU: np.array(skus)[ss],
            GMV: gmv[tt, ss],
            UNITS: units[tt, ss],
            PRICE: price[tt, ss],
            MRP: mrp[tt, ss],
            CROSS_PRICE: cross[tt, ss],
            DISCOUNT: discount[tt, ss],
            PROMO_DAYS: promo_days[tt],
            NPS: nps[tt, sku_brand[ss]],
        }
    )
    for c, ch in enumerate(cfg.channels):
        frame[spend_col(ch.name)] = spend[tt, c]
    frame[TOTAL_SPEND] = spend.sum(1)[tt]
    frame = frame.sort_values([PERIOD, BRAND, SKU], kind="stable").reset_index(drop=True)
    frame[ROW] = np.arange(len(frame)) + 2  # line in panel.csv (header = line 1)
    frame[FIT_WEIGHT] = 1.0
    truth_rows = pd.DataFrame(
        {PERIOD: periods[tt], SKU: np.array(skus)[ss], "log_gmv_mean": mu[tt, ss], **{f"effect_{k}": v[tt, ss] for k, v in effects.items()}}
    )
    truth_rows = truth_rows.sort_values([PERIOD, SKU], kind="stable").reset_index(drop=True)

    truth = {
        "config": _config_dict(cfg),
        "brands": brands,
        "skus": {s: brands[sku_brand[i]] for i, s in enumerate(skus)},
        "own_price_elasticity": {s: float(own[i]) for i, s in enumerate(skus)},
        "brand_own_price_elasticity": {b: float(brand_own[i]) for i, b in enumerate(brands)},
        "cross_price_elasticity": {b: float(brand_cross[i]) for i, b in enumerate(brands)},
        "media_brand_multiplier": {b: float(media_mult[i]) for i, b in enumerate(brands)},
        "adstock_decay": {ch.name: ch.decay for ch in cfg.channels},
        "adstock_mean_inr": {ch.name: float(adstock_mean[c]) for c, ch in enumerate(cfg.channels)},
        "contribution_inr": contributions,
        "roi": roi,
        "total_spend_inr": {ch.name: float(spend[:, c].sum()) for c, ch in enumerate(cfg.channels)},
        "noise_sd": cfg.noise_sd,
        "noise_floor_r2_log_gmv": noise_floor_r2,
        "base_price_inr": {s: float(base_price[i]) for i, s in enumerate(skus)},
    }
    return SyntheticPanel(frame=frame, truth=truth, truth_rows=truth_rows, config=cfg)


def _config_dict(cfg: SyntheticConfig) -> dict:
    d = asdict(cfg)
    d["own_elasticity_range"] = list(cfg.own_elasticity_range)
    d["cross_elasticity_range"] = list(cfg.cross_elasticity_range)
    return d


def load_synthetic(**kwargs) -> Panel:
    """Generate a synthetic panel in memory (no files needed) and wrap it as a :class:`Panel`."""
    channels = kwargs.pop("channels", None)
    cfg = SyntheticConfig(**kwargs) if channels is None else SyntheticConfig(channels=list(channels), **kwargs)
    sp = generate(cfg)
    source = f"synthetic(seed={cfg.seed})"
    cols = [c for c in sp.frame.columns if c not in (ROW, FIT_WEIGHT)]
    return Panel(
        frame=sp.frame,
        channels=[ch.name for ch in cfg.channels],
        freq=cfg.freq,
        source=source,
        column_sources={c: f"{source}:{c}" for c in cols},
        truth={**sp.truth, "rows": sp.truth_rows},
    )
