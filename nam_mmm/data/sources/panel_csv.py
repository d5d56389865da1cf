"""Load any long panel CSV (one row per period x SKU) whose column roles come from the configuration.

Only file-, column- and cell-type-level problems are raised here (missing file or column, a column in
two roles, an unparseable date, a non-numeric cell). Duplicates, gaps and bounds are checked later by
the validation step on the canonical frame, which points back to the file through ``_row`` and
``Panel.column_sources``.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from nam_mmm.data.calendar.frequency import check_given_freq, infer_period_freq, normalize_freq, snap_to_period_start
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
    SPEND_PREFIX,
    TOTAL_SPEND,
    UNITS,
    Panel,
    spend_col,
)
from nam_mmm.data.sources.parsing import (
    check_role_mapping,
    line_numbers,
    parse_dates_checked,
    read_csv_checked,
    require_columns,
    to_numeric_checked,
)
from nam_mmm.data.quality.report import Finding
from nam_mmm.errors import DataError


# Optional numeric role (keyword of load_panel_csv) -> canonical column, in output column order.
OPTIONAL_ROLES: dict[str, str] = {
    "units": UNITS,
    "own_price": PRICE,
    "mrp": MRP,
    "cross_price": CROSS_PRICE,
    "discount": DISCOUNT,
    "promo": PROMO_DAYS,
    "brand_health": NPS,
    "total_spend": TOTAL_SPEND,
}

_RESERVED = {PERIOD, BRAND, SKU, GMV, ROW, FIT_WEIGHT, *OPTIONAL_ROLES.values()}


def channel_name(column: str) -> str:
    """Media channel name of a spend column: the column name with a leading ``spend_`` stripped."""
    if column.startswith(SPEND_PREFIX) and len(column) > len(SPEND_PREFIX):
        return column[len(SPEND_PREFIX) :]
    return column


def select_media(
    header: Sequence[str],
    media: str | Sequence[str],
    *,
    claimed: set[str],
    file: str,
    target: str | None = None,
) -> list[str]:
    """The media spend columns of ``header``.

    Args:
        header: the file's column names.
        media: a list of columns, or one glob pattern (``"spend_*"``, matched with :mod:`fnmatch`). A
            single name without glob characters is one column. A pattern skips the columns that are
            given another role (so ``"*_spend"`` does not swallow a ``total_spend`` column), except the
            target: a pattern that matches the target column is refused, since the target would silently
            leave the media (see :func:`pattern_skips` for the skipped columns).
        claimed: columns used by the other roles.
        file: the file, for messages.
        target: the target column.

    Raises:
        DataError: the pattern matches no column, or it matches the target column.
    """
    if isinstance(media, str):
        if any(ch in media for ch in "*?["):
            if target is not None and fnmatch.fnmatchcase(target, media) and target in header:
                raise DataError(
                    f"media pattern {media!r} also matches the target column: a column cannot be both sales and "
                    "spend; list the media columns explicitly or use a narrower pattern",
                    file=file,
                    column=target,
                    rows=[1],
                    row_label="line",
                )
            cols = [c for c in header if fnmatch.fnmatchcase(c, media) and c not in claimed]
            if not cols:
                raise DataError(
                    f"media pattern {media!r} matches no column; found: {', '.join(header)}",
                    file=file,
                    rows=[1],
                    row_label="line",
                )
            return cols
        return [media]
    return list(media)


def pattern_skips(header: Sequence[str], media: str | Sequence[str], claimed: set[str]) -> list[str]:
    """Columns that the media glob ``media`` matches but that have another role (so are not media)."""
    if not (isinstance(media, str) and any(ch in media for ch in "*?[")):
        return []
    return [c for c in header if fnmatch.fnmatchcase(c, media) and c in claimed]


def _as_list(value: str | Sequence[str] | None) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return list(value)


def load_panel_csv(
    path: str | Path,
    *,
    date: str,
    hierarchy: str | Sequence[str],
    target: str,
    media: str | Sequence[str],
    own_price: str | None = None,
    cross_price: str | None = None,
    units: str | None = None,
    mrp: str | None = None,
    discount: str | None = None,
    promo: str | None = None,
    brand_health: str | None = None,
    total_spend: str | None = None,
    controls: Sequence[str] = (),
    freq: str | None = None,
    date_format: str | None = None,
) -> Panel:
    """Load a long panel CSV (one row per period x SKU) into a canonical :class:`Panel`.

    Args:
        path: the CSV file.
        date: column with the period date (ISO ``YYYY-MM-DD``, ``D/M/YYYY`` or ``M/D/YYYY``, or ``date_format``).
        hierarchy: 1 or 2 columns, coarse -> fine: ``[brand, sku]``; with one column brand = sku = its value.
        target: column with the sales target (GMV), in currency units (rupees).
        media: spend columns (currency units): a list of names, or a glob such as ``"spend_*"``. The
            channel name is the column name without a leading ``spend_``.
        own_price: column with the SKU's average selling price (currency per unit).
        cross_price: column with the price of competing / sibling SKUs (currency per unit).
        units: column with units sold.
        mrp: column with the list price (currency per unit).
        discount: column with the discount depth as a fraction of list price in [0, 1].
        promo: column with the number of promotion days in the period.
        brand_health: column with a brand-health score (e.g. NPS).
        total_spend: column with the reported total media spend (currency units; consistency check).
        controls: further numeric columns kept under their own names as unconstrained features.
        freq: pandas frequency of the periods (``MS``, ``W-MON``, ...); inferred from the dates if ``None``.
        date_format: the date column's order, ``day_first`` (``D/M/YYYY``) or ``month_first`` (``M/D/YYYY``),
            or an explicit ``strftime`` format (e.g. ``%d.%m.%Y``); ``None`` = ISO, or ``D/M/YYYY`` /
            ``M/D/YYYY`` told apart from the whole column (refused when it cannot be told).

    Returns:
        The panel: canonical columns, ``_row`` = file line of each row, ``fit_weight`` = 1.0, sorted by
        (period, brand, sku); ``freq`` the period frequency; ``column_sources`` canonical column ->
        ``"<path>:<original column>"``.

    Raises:
        DataError: missing/empty file, a missing column, a column in two roles, a media pattern that
            matches the target, an unparseable or ambiguous date, a non-numeric cell, or an unknown /
            uninferable frequency or one that does not fit the dates.

    The length of this function is its keyword list and their documentation (one keyword per config key of
    ``data.source``); the work is in the steps it calls.
    """
    file = str(path)
    optional = {
        "units": units, "own_price": own_price, "mrp": mrp, "cross_price": cross_price, "discount": discount,
        "promo": promo, "brand_health": brand_health, "total_spend": total_spend,
    }
    roles = _Roles.checked(file, date, hierarchy, target, media, optional, controls)
    raw = read_csv_checked(path)
    media_cols, skipped = _media_columns(raw, roles, file)
    channels = _channel_names(media_cols, roles.controls, file)
    period, period_freq = _periods(raw, roles, freq, date_format, file)
    frame, sources = _canonical_frame(raw, roles, period, media_cols, channels, file)
    panel = Panel(frame=frame, channels=channels, freq=period_freq, source=file, controls=roles.controls, column_sources=sources)
    if skipped:
        panel.report.add(
            Finding(
                "info",
                "roles",
                f"media pattern {roles.media!r} also matches {', '.join(skipped)}, which have another role: not media",
                file=file,
                rows=[1],
            )
        )
    return panel


@dataclass
class _Roles:
    """The columns the config gives each role; ``media`` is a glob pattern or a list of columns."""

    date: str
    levels: list[str]  # hierarchy, coarse -> fine
    target: str
    media: str | list[str]
    optional: dict[str, str | None]  # role (a key of OPTIONAL_ROLES) -> column
    controls: list[str]

    @property
    def base(self) -> dict[str, str | list[str] | None]:
        """Every role but media -> its column(s)."""
        return {"date": self.date, "hierarchy": self.levels, "target": self.target, **self.optional, "controls": self.controls}

    @classmethod
    def checked(cls, file: str, date: str, hierarchy, target: str, media, optional: dict, controls) -> _Roles:
        """The roles of the config, checked before the file is touched (1 or 2 hierarchy levels, no column in two roles)."""
        levels = _as_list(hierarchy)
        if len(levels) not in (1, 2):
            raise DataError(
                f"hierarchy must name 1 or 2 columns (coarse -> fine), got {len(levels)}: {', '.join(levels)}", file=file
            )
        is_pattern = isinstance(media, str) and any(ch in media for ch in "*?[")
        roles = cls(date, levels, target, media if is_pattern else _as_list(media), optional, _as_list(controls))
        check_role_mapping({**roles.base, "media": [] if is_pattern else roles.media}, file)
        return roles


def _media_columns(raw: pd.DataFrame, roles: _Roles, file: str) -> tuple[list[str], list[str]]:
    """The file's media columns and the columns a media pattern skipped (they have another role); every column a role
    names must be in the file."""
    header = [str(c) for c in raw.columns]
    claimed = {c for v in roles.base.values() for c in _as_list(v)}  # type: ignore[arg-type]
    media_cols = select_media(header, roles.media, claimed=claimed, file=file, target=roles.target)
    skipped = pattern_skips(header, roles.media, claimed)
    check_role_mapping({**roles.base, "media": media_cols}, file)
    used_optional = [col for col in roles.optional.values() if col is not None]
    require_columns(raw, [roles.date, *roles.levels, roles.target, *media_cols, *used_optional, *roles.controls], file)
    return media_cols, skipped


def _channel_names(media_cols: list[str], controls: list[str], file: str) -> list[str]:
    """The channel of each media column; two columns giving one channel, or a control named like a canonical
    column, are refused."""
    channels = [channel_name(c) for c in media_cols]
    seen: dict[str, str] = {}
    for col, ch in zip(media_cols, channels, strict=True):
        if ch in seen:
            raise DataError(
                f"media columns '{seen[ch]}' and '{col}' give the same channel name '{ch}'", file=file, column=col
            )
        seen[ch] = col
    for col in controls:
        if col in _RESERVED or (col.startswith(SPEND_PREFIX) and channel_name(col) in seen):
            raise DataError(
                f"control column name clashes with the canonical column '{col}'; rename it in the file",
                file=file,
                column=col,
            )
    return channels


def _periods(raw: pd.DataFrame, roles: _Roles, freq: str | None, date_format: str | None, file: str) -> tuple[pd.Series, str]:
    """Each row's period start and the period frequency (given and checked against the dates, or inferred)."""
    dates = parse_dates_checked(raw[roles.date], file, roles.date, formats=date_format)
    if freq:
        period_freq = normalize_freq(freq, dates.min(), file=file)
    else:
        period_freq = infer_period_freq(dates, file=file, column=roles.date)
    period = snap_to_period_start(dates, period_freq)
    if freq:
        check_given_freq(dates, period, raw[roles.levels[-1]], freq, period_freq, file=file, column=roles.date)
    return period, period_freq


def _canonical_frame(
    raw: pd.DataFrame, roles: _Roles, period: pd.Series, media_cols: list[str], channels: list[str], file: str
) -> tuple[pd.DataFrame, dict[str, str]]:
    """The canonical columns (sorted by period, brand, SKU) and the ``file:column`` each came from."""
    frame = pd.DataFrame(index=raw.index)
    frame[PERIOD] = period
    sources: dict[str, str] = {PERIOD: f"{file}:{roles.date}"}
    for level, col in zip((BRAND, SKU), (roles.levels[0], roles.levels[-1]), strict=True):
        values = raw[col]
        missing = values.isna()
        if missing.any():
            raise DataError(
                "missing value in a hierarchy column", file=file, column=col, rows=line_numbers(raw.index[missing])
            )
        frame[level] = values.astype(str)
        sources[level] = f"{file}:{col}"
    numeric = [(GMV, roles.target)]
    numeric += [(canonical, roles.optional[role]) for role, canonical in OPTIONAL_ROLES.items() if roles.optional[role] is not None]
    numeric += [(spend_col(ch), col) for col, ch in zip(media_cols, channels, strict=True)]
    numeric += [(col, col) for col in roles.controls]
    for canonical, col in numeric:
        frame[canonical] = to_numeric_checked(raw[col], file, col)
        sources[canonical] = f"{file}:{col}"
    frame[ROW] = np.asarray(line_numbers(raw.index), dtype=np.int64)
    frame[FIT_WEIGHT] = 1.0
    return frame.sort_values([PERIOD, BRAND, SKU], kind="mergesort").reset_index(drop=True), sources
