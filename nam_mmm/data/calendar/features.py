"""The features that are functions of the period alone: month position, festive season, time index, Fourier
harmonics of the year and retail-event day shares (:mod:`nam_mmm.data.calendar.events`).

They are derived, never asked of a user or a request, so the feature table, the served model and the planner all
build them here from the period and the calendar.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from nam_mmm.data.calendar.events import Event, event_shares
from nam_mmm.errors import ConfigError

CALENDAR_FEATURES = ("month_sin", "month_cos", "festive", "time_index")


def is_calendar_feature(name: str) -> bool:
    """Whether a feature is a function of the period alone (derived, never asked of a user or a request)."""
    return name in CALENDAR_FEATURES or name.startswith(("fourier_sin_", "fourier_cos_", "event_"))


def calendar_features(
    period: pd.Series, calendar: pd.DatetimeIndex, festive_months: list[int], fourier_order: int = 1, events: dict[str, Event] | None = None
) -> pd.DataFrame:
    """The features that are functions of the period alone, for each row: :data:`CALENDAR_FEATURES`, Fourier
    harmonics 2..``fourier_order`` and the ``event_<name>`` day shares (:mod:`nam_mmm.data.calendar.events`).

    ``time_index`` is the position of the row's period in ``calendar`` (the panel's periods, or that calendar
    extended at the panel's frequency for periods after it, as a served model needs).
    """
    month_pos = (period.dt.month - 1 + (period.dt.day - 1) / period.dt.days_in_month) / 12.0
    position = pd.Series(np.arange(len(calendar), dtype=float), index=calendar)
    base = pd.DataFrame(
        {
            "month_sin": np.sin(2 * np.pi * month_pos),
            "month_cos": np.cos(2 * np.pi * month_pos),
            "festive": period.dt.month.isin(festive_months).astype(float),
            "time_index": period.map(position).astype(float),
        },
        index=period.index,
    )
    return pd.concat([base, fourier_terms(period, fourier_order), event_shares(period, calendar, events or {})], axis=1)


def fourier_terms(period: pd.Series, order: int) -> pd.DataFrame:
    """``fourier_sin_k`` / ``fourier_cos_k`` of the position in the year, for k = 2..order (k = 1 is month_sin/cos)."""
    if order < 1:
        raise ConfigError(f"data.features.fourier_order must be >= 1, got {order}")
    p = pd.to_datetime(period)
    pos = ((p.dt.dayofyear - 1) / np.where(p.dt.is_leap_year, 366.0, 365.0)).to_numpy()
    cols = {}
    for k in range(2, order + 1):
        cols[f"fourier_sin_{k}"] = np.sin(2 * np.pi * k * pos)
        cols[f"fourier_cos_{k}"] = np.cos(2 * np.pi * k * pos)
    return pd.DataFrame(cols, index=period.index)
