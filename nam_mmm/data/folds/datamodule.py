"""The LightningDataModule: one fold of a feature table as tensors in raw units.

Batches are dictionaries of tensors:

* ``x`` (n, F): model features in raw units (rupees, fractions, NPS points …), column order = ``feature_names``;
* ``media`` (n, C, L+1): spend of each channel at t, t−1, …, t−L in rupees (the lag stack; carry-over crosses
  fold boundaries because it is built on the whole calendar);
* ``brand``, ``sku``, ``period`` (n,): integer indices;
* ``log_gmv`` (n,): the target in log rupees; ``weight`` (n,): 1 when the row enters the fit.

Raw units go in so the model can differentiate predictions with respect to raw inputs (elasticities);
:attr:`PanelDataModule.scaler`, fitted on training periods only, travels with the model to do the scaling.
"""

from __future__ import annotations

from dataclasses import dataclass

import lightning as L
import numpy as np
import pandas as pd
import torch
from torch.utils.data import BatchSampler, DataLoader, Dataset, RandomSampler, SequentialSampler

from nam_mmm.data.features.model_inputs import media_lag_stacks, sku_brand_index, sku_spend_series
from nam_mmm.data.features.scaling import FittedScaler, fit_scaler
from nam_mmm.data.features.table import FeatureTable
from nam_mmm.data.folds.splitters import Fold
from nam_mmm.data.panel import BRAND, FIT_WEIGHT, GMV, PERIOD, SKU


class DictDataset(Dataset):
    """Rows of a dict of equal-length tensors; indexing with a list returns a dict of slices (one batch)."""

    def __init__(self, tensors: dict[str, torch.Tensor]) -> None:
        self.tensors = tensors
        self.n = len(next(iter(tensors.values())))

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, idx) -> dict[str, torch.Tensor]:
        return {k: v[idx] for k, v in self.tensors.items()}


class _FullBatch(Dataset):
    def __init__(self, tensors: dict[str, torch.Tensor]) -> None:
        self.tensors = tensors

    def __len__(self) -> int:
        return 1

    def __getitem__(self, idx: int) -> dict[str, torch.Tensor]:
        return self.tensors


@dataclass
class PanelArrays:
    """All rows of the panel as numpy arrays (built once, split per fold)."""

    x: np.ndarray
    media: np.ndarray
    brand: np.ndarray
    sku: np.ndarray
    period: np.ndarray
    log_gmv: np.ndarray
    weight: np.ndarray
    spend_per_period: np.ndarray  # (T, C)
    periods: pd.DatetimeIndex


def panel_arrays(table: FeatureTable) -> PanelArrays:
    panel, df = table.panel, table.frame
    brands, skus, periods = panel.brands, panel.skus, panel.periods
    brand_idx = df[BRAND].map({b: i for i, b in enumerate(brands)}).to_numpy()
    sku_idx = df[SKU].map({s: i for i, s in enumerate(skus)}).to_numpy()
    period_idx = df[PERIOD].map(pd.Series(np.arange(len(periods)), index=periods)).to_numpy()
    x = df[[s.name for s in table.model_specs]].to_numpy(dtype=float)
    by_period = panel.spend_by_period().to_numpy(dtype=float) if panel.channels else np.zeros((len(periods), 0))
    if panel.national_spend():
        media = media_lag_stacks(by_period, table.config.max_lag, period_idx)
    else:  # SKU-level spend: lag within each SKU's own series
        series = sku_spend_series(len(periods), len(skus), df[panel.spend_columns].to_numpy(dtype=float), period_idx, sku_idx)
        media = media_lag_stacks(series, table.config.max_lag, period_idx, sku_idx)
    gmv = df[GMV].to_numpy(dtype=float)
    weight = df[FIT_WEIGHT].to_numpy(dtype=float) * (gmv > 0)
    log_gmv = np.log(np.where(gmv > 0, gmv, 1.0))
    return PanelArrays(x, media, brand_idx, sku_idx, period_idx, log_gmv, weight, by_period, periods)


class PanelDataModule(L.LightningDataModule):
    """Tensors of one fold.

    Args:
        table: the feature table (cleaned panel + features).
        fold: which periods train, validate and test.
        batch_size: rows per batch; ``None`` (default) = full batch, one step per epoch.
        seed: seed of the shuffling generator (batched mode only).
    """

    def __init__(self, table: FeatureTable, fold: Fold, batch_size: int | None = None, seed: int = 0) -> None:
        super().__init__()
        self.table = table
        self.fold = fold
        self.batch_size = batch_size
        self.seed = seed
        self.arrays = panel_arrays(table)
        self.splits: dict[str, dict[str, torch.Tensor]] = {}
        self.scaler: FittedScaler | None = None
        self.setup()

    # ---- facts the model needs
    @property
    def feature_specs(self):
        return self.table.model_specs

    @property
    def channels(self) -> list[str]:
        return self.table.channels

    @property
    def n_brands(self) -> int:
        return len(self.table.panel.brands)

    @property
    def n_skus(self) -> int:
        return len(self.table.panel.skus)

    @property
    def sku_brand(self) -> np.ndarray:
        return sku_brand_index(self.table.panel.skus, self.table.panel.sku_brand)

    def split_mask(self, name: str) -> np.ndarray:
        periods = {"train": self.fold.train, "val": self.fold.val, "test": self.fold.test, "all": self.arrays.periods}[name]
        return np.isin(self.arrays.periods[self.arrays.period], periods)

    def setup(self, stage: str | None = None) -> None:
        if self.scaler is not None:
            return
        a = self.arrays
        train = self.split_mask("train")
        train_periods = np.isin(a.periods, self.fold.train)
        # media scale = mean spend per lag-stack entry: per period for national media, per row for SKU-level media
        spend = a.spend_per_period[train_periods] if self.table.panel.national_spend() else a.media[train][:, :, 0]
        self.scaler = fit_scaler(
            self.table.model_specs, a.x[train], a.sku[train], self.n_skus, a.log_gmv[train], a.weight[train],
            spend, a.media[train].sum(axis=-1),
        )
        for name in ("train", "val", "test", "all"):
            self.splits[name] = self.tensors(self.split_mask(name))

    def tensors(self, mask: np.ndarray) -> dict[str, torch.Tensor]:
        a = self.arrays
        f = torch.get_default_dtype()
        return {
            "x": torch.as_tensor(a.x[mask], dtype=f),
            "media": torch.as_tensor(a.media[mask], dtype=f),
            "brand": torch.as_tensor(a.brand[mask], dtype=torch.long),
            "sku": torch.as_tensor(a.sku[mask], dtype=torch.long),
            "period": torch.as_tensor(a.period[mask], dtype=torch.long),
            "log_gmv": torch.as_tensor(a.log_gmv[mask], dtype=f),
            "weight": torch.as_tensor(a.weight[mask], dtype=f),
        }

    def rows(self, name: str) -> pd.DataFrame:
        """Period, brand and SKU of the rows of a split, in tensor order (to map predictions back)."""
        return self.table.frame.loc[self.split_mask(name), [PERIOD, BRAND, SKU, GMV]].reset_index(drop=True)

    def _loader(self, name: str, shuffle: bool) -> DataLoader:
        data = self.splits[name]
        if self.batch_size is None:
            return DataLoader(_FullBatch(data), batch_size=None, shuffle=False)
        ds = DictDataset(data)
        base = RandomSampler(ds, generator=torch.Generator().manual_seed(self.seed)) if shuffle else SequentialSampler(ds)
        return DataLoader(ds, sampler=BatchSampler(base, self.batch_size, drop_last=False), batch_size=None)

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val" if len(self.fold.val) else "train", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False)

    def predict_dataloader(self) -> DataLoader:
        return self._loader("all", shuffle=False)
