"""The model inputs that training and serving both assemble: media lag stacks and the SKU → brand index.

The DataModule builds them from a panel, the served :class:`~nam_mmm.serving.predictor.Predictor` from the
training history overlaid with a request, and the planner and the served artifact read the brand order. One
implementation keeps what a model is trained on and what it is served identical.

* media: spend of each channel at t, t−1, …, t−L in rupees (:func:`~nam_mmm.data.features.adstock.lag_stack`).
  National media lag one series per channel (T, C); SKU-level media lag within each SKU's own series (T, S, C),
  all SKUs in one lag stack (:func:`sku_spend_series`, :func:`media_lag_stacks`).
* hierarchy: the model's brand index order is the panel's brands sorted (:func:`brand_order`);
  :func:`sku_brand_index` maps each SKU (in the model's SKU order) to its brand's index.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from nam_mmm.data.features.adstock import lag_stack


def brand_order(sku_brand: Mapping[str, str]) -> list[str]:
    """The brands in the model's brand index order (the panel's brands, sorted)."""
    return sorted(set(sku_brand.values()))


def sku_brand_index(skus: Sequence[str], sku_brand: Mapping[str, str]) -> np.ndarray:
    """(S,) int64: the :func:`brand_order` index of each SKU's brand, for ``skus`` in the model's SKU order."""
    index = {b: i for i, b in enumerate(brand_order(sku_brand))}
    return np.array([index[sku_brand[s]] for s in skus], dtype=np.int64)


def sku_spend_series(
    n_periods: int, n_skus: int, spend: np.ndarray, period: np.ndarray, sku: np.ndarray, history: np.ndarray | None = None
) -> np.ndarray:
    """(T, S, C) SKU-level spend in rupees: ``history`` (its first periods; zero where absent) overlaid with the
    ``spend`` (n, C) of rows at period index ``period`` and SKU index ``sku``."""
    spend = np.asarray(spend, dtype=float)
    series = np.zeros((n_periods, n_skus, spend.shape[1]))
    if history is not None:
        series[: len(history)] = history
    series[period, sku] = spend
    return series


def media_lag_stacks(series: np.ndarray, max_lag: int, period: np.ndarray, sku: np.ndarray | None = None) -> np.ndarray:
    """(n, C, L+1) lag stack of each row: spend at t, t−1, …, t−max_lag (0 before the first period).

    Args:
        series: national spend (T, C), one series per channel; or SKU-level spend (T, S, C) (:func:`sku_spend_series`).
        max_lag: carry-over length in periods.
        period: (n,) period index of each row; sku: (n,) SKU index of each row (SKU-level spend only).
    """
    n_c = series.shape[-1]
    if not n_c:
        return np.zeros((len(period), 0, max_lag + 1))
    if series.ndim == 2:
        return lag_stack(series, max_lag)[period]
    n_t, n_s = series.shape[:2]
    stacked = lag_stack(series.reshape(n_t, n_s * n_c), max_lag).reshape(n_t, n_s, n_c, max_lag + 1)
    return stacked[period, sku]
