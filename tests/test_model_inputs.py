"""The lag stacks and the SKU -> brand index, written once in nam_mmm.data.features.model_inputs, reproduce bit for
bit the two copies they replace: the DataModule's (panel_arrays, sku_brand) and the Predictor's (_media, the brand
index). The reference functions below are those copies as they were (commit 5fceb70; the Predictor's check that
national spend is one value per period left out)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from nam_mmm.data.features.adstock import lag_stack
from nam_mmm.data.features.model_inputs import brand_order, media_lag_stacks, sku_brand_index, sku_spend_series
from nam_mmm.data.features.table import build_features
from nam_mmm.data.folds.datamodule import PanelDataModule, panel_arrays
from nam_mmm.data.folds.splitters import HoldoutSplitter
from nam_mmm.data.panel import PERIOD, SKU, spend_col
from nam_mmm.data.quality.cleaning import prepare_panel
from nam_mmm.serving.predictor import Predictor


# ---------------------------------------------------------------- the copies as they were
def old_datamodule_media(table, period_idx, sku_idx):
    panel, df = table.panel, table.frame
    periods, skus = panel.periods, panel.skus
    if panel.channels:
        by_period = panel.spend_by_period().to_numpy(dtype=float)
        if panel.national_spend():
            media = lag_stack(by_period, table.config.max_lag)[period_idx]
        else:
            n_t, n_s, n_c, lags = len(periods), len(skus), len(panel.channels), table.config.max_lag + 1
            series = np.zeros((n_t, n_s, n_c))
            series[period_idx, sku_idx] = df[panel.spend_columns].to_numpy(dtype=float)
            stacked = lag_stack(series.reshape(n_t, n_s * n_c), table.config.max_lag).reshape(n_t, n_s, n_c, lags)
            media = stacked[period_idx, sku_idx]
    else:
        by_period = np.zeros((len(periods), 0))
        media = np.zeros((len(df), 0, table.config.max_lag + 1))
    return media, by_period


def old_datamodule_sku_brand(panel):
    brands = panel.brands
    mapping = panel.sku_brand
    return np.array([brands.index(mapping[s]) for s in panel.skus])


def old_predictor_brand_index(spec):
    brands = sorted(set(spec.sku_brand.values()))
    return np.array([brands.index(spec.sku_brand[s]) for s in spec.skus], dtype=np.int64)


def old_predictor_history(dm):
    panel = dm.table.panel
    if panel.national_spend():
        return dm.arrays.spend_per_period
    history = np.zeros((len(panel.periods), len(panel.skus), len(panel.channels)))
    history[dm.arrays.period, dm.arrays.sku] = dm.arrays.media[:, :, 0]
    return history


def old_predictor_media(self, df, t_idx, s_idx):
    n_c, lags = len(self.spec.channels), self.spec.max_lag
    if not n_c:
        return np.zeros((len(df), 0, lags + 1))
    n_t = max(len(self.history), int(t_idx.max()) + 1)
    spend = df[[spend_col(c) for c in self.spec.channels]].to_numpy(float)
    if self.spec.national:
        series = np.zeros((n_t, n_c))
        series[: len(self.history)] = self.history
        by_period = pd.DataFrame(spend).groupby(t_idx)
        series[by_period.first().index.to_numpy()] = by_period.first().to_numpy()
        return lag_stack(series, lags)[t_idx]
    n_s = len(self.spec.skus)
    series = np.zeros((n_t, n_s, n_c))
    series[: len(self.history)] = self.history
    series[t_idx, s_idx] = spend
    return lag_stack(series.reshape(n_t, n_s * n_c), lags).reshape(n_t, n_s, n_c, lags + 1)[t_idx, s_idx]


def same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and a.dtype == b.dtype and a.tobytes() == b.tobytes()


# ---------------------------------------------------------------- panels
def _table(make_synthetic, **kw):
    panel = make_synthetic(n_brands=3, skus_per_brand=2, n_periods=30, freq="MS", start="2022-01-01", **kw)
    prepare_panel(panel)
    return build_features(panel, {"max_lag": 4})


@pytest.fixture(params=["national", "sku", "brand", "no_media"])
def table(request, make_synthetic):
    if request.param == "no_media":
        t = _table(make_synthetic)
        panel = t.panel
        panel.frame = panel.frame.drop(columns=panel.spend_columns)
        panel.channels = []
        return build_features(panel, {"max_lag": 4})
    t = _table(make_synthetic, spend_level=request.param)
    assert t.panel.national_spend() == (request.param == "national")
    return t


def test_datamodule_lag_stacks_and_brand_index_are_the_old_ones_bit_for_bit(table) -> None:
    a = panel_arrays(table)
    media, by_period = old_datamodule_media(table, a.period, a.sku)
    assert same_bits(a.media, media) and same_bits(a.spend_per_period, by_period)
    fold = HoldoutSplitter(test_size=4, val_size=3).split(table.panel.periods)[0]
    dm = PanelDataModule(table, fold)
    assert same_bits(dm.sku_brand, old_datamodule_sku_brand(table.panel))
    assert same_bits(np.asarray(old_predictor_history(dm), dtype=float), _new_history(dm))


def _new_history(dm):
    panel = dm.table.panel
    if panel.national_spend():
        return np.asarray(dm.arrays.spend_per_period, dtype=float)
    return sku_spend_series(len(panel.periods), len(panel.skus), dm.arrays.media[:, :, 0], dm.arrays.period, dm.arrays.sku)


def test_predictor_lag_stacks_of_a_request_are_the_old_ones_bit_for_bit(table) -> None:
    """History overlaid with a request that rewrites two past periods and adds two future ones."""
    panel = table.panel
    fold = HoldoutSplitter(test_size=4, val_size=3).split(panel.periods)[0]
    dm = PanelDataModule(table, fold)
    spec = SimpleNamespace(channels=list(panel.channels), max_lag=int(table.config.max_lag), national=panel.national_spend(), skus=list(panel.skus))
    host = SimpleNamespace(spec=spec, history=_new_history(dm))
    rng = np.random.default_rng(0)
    n_t, skus = len(panel.periods), list(panel.skus)
    t_idx = np.repeat([n_t - 5, n_t - 2, n_t, n_t + 1], len(skus))
    s_idx = np.tile(np.arange(len(skus)), 4)
    df = pd.DataFrame({PERIOD: t_idx, SKU: [skus[i] for i in s_idx]})
    for c in panel.channels:
        per_period = rng.uniform(0, 1e6, 4)
        df[spend_col(c)] = np.repeat(per_period, len(skus)) if spec.national else rng.uniform(0, 1e6, len(df))
    assert same_bits(Predictor._media(host, df, t_idx, s_idx), old_predictor_media(host, df, t_idx, s_idx))


def test_the_brand_index_is_the_old_one_when_brand_names_do_not_sort_like_skus() -> None:
    sku_brand = {"a1": "zeta", "a2": "alpha", "b1": "mid", "b2": "alpha", "c": "zeta"}
    skus = ["a2", "b2", "b1", "a1", "c"]  # the model's SKU order: by (brand, sku)
    spec = SimpleNamespace(skus=skus, sku_brand=sku_brand)
    assert same_bits(sku_brand_index(skus, sku_brand), old_predictor_brand_index(spec))
    assert brand_order(sku_brand) == ["alpha", "mid", "zeta"]
    assert list(sku_brand_index(skus, sku_brand)) == [0, 0, 1, 2, 2]


def test_media_lag_stacks_of_no_channels_are_empty_stacks() -> None:
    out = media_lag_stacks(np.zeros((6, 0)), 3, np.array([0, 2, 5]))
    assert same_bits(out, np.zeros((3, 0, 4)))
