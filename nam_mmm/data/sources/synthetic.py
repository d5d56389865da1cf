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

Scenario options (defaults reproduce the panel above byte for byte; every option draws its randomness from a
second generator seeded from ``seed``, so switching one on leaves the other draws of the panel unchanged):

* ``seasonality``: ``smooth`` (the sin above), ``festival`` (lifts on the dates of :data:`FESTIVALS`: Diwali,
  Dussehra, Holi, Christmas, Republic Day and Independence Day sales, the big e-commerce sale events, 2022–2026),
  or ``both``. A festival raises daily sales by ``exp(lift·festival_lift·brand sensitivity)`` over its window;
  a period's effect is the log of the mean daily lift over its days, so monthly periods dilute it.
  ``festival_spend_lift`` plans media around the festivals and ``festival_discount`` deepens discounts during sale
  events (both confound seasonality with media and price, as real plans do).
* saturation ``exponential``: ``beta·(1 − e^{−x/k}) / (1 − e^{−1/k})``; a channel may override the panel's form.
* adstock ``delayed`` (per channel or for all): weights ``decay^((l − θ)²)``, l = 0..max_lag, peaking at lag θ.
* channel ``pattern``: ``flighted`` (on/off bursts), ``always_on`` (no zero periods) or ``flat`` (spend within
  about ±2 % of its mean: a channel the data cannot identify).
* ``spend_correlation``: share of each channel's log-spend variance from the common budget factor (0 = independent).
* ``spend_level``: ``national`` (one value per period), ``brand`` or ``sku`` (each unit's own spend series,
  proportional to its size with its own intensity and flighting; the response takes the unit's spend intensity).
* ``media_share``: rescale every channel's beta so that media's total effect (GMV minus GMV with no media at all,
  on the noiseless median) is this share of GMV.

With any option on, the truth also holds ``media_share_of_gmv``, ``contribution_share``, ``spend_level``,
``media_beta_scale`` and, with festivals, ``festival_calendar``; ``truth_rows`` gains ``effect_festival``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from nam_mmm.data.calendar.frequency import days_per_period, periods_per_year
from nam_mmm.data.features.adstock import geometric_adstock, lag_stack
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
        saturation: this channel's response form (``hill`` | ``log`` | ``exponential``); None = the panel's.
            For ``exponential``, ``half_saturation`` is the scale k of ``1 − e^{−x/k}``.
        adstock: ``geometric`` | ``delayed``; None = the panel's. Delayed weights are ``decay^((l − peak_lag)²)``.
        peak_lag: θ of the delayed adstock, periods.
        pattern: ``flighted`` (on/off bursts with ``on_air_share``), ``always_on`` or ``flat`` (nearly constant).
    """

    name: str
    mean_spend: float
    decay: float
    beta: float
    half_saturation: float = 1.0
    hill_n: float = 0.8
    on_air_share: float = 0.8
    saturation: str | None = None
    adstock: str | None = None
    peak_lag: float = 0.0
    pattern: str = "flighted"


_NEW_FIELDS = (
    "seasonality",
    "festival_lift",
    "festivals",
    "festival_spend_lift",
    "festival_discount",
    "adstock",
    "spend_correlation",
    "spend_level",
    "media_share",
)  # SyntheticConfig fields added with the scenarios
# options added after the first generator: left out of the truth's config while at their default, so the default
# panel's truth file stays byte-identical
_NEW_CHANNEL_FIELDS = {"saturation": None, "adstock": None, "peak_lag": 0.0, "pattern": "flighted"}
SATURATIONS = ("hill", "log", "exponential")
ADSTOCKS = ("geometric", "delayed")
PATTERNS = ("flighted", "always_on", "flat")
SPEND_LEVELS = ("national", "brand", "sku")
SEASONALITIES = ("smooth", "festival", "both")
FLAT_CV = 0.02  # relative spread of a flat channel's spend


@dataclass(frozen=True)
class Festival:
    """A calendar event: daily log-sales lift over ``[date − days_before, date + days_after]`` each year.

    ``sale``: a sale event (discounts deepen with ``festival_discount``). ``dates``: the event's date per year
    (for multi-day sale events, the first day; ``days_after`` covers the rest).
    """

    lift: float
    days_before: int
    days_after: int
    sale: bool
    dates: tuple[str, ...]


# A small built-in calendar, 2022-2026. Diwali (Lakshmi Puja), Dussehra (Vijayadashami) and Holi follow the Hindu
# lunar calendar; the Republic Day (26 Jan) and Independence Day (15 Aug) sales run in the days before the holiday;
# the big festive e-commerce sales (Flipkart Big Billion Days / Amazon Great Indian Festival) start late September
# or early October (2026: an assumed date); the end-of-season sale runs in June. Sale dates are approximate.
FESTIVALS: dict[str, Festival] = {
    "diwali": Festival(0.45, 10, 1, False, ("2022-10-24", "2023-11-12", "2024-10-31", "2025-10-20", "2026-11-08")),
    "dussehra": Festival(0.20, 4, 0, False, ("2022-10-05", "2023-10-24", "2024-10-12", "2025-10-02", "2026-10-20")),
    "holi": Festival(0.12, 4, 0, False, ("2022-03-18", "2023-03-08", "2024-03-25", "2025-03-14", "2026-03-04")),
    "christmas": Festival(0.15, 10, 1, False, ("2022-12-25", "2023-12-25", "2024-12-25", "2025-12-25", "2026-12-25")),
    "republic_day_sale": Festival(0.25, 6, 0, True, ("2022-01-26", "2023-01-26", "2024-01-26", "2025-01-26", "2026-01-26")),
    "independence_day_sale": Festival(0.20, 7, 0, True, ("2022-08-15", "2023-08-15", "2024-08-15", "2025-08-15", "2026-08-15")),
    "big_festive_sale": Festival(0.60, 0, 7, True, ("2022-09-23", "2023-10-08", "2024-09-27", "2025-09-23", "2026-09-25")),
    "end_of_season_sale": Festival(0.15, 0, 6, True, ("2022-06-10", "2023-06-09", "2024-06-07", "2025-06-13", "2026-06-12")),
}


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
    # scenario options (module docstring); the defaults reproduce the original generator byte for byte
    seasonality: str = "smooth"  # smooth | festival | both
    festival_lift: float = 1.0  # multiplier of the built-in festival lifts
    festivals: list[str] | None = None  # events of FESTIVALS used (None = all)
    festival_spend_lift: float = 0.0  # log-spend lift of every channel in a fully festive period
    festival_discount: float = 0.0  # extra discount depth in a period fully covered by sale events
    adstock: str = "geometric"  # geometric | delayed (a channel's own `adstock` wins)
    spend_correlation: float | None = None  # None = the original budget factor; else its share of log-spend variance
    spend_level: str = "national"  # national | brand | sku
    media_share: float | None = None  # total media effect as a share of GMV (None = betas as given)

    def __post_init__(self) -> None:
        self.channels = [c if isinstance(c, ChannelTruth) else ChannelTruth(**c) for c in self.channels]
        if self.saturation not in SATURATIONS:
            raise ConfigError(f"saturation must be one of {', '.join(SATURATIONS)}, got {self.saturation!r}")
        for name, value, allowed in (
            ("seasonality", self.seasonality, SEASONALITIES),
            ("adstock", self.adstock, ADSTOCKS),
            ("spend_level", self.spend_level, SPEND_LEVELS),
        ):
            if value not in allowed:
                raise ConfigError(f"{name} must be one of {', '.join(allowed)}, got {value!r}")
        for ch in self.channels:
            if ch.saturation is not None and ch.saturation not in SATURATIONS:
                raise ConfigError(f"channel '{ch.name}': saturation must be one of {', '.join(SATURATIONS)}, got {ch.saturation!r}")
            if ch.adstock is not None and ch.adstock not in ADSTOCKS:
                raise ConfigError(f"channel '{ch.name}': adstock must be one of {', '.join(ADSTOCKS)}, got {ch.adstock!r}")
            if ch.pattern not in PATTERNS:
                raise ConfigError(f"channel '{ch.name}': pattern must be one of {', '.join(PATTERNS)}, got {ch.pattern!r}")
            if not 0.0 <= ch.peak_lag <= self.max_lag:
                raise ConfigError(f"channel '{ch.name}': peak_lag must be in [0, max_lag={self.max_lag}], got {ch.peak_lag}")
        unknown = sorted(set(self.festivals or []) - set(FESTIVALS))
        if unknown:
            raise ConfigError(f"unknown festival(s) {', '.join(unknown)} (known: {', '.join(FESTIVALS)})")
        if self.spend_correlation is not None and not 0.0 <= self.spend_correlation <= 1.0:
            raise ConfigError(f"spend_correlation must be in [0, 1], got {self.spend_correlation}")
        if self.media_share is not None and not 0.0 < self.media_share < 0.9:
            raise ConfigError(f"media_share must be in (0, 0.9), got {self.media_share}")
        if self.n_brands < 1 or self.skus_per_brand < 1 or self.n_periods < 2:
            raise ConfigError("synthetic panel needs at least 1 brand, 1 SKU per brand and 2 periods")
        if self.n_brands * self.skus_per_brand < 2:
            raise ConfigError("synthetic panel needs at least 2 SKUs: the cross price is the price of the other SKUs")


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
    """Channel response on log GMV for adstock ``x`` in units of its mean adstock (brand multiplier 1).

    Every form equals ``beta`` at ``x = 1`` and 0 at ``x = 0``; the channel's own ``saturation`` wins over the panel's.
    """
    x = np.maximum(x, 0.0)
    form = ch.saturation or saturation
    if form == "hill":
        k, n = ch.half_saturation, ch.hill_n
        return ch.beta * (1 + k**n) * x**n / (k**n + x**n)
    if form == "exponential":
        k = ch.half_saturation
        return ch.beta * -np.expm1(-x / k) / -np.expm1(-1.0 / k)
    return ch.beta * np.log1p(x) / np.log(2.0)


def delayed_weights(decay: float, peak_lag: float, max_lag: int) -> np.ndarray:
    """Delayed-adstock weights ``decay^((l − θ)²)`` for l = 0..max_lag, normalized to sum 1 (largest at l = θ)."""
    if not 0.0 < decay < 1.0:
        raise ConfigError(f"delayed adstock needs a decay in (0, 1), got {decay}")
    w = decay ** ((np.arange(max_lag + 1) - peak_lag) ** 2)
    return w / w.sum()


def channel_adstock(spend: np.ndarray, channels: list[ChannelTruth], default: str, max_lag: int) -> np.ndarray:
    """Adstock of (T, C) spend: geometric (weights decay^l) or delayed (:func:`delayed_weights`) per channel."""
    kinds = [ch.adstock or default for ch in channels]
    decays = np.array([ch.decay for ch in channels])
    if all(k == "geometric" for k in kinds):
        return geometric_adstock(spend, decays, max_lag)
    stack = lag_stack(spend, max_lag)  # (T, C, L+1)
    weights = np.stack(
        [delayed_weights(ch.decay, ch.peak_lag, max_lag) if k == "delayed" else ch.decay ** np.arange(max_lag + 1) for ch, k in zip(channels, kinds, strict=True)]
    )
    return (stack * weights[None]).sum(-1)


def festival_overlap(periods: pd.DatetimeIndex, freq: str, names: list[str] | None = None) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Days of each festival window inside each period.

    Returns ``(overlap (T, E) days, period length (T,) days, event names)``; a period's length runs to the next
    period's start. Raises when the panel leaves the years of the built-in calendar.
    """
    names = list(FESTIVALS) if names is None else list(names)
    edges = pd.date_range(periods[0], periods=len(periods) + 1, freq=freq)
    start = edges[:-1].to_numpy("datetime64[D]")
    end = edges[1:].to_numpy("datetime64[D]")  # exclusive
    years = {int(d[:4]) for f in FESTIVALS.values() for d in f.dates}
    if periods[0].year < min(years) or (edges[-1] - pd.Timedelta(days=1)).year > max(years):
        raise ConfigError(f"festival calendar covers {min(years)}-{max(years)}; the panel runs {periods[0].date()} to {edges[-1].date()}")
    overlap = np.zeros((len(periods), len(names)))
    for e, name in enumerate(names):
        fest = FESTIVALS[name]
        for d in fest.dates:
            day = np.datetime64(d, "D")
            lo, hi = day - fest.days_before, day + fest.days_after + 1  # window [lo, hi)
            overlap[:, e] += np.clip(np.minimum(end, hi) - np.maximum(start, lo), 0, None).astype(float)
    return overlap, (end - start).astype(float), names


def _extended(cfg: SyntheticConfig) -> bool:
    """Whether any scenario option is away from its default (the truth then carries the extra keys)."""
    defaults = SyntheticConfig.__dataclass_fields__
    top = any(getattr(cfg, k) != defaults[k].default for k in _NEW_FIELDS)
    return top or any(getattr(ch, k) != v for ch in cfg.channels for k, v in _NEW_CHANNEL_FIELDS.items())


def _unit_shares(size: np.ndarray, unit: np.ndarray, n_units: int) -> np.ndarray:
    """(U,) each spend unit's share of the panel's size (brand or SKU), summing to 1."""
    total = np.bincount(unit, weights=size, minlength=n_units)
    return total / total.sum()


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


@dataclass
class _Calendar:
    """The periods and what depends on the date alone: time in years, the festival windows."""

    periods: pd.DatetimeIndex
    days: float  # mean days per period
    years: np.ndarray  # (T,) years since the first period
    phase: np.ndarray  # (T,) 2π · years
    fest_share: np.ndarray  # (T,) share of the period's days in a festival window (0 without festivals)
    sale_share: np.ndarray  # (T,) the same for sale events
    overlap: np.ndarray | None = None  # (T, E) festival days per period (festivals only)
    period_days: np.ndarray | None = None  # (T,) days per period (festivals only)
    fest_names: list[str] | None = None

    @property
    def festive(self) -> bool:
        return self.overlap is not None


@dataclass
class _Skus:
    """The hierarchy and every SKU's prices, (T, S) arrays in rupees (discount: fraction of list price)."""

    brands: list[str]
    skus: list[str]
    sku_brand: np.ndarray  # (S,) brand index
    base_price: np.ndarray  # (S,)
    base_units: np.ndarray  # (S,)
    discount: np.ndarray
    mrp: np.ndarray
    price: np.ndarray
    cross: np.ndarray

    @property
    def base_log(self) -> np.ndarray:
        return np.log(self.base_price * self.base_units)


@dataclass
class _Params:
    """The true effect parameters: elasticities, brand media multipliers, seasonality per brand."""

    brand_own: np.ndarray  # (B,)
    own: np.ndarray  # (S,)
    brand_cross: np.ndarray  # (B,)
    media_mult: np.ndarray  # (B,)
    season_amp: np.ndarray  # (B,)
    season_phase: np.ndarray  # (B,)


@dataclass
class _Media:
    """Media response before the brand multipliers, and the spend it came from.

    National series (the original generator): ``response`` (T, C) and ``response_zero`` (C,), the response at
    zero spend. Spend units (scenario options): ``response`` (T, S, C) of each SKU's unit, ``response_zero`` None.
    """

    response: np.ndarray
    response_zero: np.ndarray | None
    spend: np.ndarray  # (T, C) rupees per period over all units
    adstock_mean: np.ndarray  # (C,) national-equivalent mean adstock, rupees
    unit_spend: np.ndarray | None = None  # (T, U, C) spend per unit (spend units only)
    unit_of_sku: np.ndarray | None = None  # (S,) unit index of each SKU


def generate(config: SyntheticConfig | None = None) -> SyntheticPanel:
    """Draw one panel from the generating process described in the module docstring.

    The steps below run in the order of their random draws, which fixes the panel: the main stream ``rng`` draws the
    national spend, promotions and NPS, then prices, then the effect parameters, then the noise; the scenario stream
    ``xrng`` draws the scenario spend, then the brands' festival sensitivities.
    """
    cfg = config or SyntheticConfig()
    rng = np.random.default_rng(cfg.seed)
    xrng = np.random.default_rng([cfg.seed, 7919])  # draws of the scenario options only: the main stream stays as it was
    extended = _extended(cfg)
    cal = _calendar(cfg)
    spend, promo_days, nps = _national_inputs(rng, cfg, cal)
    skus = _hierarchy_and_prices(rng, cfg, cal, promo_days)
    params = _effect_parameters(rng, cfg, skus)
    media = _unit_media(xrng, cfg, cal, skus, spend) if extended else _national_media(cfg, spend)
    effects, sensitivity = _base_effects(xrng, cfg, cal, skus, params, promo_days, nps)
    beta_scale, drops = _add_media_effects(effects, cfg, media, params.media_mult[skus.sku_brand])
    mu = sum(effects.values())  # (T, S)
    noise = rng.normal(0.0, cfg.noise_sd, (cfg.n_periods, len(skus.skus)))
    log_gmv = mu + noise
    gmv = np.exp(log_gmv)
    units = np.maximum(np.round(gmv / skus.price), 1.0)
    contributions, roi = _contributions(cfg, mu, drops, media.spend)
    resid = log_gmv - mu
    noise_floor_r2 = float(1 - (resid**2).sum() / ((log_gmv - log_gmv.mean()) ** 2).sum())

    frame, truth_rows = _frames(cfg, cal, skus, media, gmv, units, promo_days, nps, mu, effects, extended)
    truth = _truth(cfg, skus, params, media, contributions, roi, noise_floor_r2)
    if extended:
        truth.update(_scenario_truth(cfg, cal, skus, effects, mu, contributions, beta_scale, sensitivity))
    return SyntheticPanel(frame=frame, truth=truth, truth_rows=truth_rows, config=cfg)


def _calendar(cfg: SyntheticConfig) -> _Calendar:
    n_t = cfg.n_periods
    periods = pd.date_range(cfg.start, periods=n_t, freq=cfg.freq)
    days = days_per_period(cfg.freq)  # refuses a frequency other than weekly or monthly
    ppy = float(periods_per_year(cfg.freq))
    years = np.arange(n_t) / ppy
    phase = 2 * np.pi * years
    if cfg.seasonality == "smooth":
        return _Calendar(periods, days, years, phase, np.zeros(n_t), np.zeros(n_t))
    overlap, period_days, fest_names = festival_overlap(periods, cfg.freq, cfg.festivals)
    fest_share = np.clip(overlap.sum(1) / period_days, 0.0, 1.0)  # (T,) share of the period's days in a festival window
    sale = np.array([FESTIVALS[n].sale for n in fest_names], dtype=bool)
    sale_share = np.clip(overlap[:, sale].sum(1) / period_days, 0.0, 1.0)
    return _Calendar(periods, days, years, phase, fest_share, sale_share, overlap, period_days, fest_names)


def _national_inputs(rng: np.random.Generator, cfg: SyntheticConfig, cal: _Calendar) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """National media spend (T, C) (common budget factor × bursty flighting × noise), promotion days (T,), NPS (T, B)."""
    n_t = cfg.n_periods
    budget = np.exp(_ar1(rng, n_t, 0.7, 0.15) + 0.15 * np.sin(cal.phase - 1.0))
    spend = np.zeros((n_t, len(cfg.channels)))
    for c, ch in enumerate(cfg.channels):
        on = _flighting(rng, n_t, ch.on_air_share)
        level = budget * np.exp(rng.normal(0.0, 0.35, n_t))
        spend[:, c] = np.round(ch.mean_spend * on * level / level.mean(), 0)
    promo_on = rng.random(n_t) < 0.18
    promo_days = np.where(promo_on, rng.integers(2, int(cal.days) + 1, n_t), 0).astype(float)
    nps = 50.0 + np.stack([_ar1(rng, n_t, 0.8, 1.5) for _ in range(cfg.n_brands)], 1)  # (T, B)
    return spend, promo_days, nps


def _hierarchy_and_prices(rng: np.random.Generator, cfg: SyntheticConfig, cal: _Calendar, promo_days: np.ndarray) -> _Skus:
    """Brands and SKUs; list prices that step now and then, discounts deeper in promotions, the cross price."""
    n_t, n_b, n_k = cfg.n_periods, cfg.n_brands, cfg.skus_per_brand
    n_s = n_b * n_k
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
        0.05 + 0.20 * (promo_days / cal.days)[:, None] + 0.04 * np.abs(rng.normal(0, 1, (n_t, n_s))), 0.0, 0.6
    )
    if cfg.festival_discount:  # sale events come with deeper discounts
        discount = np.clip(discount + cfg.festival_discount * cal.sale_share[:, None], 0.0, 0.6)
    mrp = np.exp(log_list)
    price = mrp * (1.0 - discount)
    # cross price: mean price of the other SKUs of the same brand (all SKUs when a brand has one)
    brand_sum = np.stack([price[:, sku_brand == b].sum(1) for b in range(n_b)], 1)[:, sku_brand]
    peers = np.bincount(sku_brand)[sku_brand] - 1
    cross = np.where(peers > 0, (brand_sum - price) / np.maximum(peers, 1), (price.sum(1, keepdims=True) - price) / max(n_s - 1, 1))
    return _Skus(brands, skus, sku_brand, base_price, base_units, discount, mrp, price, cross)


def _effect_parameters(rng: np.random.Generator, cfg: SyntheticConfig, skus: _Skus) -> _Params:
    n_b, n_s = cfg.n_brands, len(skus.skus)
    lo, hi = cfg.own_elasticity_range
    brand_own = rng.uniform(lo, hi, n_b)
    own = np.clip(brand_own[skus.sku_brand] + rng.normal(0, cfg.sku_elasticity_sd, n_s), -3.0, -0.5)
    brand_cross = rng.uniform(*cfg.cross_elasticity_range, n_b)
    media_mult = rng.uniform(1 - cfg.media_brand_spread, 1 + cfg.media_brand_spread, n_b)
    season_amp = cfg.season_amplitude * rng.uniform(0.6, 1.4, n_b)
    season_phase = rng.uniform(0, 2 * np.pi, n_b)
    return _Params(brand_own, own, brand_cross, media_mult, season_amp, season_phase)


def _national_media(cfg: SyntheticConfig, spend: np.ndarray) -> _Media:
    """The original generator's media: one geometric-adstock series per channel."""
    decays = np.array([ch.decay for ch in cfg.channels])
    adstock = geometric_adstock(spend, decays, cfg.max_lag)
    adstock_mean = adstock.mean(axis=0)
    x_media = adstock / np.where(adstock_mean > 0, adstock_mean, 1.0)
    response = np.stack([media_response(x_media[:, c], ch, cfg.saturation) for c, ch in enumerate(cfg.channels)], 1)
    response_zero = np.stack([media_response(np.zeros(1), ch, cfg.saturation) for ch in cfg.channels], 1)[0]
    return _Media(response, response_zero, spend, adstock_mean)


def _unit_media(xrng: np.random.Generator, cfg: SyntheticConfig, cal: _Calendar, skus: _Skus, spend: np.ndarray) -> _Media:
    """Media with the scenario options: one spend series per unit (national, brand or SKU), each unit's response at
    its own spend intensity."""
    n_t, n_s, n_c = cfg.n_periods, len(skus.skus), len(cfg.channels)
    unit_of_sku = {"national": np.zeros(n_s, int), "brand": skus.sku_brand, "sku": np.arange(n_s)}[cfg.spend_level]
    n_u = int(unit_of_sku.max()) + 1
    shares = _unit_shares(np.exp(skus.base_log), unit_of_sku, n_u)
    if _new_spend(cfg):
        unit_spend = _scenario_spend(xrng, cfg, n_t, shares, cal.phase, cal.fest_share)  # (T, U, C)
    else:
        unit_spend = spend[:, None, :]
    flat = unit_spend.reshape(n_t, n_u * n_c)
    adstock_u = channel_adstock(flat, cfg.channels * n_u, cfg.adstock, cfg.max_lag).reshape(n_t, n_u, n_c)
    adstock_mean = adstock_u.sum(1).mean(axis=0)  # national-equivalent mean adstock per channel
    ref = shares[None, :, None] * np.where(adstock_mean > 0, adstock_mean, 1.0)[None, None, :]
    x_unit = adstock_u / ref  # spend intensity of each unit in multiples of the channel's average intensity
    response_u = np.stack([media_response(x_unit[:, :, c], ch, cfg.saturation) for c, ch in enumerate(cfg.channels)], 2)
    response_sku = response_u[:, unit_of_sku, :]  # (T, S, C)
    return _Media(response_sku, None, unit_spend.sum(1), adstock_mean, unit_spend, unit_of_sku)


def _base_effects(
    xrng: np.random.Generator, cfg: SyntheticConfig, cal: _Calendar, skus: _Skus, params: _Params, promo_days: np.ndarray, nps: np.ndarray
) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
    """Every additive term of log GMV but media, (T, S) each, in the order they are summed; and the brands'
    festival sensitivities (festivals only)."""
    n_t, n_s, sku_brand = cfg.n_periods, len(skus.skus), skus.sku_brand
    season = params.season_amp[None, :] * np.sin(cal.phase[:, None] + params.season_phase[None, :])  # (T, B)
    if cfg.seasonality == "festival":
        season = np.zeros_like(season)
    log_cross_ref = np.log(skus.cross).mean(0)
    effects = {  # each additive term of log GMV, (T, S)
        "base": np.broadcast_to(skus.base_log[None, :], (n_t, n_s)),
        "season": season[:, sku_brand],
    }
    sensitivity = None
    if cal.festive:
        sensitivity = xrng.uniform(0.5, 1.5, cfg.n_brands)  # how festive each brand's category is
        lifts = np.array([FESTIVALS[n].lift for n in cal.fest_names]) * cfg.festival_lift
        daily = np.expm1(lifts[None, None, :] * sensitivity[None, :, None])  # (1, B, E) relative daily lift
        festival = np.log1p((daily * (cal.overlap / cal.period_days[:, None])[:, None, :]).sum(-1))  # (T, B)
        effects["festival"] = festival[:, sku_brand]
    effects.update(
        {
            "trend": np.broadcast_to(cfg.trend_per_year * cal.years[:, None], (n_t, n_s)),
            "own_price": params.own[None, :] * np.log(skus.price / skus.base_price[None, :]),
            "cross_price": params.brand_cross[sku_brand][None, :] * (np.log(skus.cross) - log_cross_ref[None, :]),
            "discount": cfg.discount_effect * skus.discount,
            "promo": np.broadcast_to(cfg.promo_effect * (promo_days / cal.days)[:, None], (n_t, n_s)),
            "nps": cfg.nps_effect * (nps[:, sku_brand] - 50.0),
        }
    )
    return effects, sensitivity


def _add_media_effects(effects: dict[str, np.ndarray], cfg: SyntheticConfig, media: _Media, mult: np.ndarray) -> tuple[float, list[np.ndarray]]:
    """Add each channel's ``media_<name>`` term to ``effects`` (``mult``: (S,) brand multiplier of each SKU).

    Returns the beta scale (``media_share``; 1 otherwise) and, per channel, what zero spend takes off the mean log GMV.
    """
    beta_scale = 1.0
    if media.response_zero is None:  # spend units
        effect = media.response * mult[None, :, None]  # (T, S, C), 0 at zero spend for every form
        if cfg.media_share is not None:
            beta_scale = _beta_scale(sum(effects.values()), effect.sum(-1), cfg.media_share)
            effect = effect * beta_scale
        for c, ch in enumerate(cfg.channels):
            effects[f"media_{ch.name}"] = effect[:, :, c]
        return beta_scale, [effect[:, :, c] for c in range(len(cfg.channels))]
    for c, ch in enumerate(cfg.channels):
        effects[f"media_{ch.name}"] = media.response[:, c][:, None] * mult[None, :]
    return beta_scale, [(media.response[:, c] - media.response_zero[c])[:, None] * mult[None, :] for c in range(len(cfg.channels))]


def _contributions(cfg: SyntheticConfig, mu: np.ndarray, drops: list[np.ndarray], spend: np.ndarray) -> tuple[dict, dict]:
    """Per channel: contribution in rupees on the noiseless median (GMV minus GMV without the channel) and ROI."""
    median_gmv = np.exp(mu)
    contributions, roi = {}, {}
    for c, ch in enumerate(cfg.channels):
        contrib = float((median_gmv - np.exp(mu - drops[c])).sum())
        contributions[ch.name] = contrib
        roi[ch.name] = contrib / float(spend[:, c].sum()) if spend[:, c].sum() > 0 else float("nan")
    return contributions, roi


def _frames(
    cfg: SyntheticConfig, cal: _Calendar, skus: _Skus, media: _Media, gmv: np.ndarray, units: np.ndarray,
    promo_days: np.ndarray, nps: np.ndarray, mu: np.ndarray, effects: dict[str, np.ndarray], extended: bool,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The long panel (one row per period × SKU, the canonical columns) and the per-row truth (mean and terms)."""
    n_t, n_s, sku_brand, periods = cfg.n_periods, len(skus.skus), skus.sku_brand, cal.periods
    tt, ss = np.meshgrid(np.arange(n_t), np.arange(n_s), indexing="ij")
    tt, ss = tt.ravel(), ss.ravel()
    frame = pd.DataFrame(
        {
            PERIOD: periods[tt],
            BRAND: np.array(skus.brands)[sku_brand[ss]],
            SKU: np.array(skus.skus)[ss],
            GMV: gmv[tt, ss],
            UNITS: units[tt, ss],
            PRICE: skus.price[tt, ss],
            MRP: skus.mrp[tt, ss],
            CROSS_PRICE: skus.cross[tt, ss],
            DISCOUNT: skus.discount[tt, ss],
            PROMO_DAYS: promo_days[tt],
            NPS: nps[tt, sku_brand[ss]],
        }
    )
    if extended:
        # national spend repeats on every row of the period (counted once); a brand's spend is split over its SKUs
        # by size, so the rows of a period add up to what was spent, as a panel CSV with per-row spend does
        unit_of_sku, n_u = media.unit_of_sku, media.unit_spend.shape[1]
        size = np.exp(skus.base_log)
        within = size / np.bincount(unit_of_sku, weights=size, minlength=n_u)[unit_of_sku] if cfg.spend_level == "brand" else np.ones(n_s)
        row_spend = media.unit_spend[tt, unit_of_sku[ss], :] * within[ss][:, None]  # (rows, C)
        for c, ch in enumerate(cfg.channels):
            frame[spend_col(ch.name)] = row_spend[:, c]
        frame[TOTAL_SPEND] = row_spend.sum(1)
    else:
        for c, ch in enumerate(cfg.channels):
            frame[spend_col(ch.name)] = media.spend[tt, c]
        frame[TOTAL_SPEND] = media.spend.sum(1)[tt]
    frame = frame.sort_values([PERIOD, BRAND, SKU], kind="stable").reset_index(drop=True)
    frame[ROW] = np.arange(len(frame)) + 2  # line in panel.csv (header = line 1)
    frame[FIT_WEIGHT] = 1.0
    truth_rows = pd.DataFrame(
        {PERIOD: periods[tt], SKU: np.array(skus.skus)[ss], "log_gmv_mean": mu[tt, ss], **{f"effect_{k}": v[tt, ss] for k, v in effects.items()}}
    )
    truth_rows = truth_rows.sort_values([PERIOD, SKU], kind="stable").reset_index(drop=True)
    return frame, truth_rows


def _truth(cfg: SyntheticConfig, skus: _Skus, params: _Params, media: _Media, contributions: dict, roi: dict, noise_floor_r2: float) -> dict:
    """The truth of the original generator: every parameter, contributions, ROI, the noise floor."""
    brands, sku_names, sku_brand, spend = skus.brands, skus.skus, skus.sku_brand, media.spend
    return {
        "config": _config_dict(cfg),
        "brands": brands,
        "skus": {s: brands[sku_brand[i]] for i, s in enumerate(sku_names)},
        "own_price_elasticity": {s: float(params.own[i]) for i, s in enumerate(sku_names)},
        "brand_own_price_elasticity": {b: float(params.brand_own[i]) for i, b in enumerate(brands)},
        "cross_price_elasticity": {b: float(params.brand_cross[i]) for i, b in enumerate(brands)},
        "media_brand_multiplier": {b: float(params.media_mult[i]) for i, b in enumerate(brands)},
        "adstock_decay": {ch.name: ch.decay for ch in cfg.channels},
        "adstock_mean_inr": {ch.name: float(media.adstock_mean[c]) for c, ch in enumerate(cfg.channels)},
        "contribution_inr": contributions,
        "roi": roi,
        "total_spend_inr": {ch.name: float(spend[:, c].sum()) for c, ch in enumerate(cfg.channels)},
        "noise_sd": cfg.noise_sd,
        "noise_floor_r2_log_gmv": noise_floor_r2,
        "base_price_inr": {s: float(skus.base_price[i]) for i, s in enumerate(sku_names)},
    }


def _scenario_truth(
    cfg: SyntheticConfig, cal: _Calendar, skus: _Skus, effects: dict, mu: np.ndarray, contributions: dict, beta_scale: float, sensitivity: np.ndarray | None
) -> dict:
    """The truth keys a panel with scenario options adds (module docstring)."""
    median_gmv = np.exp(mu)
    all_media = sum(effects[f"media_{ch.name}"] for ch in cfg.channels)
    total_contrib = sum(contributions.values())
    out = {
        "media_share_of_gmv": float((median_gmv - np.exp(mu - all_media)).sum() / median_gmv.sum()),
        "contribution_share": {k: v / total_contrib for k, v in contributions.items()} if total_contrib else {},
        "media_beta_scale": float(beta_scale),
        "spend_level": cfg.spend_level,
        "saturation_by_channel": {ch.name: ch.saturation or cfg.saturation for ch in cfg.channels},
        "adstock_by_channel": {ch.name: ch.adstock or cfg.adstock for ch in cfg.channels},
    }
    if cal.festive:
        out["festival_calendar"] = {n: list(FESTIVALS[n].dates) for n in cal.fest_names}
        out["festival_brand_sensitivity"] = {b: float(sensitivity[i]) for i, b in enumerate(skus.brands)}
    return out


def _new_spend(cfg: SyntheticConfig) -> bool:
    """Whether the scenario draws its own spend (the original national series otherwise)."""
    return (
        cfg.spend_level != "national"
        or cfg.spend_correlation is not None
        or cfg.festival_spend_lift != 0
        or any(ch.pattern != "flighted" for ch in cfg.channels)
    )


def _scenario_spend(
    rng: np.random.Generator, cfg: SyntheticConfig, n_t: int, shares: np.ndarray, phase: np.ndarray, fest_share: np.ndarray
) -> np.ndarray:
    """(T, U, C) spend per period, spend unit (one for national) and channel, rupees.

    Log spend = sd·(√ρ·common budget factor + √(1 − ρ)·own noise) + festival lift, times a per-unit intensity (brand /
    SKU spend), times on-air flighting; a ``flat`` channel is its mean within ±:data:`FLAT_CV`. Each unit's spend is
    its share of the channel's mean spend, so the channel's total per period stays near ``mean_spend``.
    """
    n_u, n_c = len(shares), len(cfg.channels)
    rho = 0.3 if cfg.spend_correlation is None else cfg.spend_correlation
    sd = 0.4
    common = _ar1(rng, n_t, 0.7, 1.0)
    common = (common - common.mean()) / max(common.std(), 1e-12)
    out = np.zeros((n_t, n_u, n_c))
    for c, ch in enumerate(cfg.channels):
        if ch.pattern == "flat":
            level = 1.0 + FLAT_CV * np.clip(rng.normal(0.0, 1.0, (n_t, n_u)), -2.0, 2.0)
            out[:, :, c] = np.round(ch.mean_spend * shares[None, :] * level, 0)
            continue
        intensity = np.exp(rng.normal(0.0, 0.25, n_u)) if n_u > 1 else np.ones(1)
        log_level = sd * (np.sqrt(rho) * common[:, None] + np.sqrt(1 - rho) * rng.normal(0.0, 1.0, (n_t, n_u)))
        log_level = log_level + 0.15 * np.sin(phase - 1.0)[:, None] + cfg.festival_spend_lift * fest_share[:, None]
        level = np.exp(log_level)
        if ch.pattern == "flighted":
            on = np.stack([_flighting(rng, n_t, ch.on_air_share) for _ in range(n_u)], 1)
        else:
            on = np.ones((n_t, n_u), dtype=bool)
        out[:, :, c] = np.round(ch.mean_spend * shares[None, :] * intensity[None, :] * on * level / level.mean(0, keepdims=True), 0)
    return out


def _beta_scale(mu: np.ndarray, media: np.ndarray, share: float) -> float:
    """k such that media's total effect ``Σ e^{mu + kM}(1 − e^{−kM}) / Σ e^{mu + kM}`` equals ``share`` (bisection on log k)."""
    if not (media > 0).any():
        raise ConfigError("media_share needs media with an effect (every channel's response is zero)")
    w = mu - mu.max()  # scale-free weights

    def achieved(k: float) -> float:
        g = np.exp(w + k * media)
        return float((g * -np.expm1(-k * media)).sum() / g.sum())

    lo, hi = -12.0, 8.0  # log k
    for _ in range(80):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if achieved(float(np.exp(mid))) < share else (lo, mid)
    return float(np.exp(0.5 * (lo + hi)))


def _config_dict(cfg: SyntheticConfig) -> dict:
    d = asdict(cfg)
    d["own_elasticity_range"] = list(cfg.own_elasticity_range)
    d["cross_elasticity_range"] = list(cfg.cross_elasticity_range)
    defaults = SyntheticConfig.__dataclass_fields__
    for k in _NEW_FIELDS:  # scenario options appear in the truth only when set (the default truth stays byte-identical)
        if d[k] == defaults[k].default:
            del d[k]
    for ch in d["channels"]:
        for k, v in _NEW_CHANNEL_FIELDS.items():
            if ch[k] == v:
                del ch[k]
    return d


def load_synthetic(label: str | None = None, **kwargs) -> Panel:
    """Generate a synthetic panel in memory (no files needed) and wrap it as a :class:`Panel`.

    ``label`` names the panel's source in messages (default ``synthetic(seed=<seed>)``); the other keyword
    arguments are :class:`SyntheticConfig` fields.
    """
    channels = kwargs.pop("channels", None)
    cfg = SyntheticConfig(**kwargs) if channels is None else SyntheticConfig(channels=list(channels), **kwargs)
    sp = generate(cfg)
    source = label or f"synthetic(seed={cfg.seed})"
    cols = [c for c in sp.frame.columns if c not in (ROW, FIT_WEIGHT)]
    return Panel(
        frame=sp.frame,
        channels=[ch.name for ch in cfg.channels],
        freq=cfg.freq,
        source=source,
        column_sources={c: f"{source}:{c}" for c in cols},
        truth={**sp.truth, "rows": sp.truth_rows},
    )
