"""The canonical long panel every source produces: one row per (period, SKU).

Sources (synthetic, DT Mart, any panel CSV) rename their columns to the canonical names below so the
rest of the pipeline never needs to know where the data came from. The original file and column of
each canonical column are kept in ``Panel.column_sources`` and the original file line of each row in
the ``_row`` column, so every error can point back to the cell a user has to fix.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from nam_mmm.data.calendar.frequency import iso_dates
from nam_mmm.data.quality.report import ValidationReport

PERIOD = "period"  # first day of the period (datetime64)
BRAND = "brand"  # coarse hierarchy level (brand / product family)
SKU = "sku"  # fine hierarchy level (SKU / sub-category)
GMV = "gmv"  # target: gross merchandise value, rupees
UNITS = "units"  # units sold (optional)
PRICE = "price"  # average selling price, rupees per unit
MRP = "mrp"  # list price, rupees per unit (optional)
CROSS_PRICE = "cross_price"  # mean price of the other SKUs of the brand, rupees
DISCOUNT = "discount"  # discount depth, fraction of list price in [0, 1]
PROMO_DAYS = "promo_days"  # number of promotion days in the period
NPS = "nps"  # brand health: net promoter score
TOTAL_SPEND = "total_spend"  # reported total media spend, rupees (consistency check only)
ROW = "_row"  # 1-based line of the source file the row came from
FIT_WEIGHT = "fit_weight"  # 1 = row enters the fit; 0 = excluded (outage dropped, missing GMV)

SPEND_PREFIX = "spend_"


def spend_col(channel: str) -> str:
    """Canonical column of a channel's media spend in rupees."""
    return f"{SPEND_PREFIX}{channel}"


@dataclass
class Panel:
    """A validated long panel.

    Attributes:
        frame: canonical columns, sorted by (period, brand, sku), index 0..n-1.
        channels: media channel names; spend of channel ``c`` is column ``spend_<c>`` in rupees.
        controls: extra control columns (used as unconstrained features).
        freq: pandas frequency of the periods (``MS`` monthly, ``W-MON`` weekly, ...).
        source: where the panel came from (file path or ``synthetic``).
        column_sources: canonical column -> ``"file:column"`` it was read from.
        report: validation findings and imputation counts.
        truth: ground truth for synthetic panels, else ``None``.
        dropped_units: SKUs removed by cleaning (``cleaning.empty_sku: drop``) -> why; they have no rows.
    """

    frame: pd.DataFrame
    channels: list[str]
    freq: str
    source: str
    controls: list[str] = field(default_factory=list)
    column_sources: dict[str, str] = field(default_factory=dict)
    report: ValidationReport = field(default_factory=ValidationReport)
    truth: dict | None = None
    dropped_units: dict[str, str] = field(default_factory=dict)

    @property
    def spend_columns(self) -> list[str]:
        return [spend_col(c) for c in self.channels]

    @property
    def periods(self) -> pd.DatetimeIndex:
        """The full calendar of periods (sorted, unique), including periods whose rows are excluded."""
        return pd.DatetimeIndex(sorted(self.frame[PERIOD].unique()))

    @property
    def brands(self) -> list[str]:
        return sorted(self.frame[BRAND].unique())

    @property
    def skus(self) -> list[str]:
        """SKUs ordered by (brand, sku): the order of the model's SKU index."""
        pairs = self.frame[[BRAND, SKU]].drop_duplicates().sort_values([BRAND, SKU])
        return list(pairs[SKU])

    @property
    def sku_brand(self) -> dict[str, str]:
        pairs = self.frame[[BRAND, SKU]].drop_duplicates()
        return dict(zip(pairs[SKU], pairs[BRAND], strict=True))

    def national_spend(self) -> bool:
        """True when every channel's spend is the same for all SKUs of a period (national media)."""
        if not self.channels:
            return True
        spread = self.frame.groupby(PERIOD)[self.spend_columns].nunique(dropna=False)
        return bool((spread <= 1).all().all())

    def spend_by_period(self) -> pd.DataFrame:
        """Media spend per period and channel in rupees (national: one value per period; else summed)."""
        g = self.frame.groupby(PERIOD)[self.spend_columns]
        out = g.first() if self.national_spend() else g.sum()
        return out.reindex(self.periods).fillna(0.0)

    def origin(self, column: str) -> tuple[str, str]:
        """(file, original column name) a canonical column came from."""
        src = self.column_sources.get(column, "")
        if ":" in src:
            f, c = src.rsplit(":", 1)
            return f, c
        return self.source, column

    def units_without_fit_rows(self) -> list[str]:
        """SKUs still in the panel none of whose rows enter the fit (``fit_weight`` 0 everywhere)."""
        weight = self.frame.groupby(SKU)[FIT_WEIGHT].max()
        return [str(s) for s in weight.index[(weight <= 0).to_numpy()]]

    def rows_of(self, mask: pd.Series | np.ndarray) -> list[int]:
        """Source-file line numbers of the rows selected by ``mask``."""
        return sorted({int(r) for r in self.frame.loc[mask, ROW]})

    def periods_of(self, mask: pd.Series | np.ndarray) -> list[str]:
        """ISO dates of the periods of the rows selected by ``mask``, sorted."""
        return iso_dates(sorted(self.frame.loc[mask, PERIOD].unique()))

    def with_channel_groups(self, groups: dict[str, list[str]]) -> Panel:
        """A panel whose media channels are summed into groups (``{group: [channel, ...]}``), in rupees.

        Small data cannot separate many correlated channels (DT Mart: 9 channels, 12 months); grouping them
        is the usual remedy. Channels in no group stay as they are; a channel in two groups is an error.
        """
        from nam_mmm.errors import ConfigError

        seen: dict[str, str] = {}
        for group, members in groups.items():
            for ch in members:
                if ch not in self.channels:
                    raise ConfigError(f"channel_groups.{group}: unknown channel '{ch}' (channels: {', '.join(self.channels)})")
                if ch in seen:
                    raise ConfigError(f"channel '{ch}' is in two channel groups: {seen[ch]} and {group}")
                seen[ch] = group
        frame = self.frame.copy()
        channels: list[str] = []
        sources = dict(self.column_sources)
        for ch in self.channels:
            group = seen.get(ch)
            if group is None:
                channels.append(ch)
            elif group not in channels:
                cols = [spend_col(c) for c in groups[group]]
                frame[spend_col(group)] = frame[cols].sum(axis=1, min_count=1)
                sources[spend_col(group)] = " + ".join(self.column_sources.get(c, c) for c in cols)
                channels.append(group)
        frame = frame.drop(columns=[spend_col(c) for c in seen if c not in channels])
        return Panel(
            frame, channels, self.freq, self.source, list(self.controls), sources, self.report, self.truth, dict(self.dropped_units)
        )

