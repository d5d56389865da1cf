"""Feature engineering (seed §3.4): the feature table with roles, and the model feature specs.

Every feature is a column of :attr:`FeatureTable.frame` (one row per period × SKU). The subset the model
uses is described by :class:`FeatureSpec` objects: role (which shape constraint applies), the transform
from raw units (``log`` or ``identity``), and how it is centred and scaled. Scaling statistics are never
computed here: they are fitted per fold on training periods only (:mod:`nam_mmm.data.features.scaling`).
Media enter the model as lag stacks of raw spend (rupees) so adstock can be fixed or learned; the
``adstock_<channel>`` columns here use the configured fixed decay, for inspection and diagnostics.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from nam_mmm.data.calendar.events import Event, resolve_events
from nam_mmm.data.calendar.features import calendar_features, is_calendar_feature
from nam_mmm.data.features.adstock import geometric_adstock
from nam_mmm.data.panel import (
    BRAND,
    CROSS_PRICE,
    DISCOUNT,
    NPS,
    PERIOD,
    PRICE,
    PROMO_DAYS,
    SKU,
    Panel,
    spend_col,
)
from nam_mmm.errors import ConfigError, DataError

ROLES = (
    "own_price",
    "cross_price",
    "discount",
    "promo",
    "media",
    "distribution",
    "brand_health",
    "seasonality",
    "trend",
    "control",
)


@dataclass(frozen=True)
class FeatureSpec:
    """How one model feature is read and scaled.

    Attributes:
        name: column of the feature table.
        role: one of :data:`ROLES`; decides the shape constraint through ``conf/constraints``.
        transform: ``log`` (natural log of a positive raw value) or ``identity``.
        center: ``sku`` (per-SKU training mean), ``global`` (training mean) or ``none``.
        scale: ``std`` (training standard deviation after centring), ``range`` (training max − min) or ``none``.
        elasticity: whether ``d log GMV / d log x`` is reported (raw values must be positive).
        units: unit of the raw value, for reports.
    """

    name: str
    role: str
    transform: str = "identity"
    center: str = "global"
    scale: str = "std"
    elasticity: bool = False
    units: str = ""

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ConfigError(f"feature '{self.name}': unknown role '{self.role}' (known: {', '.join(ROLES)})")
        if self.transform not in ("log", "identity"):
            raise ConfigError(f"feature '{self.name}': transform must be log or identity, got '{self.transform}'")
        if self.center not in ("sku", "global", "none"):
            raise ConfigError(f"feature '{self.name}': center must be sku, global or none, got '{self.center}'")
        if self.scale not in ("std", "range", "none"):
            raise ConfigError(f"feature '{self.name}': scale must be std, range or none, got '{self.scale}'")


# The seed's scaling table: log for prices (centred per SKU so brand curves compare like with like),
# standard scaling for controls, min-max for counts, none for cyclic and 0/1 features.
DEFAULT_SPECS: dict[str, FeatureSpec] = {
    PRICE: FeatureSpec(PRICE, "own_price", "log", "sku", "std", True, "rupees/unit"),
    CROSS_PRICE: FeatureSpec(CROSS_PRICE, "cross_price", "log", "sku", "std", True, "rupees/unit"),
    DISCOUNT: FeatureSpec(DISCOUNT, "discount", "identity", "global", "std", True, "fraction of list price"),
    PROMO_DAYS: FeatureSpec(PROMO_DAYS, "promo", "identity", "none", "range", True, "days"),
    "promo_flag": FeatureSpec("promo_flag", "promo", "identity", "none", "none", False, "0/1"),
    NPS: FeatureSpec(NPS, "brand_health", "identity", "global", "std", True, "NPS points"),
    "nps_lag1": FeatureSpec("nps_lag1", "brand_health", "identity", "global", "std", True, "NPS points"),
    "nps_change": FeatureSpec("nps_change", "brand_health", "identity", "global", "std", False, "NPS points"),
    "month_sin": FeatureSpec("month_sin", "seasonality", "identity", "none", "none", False, ""),
    "month_cos": FeatureSpec("month_cos", "seasonality", "identity", "none", "none", False, ""),
    "festive": FeatureSpec("festive", "seasonality", "identity", "none", "none", False, "0/1"),
    "time_index": FeatureSpec("time_index", "trend", "identity", "global", "std", False, "periods"),
    "price_index": FeatureSpec("price_index", "own_price", "log", "sku", "std", True, "ratio"),
    "cross_price_index": FeatureSpec("cross_price_index", "cross_price", "log", "sku", "std", True, "ratio"),
    "outage": FeatureSpec("outage", "control", "identity", "none", "none", False, "0/1"),
}


@dataclass
class FeatureConfig:
    """Feature settings (``data.features`` in config).

    Attributes:
        model_features: non-media features the model uses, by name (media channels are always used).
        adstock_decay: fixed geometric decay per period, one value for all channels or a mapping per channel
            (``default`` key for the rest); the model may learn it instead.
        max_lag: adstock carry-over length in periods (lag stack is spend at t, t−1, …, t−max_lag).
        spend_lags: lags of raw spend added to the table (periods).
        nps_lags: lags of NPS added to the table (periods).
        festive_months: calendar months flagged as the festive season (India: Oct–Dec).
        atl_channels: channels counted as above-the-line (the rest are below-the-line).
        cross_price_fallback: for a brand with one SKU, ``all`` uses the other SKUs of the panel, ``none`` leaves it
            missing (error if used).
        specs: overrides of the default :class:`FeatureSpec` fields, by feature name.
        fourier_order: harmonics of the year: ``fourier_sin_k``/``fourier_cos_k`` for k = 2..order join the model
            features (1 = only ``month_sin``/``month_cos``).
        events: retail events whose day share per period joins the model features as ``event_<name>`` (names of
            :data:`nam_mmm.data.calendar.events.EVENTS`, or ``{name: {dates, days_before, days_after}}``).
    """

    model_features: list[str] = field(
        default_factory=lambda: [PRICE, CROSS_PRICE, DISCOUNT, PROMO_DAYS, NPS, "month_sin", "month_cos", "time_index"]
    )
    adstock_decay: float | dict[str, float] = 0.5
    max_lag: int = 8
    spend_lags: list[int] = field(default_factory=lambda: [1])
    nps_lags: list[int] = field(default_factory=lambda: [1])
    festive_months: list[int] = field(default_factory=lambda: [10, 11, 12])
    atl_channels: list[str] = field(default_factory=lambda: ["tv", "sponsorship", "radio", "content_marketing"])
    cross_price_fallback: str = "all"
    specs: dict[str, dict] = field(default_factory=dict)
    fourier_order: int = 1
    events: list[str] | dict[str, dict | None] | None = None

    def resolved_events(self) -> dict[str, Event]:
        return resolve_events(self.events)

    def calendar_feature_names(self) -> list[str]:
        """The Fourier and event features this config adds to the model features."""
        fourier = [f"fourier_{f}_{k}" for k in range(2, int(self.fourier_order) + 1) for f in ("sin", "cos")]
        return fourier + [f"event_{name}" for name in self.resolved_events()]

    def decay_for(self, channels: list[str]) -> np.ndarray:
        d = self.adstock_decay
        if isinstance(d, (int, float)):
            return np.full(len(channels), float(d))
        mapping = dict(d)
        default = mapping.pop("default", 0.5)
        unknown = set(mapping) - set(channels)
        if unknown:
            raise ConfigError(f"adstock_decay names unknown channel(s): {', '.join(sorted(unknown))}")
        return np.array([float(mapping.get(c, default)) for c in channels])


@dataclass
class FeatureTable:
    """The engineered features of a panel and the specs of the ones the model uses."""

    frame: pd.DataFrame
    panel: Panel
    config: FeatureConfig
    model_specs: list[FeatureSpec]
    decay: np.ndarray  # fixed adstock decay per channel
    descriptions: dict[str, dict]  # name -> role, formula, units, source

    @property
    def channels(self) -> list[str]:
        return self.panel.channels

    def roles_table(self) -> pd.DataFrame:
        used = {s.name for s in self.model_specs} | {f"adstock_{c}" for c in self.channels}
        rows = [{"feature": k, **v, "in_model": k in used} for k, v in self.descriptions.items()]
        return pd.DataFrame(rows)


def _cross_price(frame: pd.DataFrame, fallback: str) -> pd.Series:
    g = frame.groupby([PERIOD, BRAND])[PRICE]
    total, count = g.transform("sum"), g.transform("count")
    within = (total - frame[PRICE]) / (count - 1).where(count > 1)
    if fallback == "all":
        ga = frame.groupby(PERIOD)[PRICE]
        all_total, all_count = ga.transform("sum"), ga.transform("count")
        within = within.fillna((all_total - frame[PRICE]) / (all_count - 1).where(all_count > 1))
    return within


class _TableBuilder:
    """The feature frame being built and the description of each column (role, formula, units, source)."""

    def __init__(self, panel: Panel) -> None:
        self.panel = panel
        self.df = panel.frame.copy()
        self.desc: dict[str, dict] = {}

    def add(self, name: str, values, role: str, formula: str, units: str, source: str) -> None:
        self.df[name] = values
        self.desc[name] = {"role": role, "formula": formula, "units": units, "source": source}

    def given(self, name: str, role: str, formula: str, units: str) -> None:
        """Describe a column that comes with the panel."""
        self.desc[name] = {"role": role, "formula": formula, "units": units, "source": self.panel.column_sources.get(name, self.panel.source)}


def _price_and_promotion(b: _TableBuilder, cfg: FeatureConfig) -> None:
    df = b.df
    if PRICE in df:
        b.given(PRICE, "own_price", "GMV / units (average selling price)", "rupees/unit")
        if CROSS_PRICE not in df or df[CROSS_PRICE].isna().all():
            b.add(CROSS_PRICE, _cross_price(df, cfg.cross_price_fallback), "cross_price", "mean price of the other SKUs of the brand in the period", "rupees/unit", "derived from price")
        else:
            b.given(CROSS_PRICE, "cross_price", "given", "rupees/unit")
        brand_mean = df.groupby([PERIOD, BRAND])[PRICE].transform("mean")
        b.add("price_index", df[PRICE] / brand_mean, "own_price", "price / mean price of the brand's SKUs in the period", "ratio", "price")
        b.add("cross_price_index", df[CROSS_PRICE] / df[PRICE], "cross_price", "cross_price / price", "ratio", "price, cross_price")
    if DISCOUNT in df:
        b.given(DISCOUNT, "discount", "(list price − price) / list price", "fraction")
    if PROMO_DAYS in df:
        b.given(PROMO_DAYS, "promo", "promotion days in the period", "days")
        b.add("promo_flag", (df[PROMO_DAYS] > 0).astype(float), "promo", "promo_days > 0", "0/1", "promo_days")
    if NPS in df:
        b.given(NPS, "brand_health", "net promoter score", "NPS points")
        g = df.groupby(SKU)[NPS]
        for lag in cfg.nps_lags:
            b.add(f"nps_lag{lag}", g.shift(lag).fillna(df[NPS]), "brand_health", f"NPS {lag} period(s) earlier (first periods: current)", "NPS points", "nps")
        b.add("nps_change", g.diff().fillna(0.0), "brand_health", "NPS − previous NPS", "NPS points", "nps")


def _calendar(b: _TableBuilder, cfg: FeatureConfig) -> None:
    events = cfg.resolved_events()
    calendar = calendar_features(b.df[PERIOD], b.panel.periods, cfg.festive_months, int(cfg.fourier_order), events)
    for k in range(2, int(cfg.fourier_order) + 1):
        b.add(f"fourier_sin_{k}", calendar[f"fourier_sin_{k}"], "seasonality", f"sin(2π · {k} · day of year / days in year)", "", "period")
        b.add(f"fourier_cos_{k}", calendar[f"fourier_cos_{k}"], "seasonality", f"cos(2π · {k} · day of year / days in year)", "", "period")
    for name, ev in events.items():
        b.add(f"event_{name}", calendar[f"event_{name}"], "seasonality", f"share of the period's days within {ev.days_before} days before to {ev.days_after} after {name}", "fraction", "period")
    b.add("month_sin", calendar["month_sin"], "seasonality", "sin(2π · month position / 12)", "", "period")
    b.add("month_cos", calendar["month_cos"], "seasonality", "cos(2π · month position / 12)", "", "period")
    b.add("festive", calendar["festive"], "seasonality", f"month in {cfg.festive_months}", "0/1", "period")
    b.add("time_index", calendar["time_index"], "trend", "period number from 0", "periods", "period")


def _media(b: _TableBuilder, cfg: FeatureConfig, decay: np.ndarray) -> None:
    panel, df = b.panel, b.df
    if not panel.channels:
        return
    by_period = panel.spend_by_period()
    spend = by_period.to_numpy()
    ad = pd.DataFrame(geometric_adstock(spend, decay, cfg.max_lag), index=by_period.index, columns=panel.channels)
    total = spend.sum(axis=1)
    atl = [c for c in panel.channels if c in cfg.atl_channels]
    for i, c in enumerate(panel.channels):
        sc = spend_col(c)
        b.given(sc, "media", "media spend", "rupees")
        b.add(f"adstock_{c}", df[PERIOD].map(ad[c]), "media", f"Σ_l {decay[i]:g}^l · spend[t−l], l ≤ {cfg.max_lag}", "rupees", sc)
        sov = pd.Series(np.where(total > 0, spend[:, i] / np.where(total > 0, total, 1), 0.0), index=by_period.index)
        b.add(f"sov_{c}", df[PERIOD].map(sov), "media", f"{c} spend / all channels' spend in the period (own share of voice)", "fraction", sc)
        for lag in cfg.spend_lags:
            lagged = by_period[sc].shift(lag).fillna(0.0)
            b.add(f"{sc}_lag{lag}", df[PERIOD].map(lagged), "media", f"spend {lag} period(s) earlier", "rupees", sc)
    b.add("atl_spend", df[PERIOD].map(by_period[[spend_col(c) for c in atl]].sum(1)), "media", f"sum of ATL channels {atl}", "rupees", "spend_*")
    b.add("btl_spend", df[PERIOD].map(by_period.sum(1)) - df["atl_spend"], "media", "sum of the other channels", "rupees", "spend_*")


def _model_specs(b: _TableBuilder, cfg: FeatureConfig) -> list[FeatureSpec]:
    """The specs of the model features (configured ones, calendar extras, the panel's controls), checked on the frame."""
    df, panel = b.df, b.panel
    specs = []
    for name in dict.fromkeys([*cfg.model_features, *cfg.calendar_feature_names(), *panel.controls]):
        if name not in df:
            raise ConfigError(f"model feature '{name}' is not in the feature table (available: {', '.join(sorted(b.desc))})")
        default = FeatureSpec(name, "seasonality", "identity", "none", "none") if is_calendar_feature(name) else FeatureSpec(name, "control")
        spec = FeatureSpec(**{**asdict(DEFAULT_SPECS.get(name, default)), **dict(cfg.specs.get(name, {}))})
        if df[name].isna().any():
            rows = sorted(df.loc[df[name].isna(), "_row"].astype(int))
            raise DataError(f"model feature '{name}' has missing values after cleaning", file=panel.source, column=name, rows=rows)
        if spec.transform == "log" and (df[name] <= 0).any():
            rows = sorted(df.loc[df[name] <= 0, "_row"].astype(int))
            raise DataError(f"feature '{name}' is log-transformed but has values <= 0", file=panel.source, column=name, rows=rows)
        specs.append(spec)
    return specs


def build_features(panel: Panel, config: FeatureConfig | dict | None = None) -> FeatureTable:
    """Add the §3.4 features to a cleaned panel and resolve the model feature specs."""
    cfg = config if isinstance(config, FeatureConfig) else FeatureConfig(**(config or {}))
    b = _TableBuilder(panel)
    _price_and_promotion(b, cfg)
    _calendar(b, cfg)
    decay = cfg.decay_for(panel.channels)
    _media(b, cfg, decay)
    for c in panel.controls:
        b.given(c, "control", "given", "")
    specs = _model_specs(b, cfg)
    return FeatureTable(frame=b.df, panel=panel, config=cfg, model_specs=specs, decay=decay, descriptions=b.desc)
