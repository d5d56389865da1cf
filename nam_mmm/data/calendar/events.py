"""Calendar features beyond one sine: Fourier terms of the year and retail events on their real dates.

One sin/cos pair of the month cannot represent a Diwali peak that moves between mid-October and mid-November,
so price and media absorb it. Two remedies, both linear in the model (``seasonality`` role), so they extrapolate
to unseen years exactly:

* :func:`~nam_mmm.data.calendar.features.fourier_terms`: ``sin/cos(2π·k·t)`` of the position ``t`` in the year, for ``k = 2..order`` (``k = 1`` is
  the existing ``month_sin``/``month_cos``);
* :func:`event_shares`: per event, the share of a period's days inside the event window
  ``[date − days_before, date + days_after]`` (0 … 1), from :data:`EVENTS` (Indian retail, 2014–2027) or a calendar
  the user gives in config.

A served model keeps its events as plain dicts (:func:`events_to_dicts`, :func:`events_from_dicts`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from nam_mmm.errors import ConfigError


@dataclass(frozen=True)
class Event:
    """A yearly event: its dates (one per year) and the window of days around each date that it moves sales."""

    dates: tuple[str, ...]
    days_before: int = 7
    days_after: int = 1


# Dates of the events that move Indian retail. Diwali (Lakshmi Puja) and Dussehra (Vijayadashami) follow the
# Hindu lunar calendar; Christmas, Republic Day and Independence Day are fixed (their sales run in the days
# before); the big festive e-commerce sale (Big Billion Days / Great Indian Festival) starts late September or
# early October and runs about a week (dates approximate; 2026-2027 assumed).
EVENTS: dict[str, Event] = {
    "diwali": Event(
        ("2014-10-23", "2015-11-11", "2016-10-30", "2017-10-19", "2018-11-07", "2019-10-27", "2020-11-14",
         "2021-11-04", "2022-10-24", "2023-11-12", "2024-10-31", "2025-10-20", "2026-11-08", "2027-10-29"),
        days_before=10, days_after=1,
    ),
    "dussehra": Event(
        ("2014-10-03", "2015-10-22", "2016-10-11", "2017-09-30", "2018-10-19", "2019-10-08", "2020-10-25",
         "2021-10-15", "2022-10-05", "2023-10-24", "2024-10-12", "2025-10-02", "2026-10-20", "2027-10-09"),
        days_before=4, days_after=0,
    ),
    "christmas": Event(tuple(f"{y}-12-25" for y in range(2014, 2028)), days_before=10, days_after=1),
    "republic_day": Event(tuple(f"{y}-01-26" for y in range(2014, 2028)), days_before=6, days_after=0),
    "independence_day": Event(tuple(f"{y}-08-15" for y in range(2014, 2028)), days_before=7, days_after=0),
    "big_festive_sale": Event(
        ("2014-10-06", "2015-10-13", "2016-10-02", "2017-09-20", "2018-10-10", "2019-09-29", "2020-10-16",
         "2021-10-03", "2022-09-23", "2023-10-08", "2024-09-27", "2025-09-23", "2026-09-25", "2027-09-24"),
        days_before=0, days_after=6,
    ),
}


def resolve_events(spec: list | dict | None) -> dict[str, Event]:
    """Events named in config: a list of names of :data:`EVENTS`, or a mapping ``name -> null`` (built-in) or
    ``name -> {dates: [...], days_before, days_after}`` (the user's own or an override)."""
    if not spec:
        return {}
    items = {name: None for name in spec} if isinstance(spec, (list, tuple)) else dict(spec)
    out = {}
    for name, value in items.items():
        if value is None:
            if name not in EVENTS:
                raise ConfigError(f"data.features.events: unknown event '{name}' (built in: {', '.join(EVENTS)}; or give its dates)")
            out[name] = EVENTS[name]
            continue
        value = dict(value)
        base = EVENTS.get(name)
        dates = value.get("dates", base.dates if base else None)
        if not dates:
            raise ConfigError(f"data.features.events.{name}: needs dates (one per year, YYYY-MM-DD)")
        parsed = pd.to_datetime(pd.Series([str(d) for d in dates]), format="%Y-%m-%d", errors="coerce")
        if parsed.isna().any():
            bad = [str(d) for d, ok in zip(dates, parsed.notna(), strict=True) if not ok]
            raise ConfigError(f"data.features.events.{name}: dates must be YYYY-MM-DD, got {', '.join(bad[:3])}")
        before = int(value.get("days_before", base.days_before if base else 7))
        after = int(value.get("days_after", base.days_after if base else 1))
        if before < 0 or after < 0:
            raise ConfigError(f"data.features.events.{name}: days_before and days_after must be >= 0")
        out[name] = Event(tuple(str(d) for d in dates), before, after)
    return out


def _period_ends(period: pd.Series, calendar: pd.DatetimeIndex) -> pd.Series:
    """Last day of each row's period: the day before the next period starts (the calendar's step for the last)."""
    starts = pd.DatetimeIndex(calendar)
    step = starts[-1] - starts[-2] if len(starts) > 1 else pd.Timedelta(days=1)
    nxt = pd.Series(list(starts[1:]) + [starts[-1] + step], index=starts)
    return period.map(nxt) - pd.Timedelta(days=1)


def event_shares(period: pd.Series, calendar: pd.DatetimeIndex, events: dict[str, Event]) -> pd.DataFrame:
    """``event_<name>``: share of each row's period days inside the event's windows (0 … 1).

    A period outside the years the event's dates cover gets 0; a warning-free 0 is right for a fixed list, and
    the config can extend the dates."""
    start = pd.to_datetime(period)
    end = _period_ends(start, calendar)
    n_days = ((end - start).dt.days + 1).to_numpy(dtype=float)
    out = {}
    for name, ev in events.items():
        covered = np.zeros(len(start))
        s, e = start.to_numpy(), end.to_numpy()
        for date in pd.to_datetime(list(ev.dates)):
            lo = np.maximum(s, np.datetime64(date - pd.Timedelta(days=ev.days_before)))
            hi = np.minimum(e, np.datetime64(date + pd.Timedelta(days=ev.days_after)))
            covered += np.clip((hi - lo) / np.timedelta64(1, "D") + 1, 0, None)
        out[f"event_{name}"] = np.clip(covered / n_days, 0.0, 1.0)
    return pd.DataFrame(out, index=period.index)


def events_to_dicts(events: dict[str, Event]) -> dict[str, dict]:
    """Events as plain data (``name -> {dates, days_before, days_after}``), as a served model stores them."""
    return {k: {"dates": list(e.dates), "days_before": e.days_before, "days_after": e.days_after} for k, e in events.items()}


def events_from_dicts(spec: dict[str, dict]) -> dict[str, Event]:
    """The events of :func:`events_to_dicts`' plain data."""
    return {k: Event(tuple(e["dates"]), int(e["days_before"]), int(e["days_after"])) for k, e in spec.items()}
