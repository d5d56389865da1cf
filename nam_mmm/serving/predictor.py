"""The served model: a table of raw features in, GMV in rupees out.

A request has one row per SKU-period in original units, the same columns the panel has:

* ``period`` (a date on the model's calendar, e.g. ``2024-01-01``; later periods continue the calendar at its
  frequency), ``sku`` (a SKU the model was trained on; ``brand``, if given, must match);
* every non-calendar model feature (``price``, ``cross_price``, ``discount``, ``promo_days``, ``nps``, controls …);
  the calendar features (:data:`~nam_mmm.data.calendar.features.CALENDAR_FEATURES`) are derived from ``period``;
* ``spend_<channel>`` for every media channel, in rupees (national media: one value per period).

Carry-over needs the spend of earlier periods: it comes from the training history, except where the request
itself gives a period's spend (the request wins), and is zero before the calendar and for periods in neither.
So a scenario for next month is one row per SKU; a what-if on a past month sends that month's rows.

A request is refused with a one-line :class:`~nam_mmm.errors.DataError` (HTTP 400 through MLflow) when it has no
rows, misses a column, or holds a value the model cannot take (not a number, infinite, ``<= 0`` for a logged
feature, negative spend ...). A value that the model can take but that lies far outside what it was trained on
(by the factor ``range_factor``, see :meth:`Predictor.out_of_range`) is predicted and flagged in the response's
``out_of_range`` column, since such a prediction is an extrapolation.

The predictor holds the trained model (a single model or the walk-forward fold ensemble, each member with its
own fold scaling), so predictions equal the training run's predictions for the same rows.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from nam_mmm.data.calendar.events import events_from_dicts, events_to_dicts
from nam_mmm.data.calendar.features import calendar_features, is_calendar_feature
from nam_mmm.data.features.model_inputs import media_lag_stacks, sku_brand_index, sku_spend_series
from nam_mmm.data.folds.datamodule import PanelDataModule
from nam_mmm.data.panel import BRAND, PERIOD, SKU, spend_col
from nam_mmm.errors import ConfigError, DataError
from nam_mmm.models.ensemble import FoldEnsemble
from nam_mmm.models.nam import HierarchicalNAM

REQUEST = "request"  # the "file" named in errors about a request
RANGE_FACTOR = 10.0  # default: inputs further than this factor outside the training range are flagged
OUT_OF_RANGE = "out_of_range"  # response column: "" or what lies outside the training range

log = logging.getLogger(__name__)


@dataclass
class ServingSpec:
    """What the predictor needs besides the model: the request schema and the spend history."""

    features: list[str]  # model feature columns in model order (calendar ones included)
    log_features: list[str]  # features that must be > 0 (log-transformed)
    skus: list[str]  # SKU index order
    sku_brand: dict[str, str]
    channels: list[str]
    national: bool  # national media: one spend per period (else per SKU and period)
    max_lag: int
    festive_months: list[int]
    periods: list[str]  # training calendar, ISO dates
    freq: str
    history: np.ndarray  # spend per period × channel (national) or period × SKU × channel, rupees
    ranges: dict[str, list[float]] = field(default_factory=dict)  # input column -> [min, max] on the training rows
    range_factor: float = RANGE_FACTOR  # see Predictor.out_of_range
    fourier_order: int = 1  # harmonics of the year among the features (data.features.fourier_order)
    events: dict[str, dict] = field(default_factory=dict)  # event name -> {dates, days_before, days_after}

    @property
    def inputs(self) -> list[str]:
        """Request columns besides period and SKU."""
        return [f for f in self.features if not is_calendar_feature(f)] + [spend_col(c) for c in self.channels]


class Predictor:
    """GMV from raw features with a trained HR-NAM (or the fold ensemble of a walk-forward run)."""

    def __init__(self, members: list[HierarchicalNAM], spec: ServingSpec, range_factor: float | None = None) -> None:
        self.model = FoldEnsemble(members).eval()
        if range_factor is not None:
            spec.range_factor = _check_factor(range_factor)
        self.spec = spec
        self.history = np.asarray(spec.history, dtype=float)
        self.calendar = pd.DatetimeIndex(pd.to_datetime(spec.periods))
        self._sku_index = {s: i for i, s in enumerate(spec.skus)}
        self._sku_brand_index = sku_brand_index(spec.skus, spec.sku_brand)

    @classmethod
    def from_datamodule(cls, members: list[HierarchicalNAM], dm: PanelDataModule, range_factor: float = RANGE_FACTOR) -> Predictor:
        """A predictor for models trained on the panel of ``dm`` (the history is the panel's own spend).

        The training range of each input is taken on the training rows of ``dm``'s fold (the last fold of a
        walk-forward run, whose training window is the longest).
        """
        table, panel = dm.table, dm.table.panel
        if panel.national_spend():
            history = dm.arrays.spend_per_period
        else:
            history = sku_spend_series(len(panel.periods), len(panel.skus), dm.arrays.media[:, :, 0], dm.arrays.period, dm.arrays.sku)
        spec = ServingSpec(
            features=[s.name for s in table.model_specs],
            log_features=[s.name for s in table.model_specs if s.transform == "log"],
            skus=list(panel.skus),
            sku_brand=dict(panel.sku_brand),
            channels=list(panel.channels),
            national=panel.national_spend(),
            max_lag=int(table.config.max_lag),
            festive_months=[int(m) for m in table.config.festive_months],
            fourier_order=int(table.config.fourier_order),
            events=events_to_dicts(table.config.resolved_events()),
            periods=[p.strftime("%Y-%m-%d") for p in panel.periods],
            freq=str(panel.freq),
            history=np.asarray(history, dtype=float),
            range_factor=_check_factor(range_factor),
        )
        train = table.frame.loc[dm.split_mask("train")]
        for col in spec.inputs:
            values = pd.to_numeric(train[col], errors="coerce").dropna()
            if len(values):
                spec.ranges[col] = [float(values.min()), float(values.max())]
        return cls(members, spec)

    # ------------------------------------------------------------------ persistence
    def to_dict(self) -> dict:
        return {"spec": asdict(self.spec), "ensemble": self.model.to_dict()}

    @classmethod
    def from_dict(cls, d: dict) -> Predictor:
        return cls(list(FoldEnsemble.from_dict(d["ensemble"]).members), ServingSpec(**d["spec"]))

    def save(self, path: str | Path) -> Path:
        torch.save(self.to_dict(), path)
        return Path(path)

    @classmethod
    def load(cls, path: str | Path, range_factor: float | None = None) -> Predictor:
        """The predictor saved at ``path``; ``range_factor`` replaces the saved one (see :meth:`out_of_range`)."""
        predictor = cls.from_dict(torch.load(path, map_location="cpu", weights_only=False))
        if range_factor is not None:
            predictor.spec.range_factor = _check_factor(range_factor)
        return predictor

    # ------------------------------------------------------------------ requests
    def request_rows(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Rows of a feature table (or panel) as a request: period as an ISO date, SKU and the inputs."""
        out = frame[[PERIOD, SKU, *self.spec.inputs]].reset_index(drop=True).copy()
        out[PERIOD] = pd.to_datetime(out[PERIOD]).dt.strftime("%Y-%m-%d")
        return out

    def _calendar_through(self, last: pd.Timestamp) -> pd.DatetimeIndex:
        if last <= self.calendar[-1]:
            return self.calendar
        extra = pd.date_range(self.calendar[-1], last, freq=self.spec.freq)[1:]
        return self.calendar.append(extra)

    def _validate(self, df: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
        """The request with parsed periods, and each row's period and SKU index; clear errors otherwise."""
        if len(df) == 0:
            raise DataError("empty request: no rows (send one row per SKU and period)", file=REQUEST)
        missing = [c for c in (PERIOD, SKU, *self.spec.inputs) if c not in df.columns]
        if missing:
            raise DataError(f"missing column(s) {', '.join(missing)}; a request needs {', '.join([PERIOD, SKU, *self.spec.inputs])}", file=REQUEST)
        df = df.reset_index(drop=True)
        rows = np.arange(1, len(df) + 1)
        period = pd.to_datetime(df[PERIOD], errors="coerce")
        if period.isna().any():
            raise DataError("not a date", file=REQUEST, column=PERIOD, rows=rows[period.isna().to_numpy()])
        unknown = ~df[SKU].astype(str).isin(self._sku_index.keys())
        if unknown.any():
            raise DataError(f"SKU(s) the model was not trained on: {', '.join(sorted(set(df.loc[unknown, SKU].astype(str))))}", file=REQUEST, column=SKU, rows=rows[unknown.to_numpy()])
        sku = df[SKU].astype(str)
        if BRAND in df.columns:
            wrong = df[BRAND].astype(str) != sku.map(self.spec.sku_brand)
            if wrong.any():
                raise DataError("brand does not match the SKU's brand in the training panel", file=REQUEST, column=BRAND, rows=rows[wrong.to_numpy()])
        if (period < self.calendar[0]).any():
            raise DataError(f"period before the model's first period {self.calendar[0].date()}", file=REQUEST, column=PERIOD, rows=rows[(period < self.calendar[0]).to_numpy()])
        calendar = self._calendar_through(period.max())
        idx = calendar.get_indexer(period)
        if (idx < 0).any():
            raise DataError(f"period not on the model's {self.spec.freq} calendar (e.g. {calendar[0].date()}, {calendar[1].date() if len(calendar) > 1 else ''})", file=REQUEST, column=PERIOD, rows=rows[idx < 0])
        for col in self.spec.inputs:
            values = pd.to_numeric(df[col], errors="coerce")
            if values.isna().any():
                raise DataError("missing or not a number", file=REQUEST, column=col, rows=rows[values.isna().to_numpy()])
            infinite = ~np.isfinite(values.to_numpy(dtype=float))
            if infinite.any():
                raise DataError("not a finite number (infinite)", file=REQUEST, column=col, rows=rows[infinite])
            if col in self.spec.log_features and (values <= 0).any():
                raise DataError("must be > 0 (the model takes its log)", file=REQUEST, column=col, rows=rows[(values <= 0).to_numpy()])
            if col.startswith("spend_") and (values < 0).any():
                raise DataError("spend must be >= 0", file=REQUEST, column=col, rows=rows[(values < 0).to_numpy()])
            df[col] = values.astype(float)
        df[PERIOD] = period
        dup = df.duplicated([PERIOD, SKU], keep=False)
        if dup.any():
            raise DataError("more than one row for the same SKU and period", file=REQUEST, column=SKU, rows=rows[dup.to_numpy()])
        return df, idx, sku.map(self._sku_index).to_numpy(dtype=np.int64, copy=True)

    def _media(self, df: pd.DataFrame, t_idx: np.ndarray, s_idx: np.ndarray) -> np.ndarray:
        """Lag stacks (n, C, L+1): history overlaid with the request's spend."""
        n_c, lags = len(self.spec.channels), self.spec.max_lag
        if not n_c:
            return np.zeros((len(df), 0, lags + 1))
        n_t = max(len(self.history), int(t_idx.max()) + 1)
        spend = df[[spend_col(c) for c in self.spec.channels]].to_numpy(float)
        rows = np.arange(1, len(df) + 1)
        if self.spec.national:
            series = np.zeros((n_t, n_c))
            series[: len(self.history)] = self.history
            by_period = pd.DataFrame(spend).groupby(t_idx)  # national media: one spend per period and channel
            lo, hi = by_period.min(), by_period.max()
            differs = (hi - lo).to_numpy() > 1e-9 * np.maximum(np.abs(hi).to_numpy(), 1.0)
            if differs.any():
                t_bad, c_bad = np.argwhere(differs)[0]
                col = spend_col(self.spec.channels[int(c_bad)])
                raise DataError("national media spend differs between SKUs of the same period", file=REQUEST, column=col, rows=rows[t_idx == lo.index[t_bad]])
            series[lo.index.to_numpy()] = by_period.first().to_numpy()
            return media_lag_stacks(series, lags, t_idx)
        series = sku_spend_series(n_t, len(self.spec.skus), spend, t_idx, s_idx, self.history)
        return media_lag_stacks(series, lags, t_idx, s_idx)

    def out_of_range(self, df: pd.DataFrame, range_factor: float | None = None) -> pd.Series:
        """Per request row: ``""``, or which inputs lie far outside the training range (``; ``-separated).

        With the training range ``[lo, hi]`` of a column and the factor ``f`` (``range_factor``, default the
        spec's, :data:`RANGE_FACTOR`): a logged feature (price ...) is flagged outside ``[lo / f, hi × f]``;
        any other input (spend, controls) outside ``[lo − (f − 1)·s, hi + (f − 1)·s]`` with
        ``s = max(hi − lo, |lo|, |hi|)`` (spend trained on 0 … hi is flagged above ``f × hi``).
        """
        f = _check_factor(self.spec.range_factor if range_factor is None else range_factor)
        notes = [[] for _ in range(len(df))]
        for col, (lo, hi) in self.spec.ranges.items():
            if col not in df:
                continue
            x = df[col].to_numpy(dtype=float)
            if col in self.spec.log_features and lo > 0:
                low, high = lo / f, hi * f
            else:
                scale = max(hi - lo, abs(lo), abs(hi))
                low, high = lo - (f - 1) * scale, hi + (f - 1) * scale
            for i in np.flatnonzero((x < low) | (x > high)):
                notes[i].append(f"{col}={x[i]:.4g} outside {f:g}x the training range [{lo:.4g}, {hi:.4g}]")
        return pd.Series(["; ".join(n) for n in notes], dtype=object)

    def model_inputs(self, request: pd.DataFrame, range_factor: float | None = None) -> tuple[tuple[torch.Tensor, ...], pd.Series]:
        """The validated request as the model's inputs ``(x, media, brand, sku)`` and the ``out_of_range`` flags
        (what :meth:`predict` feeds the model; :meth:`explain` and :meth:`elasticities` use the same path)."""
        df, t_idx, s_idx = self._validate(pd.DataFrame(request).copy())
        flags = self.out_of_range(df, range_factor)
        if flags.ne("").any():
            log.warning("request rows %s: inputs outside the training range", ", ".join(str(i + 1) for i in np.flatnonzero(flags.ne(""))[:8]))
        events = events_from_dicts(self.spec.events)
        calendar = calendar_features(df[PERIOD], self._calendar_through(df[PERIOD].max()), self.spec.festive_months, self.spec.fourier_order, events)
        x = np.zeros((len(df), len(self.spec.features)))
        for j, f in enumerate(self.spec.features):
            x[:, j] = calendar[f] if is_calendar_feature(f) else df[f]
        brand = self._sku_brand_index[s_idx]
        f = torch.get_default_dtype()
        inputs = (
            torch.as_tensor(x, dtype=f),
            torch.as_tensor(np.ascontiguousarray(self._media(df, t_idx, s_idx)), dtype=f),
            torch.as_tensor(brand, dtype=torch.long),
            torch.as_tensor(s_idx, dtype=torch.long),
        )
        return inputs, flags

    @torch.no_grad()
    def predict(self, request: pd.DataFrame, range_factor: float | None = None) -> pd.DataFrame:
        """GMV in rupees for each request row (same order), the log-GMV spread across fold models, and
        ``out_of_range``: ``""`` or the inputs of the row far outside the training range (:meth:`out_of_range`)."""
        inputs, flags = self.model_inputs(request, range_factor)
        out = self.model(*inputs)
        return pd.DataFrame({"gmv": out["log_gmv"].exp().numpy(), "log_gmv_sd": out["log_gmv_sd"].numpy(), OUT_OF_RANGE: flags.to_numpy()})

    @property
    def feature_names(self) -> list[str]:
        """Every model feature in contribution order: the scalar features, then the media channels."""
        return list(self.model.members[0].feature_names)

    @torch.no_grad()
    def explain(self, request: pd.DataFrame, range_factor: float | None = None) -> dict[str, pd.DataFrame]:
        """The additive decomposition of each row's log GMV, averaged over the fold models.

        Returns ``predict``'s frame (``prediction``), ``baseline`` (a Series: the SKU's level and biases in log
        GMV) and ``contributions`` (rows × :attr:`feature_names`, log GMV: the feature's curve value, anchored
        at 0 as in ``curves.csv``), with ``baseline + contributions.sum(axis=1) == log(gmv)`` per row; and
        ``media_inr`` (rows × channels, rupees): GMV minus GMV with the channel's spend at zero in every lag.
        """
        inputs, flags = self.model_inputs(request, range_factor)
        x, media, brand, sku = inputs
        contrib, base = [], []
        for m in self.model.members:
            out = m(x, media, brand, sku)
            c = out["contrib"] * m.y_scale
            contrib.append(c)
            base.append(out["log_gmv"] - c.sum(1))
        ens = self.model(*inputs)
        gmv = ens["log_gmv"].exp()
        media_inr = {}
        for c, channel in enumerate(self.spec.channels):
            zeroed = media.clone()
            zeroed[:, c, :] = 0.0
            media_inr[channel] = (gmv - self.model(x, zeroed, brand, sku)["log_gmv"].exp()).numpy()
        return {
            "prediction": pd.DataFrame({"gmv": gmv.numpy(), "log_gmv_sd": ens["log_gmv_sd"].numpy(), OUT_OF_RANGE: flags.to_numpy()}),
            "baseline": pd.Series(torch.stack(base).mean(0).numpy(), name="baseline_log_gmv"),
            "contributions": pd.DataFrame(torch.stack(contrib).mean(0).numpy(), columns=self.feature_names),
            "media_inr": pd.DataFrame(media_inr, index=range(len(gmv))),
        }

    def elasticities(self, request: pd.DataFrame, range_factor: float | None = None) -> pd.DataFrame:
        """Per row, ``d log GMV / d log x`` of every feature that reports one (prices, discount, promotions,
        NPS ...; media as ``media_<channel>``: a permanent proportional change of that channel's spend in every
        lag), in raw units, averaged over the fold models."""
        from nam_mmm.models.elasticity import row_elasticities

        inputs, _ = self.model_inputs(request, range_factor)
        first = self.model.members[0]
        keep = [j for j, s in enumerate(first.slots[: first.n_scalar]) if s.elasticity]
        names = [first.slots[j].name for j in keep] + [f"media_{c}" for c in self.spec.channels]
        values = []
        for m in self.model.members:
            el_x, el_m = row_elasticities(m, *inputs)
            values.append(torch.cat([el_x[:, keep], el_m], dim=1))
        return pd.DataFrame(torch.stack(values).mean(0).numpy(), columns=names)


def _check_factor(factor: float) -> float:
    """``range_factor`` as a float >= 1 (1 flags anything outside the training range)."""
    try:
        value = float(factor)
    except (TypeError, ValueError):
        raise ConfigError(f"range_factor must be a number >= 1, got {factor!r}") from None
    if not value >= 1 or not np.isfinite(value):
        raise ConfigError(f"range_factor must be a number >= 1, got {factor!r}")
    return value
