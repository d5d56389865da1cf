"""The planning horizon and what the model sees in it besides the new spend.

A plan covers the next ``N`` periods after the model's training calendar (the *horizon*), followed by a *tail* of
``max_lag`` periods with no new spend in which the horizon's spend keeps working through the learned carry-over.
The model needs every non-media input for those periods (price, discount, promotions, NPS, controls …). They come
from a *reference*:

* ``last_year``: each period takes the SKU's inputs of the calendar period nearest to the same date one year earlier;
* ``last_n``: the last ``N + tail`` periods of the calendar, in order;
* ``auto`` (the default): ``last_year`` when the calendar holds a year before every horizon and tail period, else
  ``last_n``;
* ``file``: a CSV with ``period``, ``sku`` and every non-calendar input for each horizon period (tail periods repeat
  the file's last period); ``spend_<channel>`` columns, when present, are the current plan.

Calendar features (month, Fourier terms, events, ``time_index``) are derived from the future dates themselves.
The reference periods' spend is the *current plan* the proposal is compared with (``file`` without spend columns:
the spend of the last ``N`` periods).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from nam_mmm.data.calendar.features import is_calendar_feature
from nam_mmm.data.panel import PERIOD, SKU, spend_col
from nam_mmm.errors import ConfigError, DataError

REFERENCE_KINDS = ("auto", "last_year", "last_n", "file")


@dataclass
class Horizon:
    """The planning periods, the carry-over tail after them, and the calendar through both.

    Attributes:
        periods: the N planning periods, right after the training calendar.
        tail: the periods after the horizon where its spend still works (the model's ``max_lag`` of them).
        calendar: training calendar + horizon + tail (``time_index`` of a future period is its position here).
        n_history: periods of the training calendar.
    """

    periods: pd.DatetimeIndex
    tail: pd.DatetimeIndex
    calendar: pd.DatetimeIndex
    n_history: int

    @property
    def all(self) -> pd.DatetimeIndex:
        """Horizon and tail periods, in order."""
        return self.periods.append(self.tail)


def planning_horizon(calendar: pd.DatetimeIndex, freq: str, n_periods: int, tail: int) -> Horizon:
    """The next ``n_periods`` periods after ``calendar`` at ``freq``, and ``tail`` periods after them."""
    if int(n_periods) != n_periods or n_periods < 1:
        raise ConfigError(f"budget.horizon must be a whole number of periods >= 1, got {n_periods!r}")
    n_periods, tail = int(n_periods), max(int(tail), 0)
    future = pd.date_range(calendar[-1], periods=n_periods + tail + 1, freq=freq)[1:]
    return Horizon(periods=future[:n_periods], tail=future[n_periods:], calendar=calendar.append(future), n_history=len(calendar))


@dataclass
class Reference:
    """The non-media inputs of every horizon and tail period and the current plan's spend.

    Attributes:
        kind: ``last_year``, ``last_n`` or ``file`` (what ``auto`` chose).
        features: (P, S, F) non-calendar model inputs for the P = horizon + tail periods and every SKU, raw units.
        feature_names: the F inputs, in the model's order.
        current_spend: the current plan over the horizon, rupees: (H, C) national or (H, S, C) per SKU.
        source_periods: per horizon/tail period, the history period its inputs came from (ISO date, or ``file``).
    """

    kind: str
    features: np.ndarray
    feature_names: list[str]
    current_spend: np.ndarray
    source_periods: list[str]


def _history_inputs(frame: pd.DataFrame, calendar: pd.DatetimeIndex, skus: list[str], names: list[str]) -> np.ndarray:
    """(T, S, F) inputs of every SKU in every calendar period; a SKU without a row in a period takes its nearest
    earlier row (else its nearest later one)."""
    df = frame[[PERIOD, SKU, *names]].copy()
    df[PERIOD] = pd.to_datetime(df[PERIOD])
    out = np.zeros((len(calendar), len(skus), len(names)))
    for j, name in enumerate(names):
        wide = df.pivot_table(index=PERIOD, columns=SKU, values=name, aggfunc="mean").reindex(index=calendar, columns=skus)
        wide = wide.ffill().bfill()
        if wide.isna().any().any():
            missing = [s for s in skus if wide[s].isna().all()]
            raise DataError(f"no value of '{name}' in any period for SKU(s) {', '.join(missing[:5])}", column=name)
        out[:, :, j] = wide.to_numpy(dtype=float)
    return out


def build_reference(
    kind: str,
    horizon: Horizon,
    frame: pd.DataFrame | None,
    skus: list[str],
    feature_names: list[str],
    channels: list[str],
    history: np.ndarray,
    national: bool,
    path: str | Path | None = None,
) -> Reference:
    """The reference inputs and current plan for ``horizon``.

    Args:
        kind: one of :data:`REFERENCE_KINDS`.
        frame: the run's feature table (one row per SKU and period, the model's input columns); not needed for
            ``file`` when the file has every input.
        skus, feature_names, channels: the model's SKUs, features (calendar ones are skipped) and channels.
        history: the training spend, rupees: (T, C) national or (T, S, C) per SKU.
        national: whether media spend is one value per period.
        path: the CSV of ``kind=file``.
    """
    names = [f for f in feature_names if not is_calendar_feature(f)]
    calendar = horizon.calendar[: horizon.n_history]
    n_t, n_h, n_p = len(calendar), len(horizon.periods), len(horizon.all)
    if kind not in REFERENCE_KINDS:
        raise ConfigError(f"reference.kind must be one of {', '.join(REFERENCE_KINDS)}, got {kind!r}")
    if kind == "file":
        return _file_reference(path, horizon, skus, names, channels, history, national)
    if frame is None:
        raise ConfigError(f"reference.kind={kind} needs the run's data (config.yaml's data source)")
    if kind in ("auto", "last_year"):
        step = calendar[1] - calendar[0] if n_t > 1 else pd.Timedelta(days=7)
        wanted = pd.DatetimeIndex([d - pd.DateOffset(years=1) for d in horizon.all])
        src = calendar.get_indexer(wanted, method="nearest")
        too_far = np.abs((calendar[src] - wanted).to_numpy()) > step.to_numpy()
        kind = "last_n" if kind == "auto" and too_far.any() else "last_year"
    if kind == "last_year":
        if too_far.any():
            first = horizon.all[int(np.flatnonzero(too_far)[0])]
            raise ConfigError(
                f"reference.kind=last_year: no period one year before {first.date()} in the training calendar "
                f"({calendar[0].date()} … {calendar[-1].date()}); use reference.kind=last_n or a shorter budget.horizon"
            )
    else:
        if n_p > n_t:
            raise ConfigError(f"reference.kind=last_n needs {n_p} periods (horizon {n_h} + carry-over tail {n_p - n_h}); the calendar has {n_t}")
        src = np.arange(n_t - n_p, n_t)
    inputs = _history_inputs(frame, calendar, skus, names)
    return Reference(
        kind=kind,
        features=inputs[src],
        feature_names=names,
        current_spend=np.asarray(history, dtype=float)[src[:n_h]].copy(),
        source_periods=[calendar[i].strftime("%Y-%m-%d") for i in src],
    )


def _file_reference(path, horizon: Horizon, skus: list[str], names: list[str], channels: list[str], history: np.ndarray, national: bool) -> Reference:
    if not path:
        raise ConfigError("reference.kind=file needs reference.path (a CSV with period, sku and the model's inputs)")
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"reference.path: no such file {path}")
    df = pd.read_csv(path)
    missing = [c for c in (PERIOD, SKU, *names) if c not in df.columns]
    if missing:
        raise DataError(f"missing column(s) {', '.join(missing)}; the reference needs {', '.join([PERIOD, SKU, *names])}", file=str(path))
    rows = np.arange(2, len(df) + 2)  # file lines (header = line 1)
    df[PERIOD] = pd.to_datetime(df[PERIOD], errors="coerce")
    if df[PERIOD].isna().any():
        raise DataError("not a date", file=str(path), column=PERIOD, rows=rows[df[PERIOD].isna().to_numpy()])
    df[SKU] = df[SKU].astype(str)
    unknown = ~df[SKU].isin(skus)
    if unknown.any():
        raise DataError("SKU the model was not trained on", file=str(path), column=SKU, rows=rows[unknown.to_numpy()])
    spend_cols = [spend_col(c) for c in channels]
    has_spend = all(c in df.columns for c in spend_cols)
    for col in names + (spend_cols if has_spend else []):
        values = pd.to_numeric(df[col], errors="coerce")
        if values.isna().any():
            raise DataError("missing or not a number", file=str(path), column=col, rows=rows[values.isna().to_numpy()])
        df[col] = values
    n_h = len(horizon.periods)
    df = df[df[PERIOD].isin(horizon.periods)]
    index = pd.MultiIndex.from_product([horizon.periods, skus], names=[PERIOD, SKU])
    table = df.drop_duplicates([PERIOD, SKU], keep="last").set_index([PERIOD, SKU]).reindex(index)
    absent = table[names[0]].isna() if names else pd.Series(False, index=index)
    if absent.any():
        first = absent[absent].index[0]
        raise DataError(
            f"{int(absent.sum())} SKU-period(s) of the horizon missing, e.g. {first[1]} in {first[0].date()} "
            f"(the horizon is {horizon.periods[0].date()} … {horizon.periods[-1].date()})",
            file=str(path),
        )
    feats = table[names].to_numpy(dtype=float).reshape(n_h, len(skus), len(names))
    feats = np.concatenate([feats, np.repeat(feats[-1:], len(horizon.tail), axis=0)])  # the tail repeats the last period
    if has_spend:
        spend = table[spend_cols].to_numpy(dtype=float).reshape(n_h, len(skus), len(channels))
        if (spend < 0).any():
            raise DataError("spend must be >= 0", file=str(path), column=spend_cols[int(np.argwhere(spend < 0)[0][2])])
        if national:
            spread = spend.max(1) - spend.min(1)
            if (spread > 1e-9 * np.maximum(np.abs(spend).max(1), 1.0)).any():
                raise DataError("national media spend differs between SKUs of the same period", file=str(path))
            spend = spend[:, 0, :]
    else:
        spend = np.asarray(history, dtype=float)[-n_h:].copy()
        if len(spend) < n_h:
            raise ConfigError(f"reference file without spend columns: the current plan is the last {n_h} periods' spend, but the history has {len(spend)}")
    return Reference(kind="file", features=feats, feature_names=names, current_spend=spend, source_periods=["file"] * len(horizon.all))
