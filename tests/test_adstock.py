"""Geometric adstock and lag stacks: hand-computed golden numbers, and carry-over across a fold boundary."""

from __future__ import annotations

import numpy as np
import pytest

from nam_mmm.data.features.adstock import geometric_adstock, geometric_weights, lag_stack
from nam_mmm.data.features.table import FeatureConfig, build_features
from nam_mmm.data.folds.datamodule import PanelDataModule
from nam_mmm.data.folds.splitters import WalkForwardSplitter
from nam_mmm.data.panel import PERIOD, SKU, spend_col
from nam_mmm.data.quality.cleaning import prepare_panel

# ---------------------------------------------------------------- golden numbers ------------------------


def test_weights_for_decay_half_are_powers_of_one_half() -> None:
    np.testing.assert_array_equal(geometric_weights(0.5, 3), [1.0, 0.5, 0.25, 0.125])


def test_weights_per_channel() -> None:
    w = geometric_weights(np.array([0.5, 0.0, 0.9]), 2)
    assert w.shape == (3, 3)
    np.testing.assert_allclose(w, [[1, 0.5, 0.25], [1, 0, 0], [1, 0.9, 0.81]])


def test_impulse_of_100_decays_by_half_each_period() -> None:
    spend = np.array([100.0, 0, 0, 0, 0, 0])
    np.testing.assert_allclose(geometric_adstock(spend, 0.5, 5), [100, 50, 25, 12.5, 6.25, 3.125])


def test_adstock_is_not_normalized_total_mass() -> None:
    # a one-off spend of 1 leaves 1 + d + d² + … + d^L in total (weights are not normalized)
    spend = np.zeros(20)
    spend[0] = 1.0
    total = geometric_adstock(spend, 0.6, 5).sum()
    assert total == pytest.approx((1 - 0.6**6) / (1 - 0.6))


def test_max_lag_truncates_carry_over() -> None:
    spend = np.array([100.0, 0, 0, 0, 0])
    np.testing.assert_allclose(geometric_adstock(spend, 0.5, 2), [100, 50, 25, 0, 0])
    np.testing.assert_allclose(geometric_adstock(spend, 0.5, 0), spend)  # max_lag 0: no carry-over


def test_steady_spend_sums_overlapping_carry_over() -> None:
    spend = np.array([10.0, 20.0, 0.0, 40.0])
    # t=3: 40 + 0.5·0 + 0.25·20 + 0.125·10
    np.testing.assert_allclose(geometric_adstock(spend, 0.5, 3), [10, 25, 12.5, 46.25])


def test_multi_channel_decays() -> None:
    spend = np.array([[10.0, 1.0], [20.0, 2.0], [0.0, 3.0]])
    out = geometric_adstock(spend, np.array([0.5, 0.0]), 2)
    assert out.shape == (3, 2)
    np.testing.assert_allclose(out[:, 0], [10, 25, 12.5])
    np.testing.assert_allclose(out[:, 1], [1, 2, 3])  # decay 0: the raw spend


def test_lag_stack_shapes_and_zero_padding() -> None:
    spend = np.array([1.0, 2.0, 3.0, 4.0])
    s = lag_stack(spend, 2)
    assert s.shape == (4, 3)
    np.testing.assert_array_equal(s, [[1, 0, 0], [2, 1, 0], [3, 2, 1], [4, 3, 2]])

    two = np.column_stack([spend, 10 * spend])
    s2 = lag_stack(two, 2)
    assert s2.shape == (4, 2, 3)
    np.testing.assert_array_equal(s2[:, 0, :], s)
    np.testing.assert_array_equal(s2[3, 1], [40, 30, 20])
    np.testing.assert_array_equal(s2[0, :, 1:], 0.0)  # nothing before the first period
    # max_lag equal to the series length: the last lag is all padding
    np.testing.assert_array_equal(lag_stack(spend, 4)[:, 4], 0.0)


def test_lag_stack_longer_than_series_is_zero_padded() -> None:
    spend = np.array([1.0, 2.0, 3.0])
    np.testing.assert_array_equal(lag_stack(spend, 5)[2], [3, 2, 1, 0, 0, 0])
    np.testing.assert_allclose(geometric_adstock(np.array([100.0, 0.0]), 0.5, 8), [100, 50])


@pytest.mark.parametrize("decay", [1.0, -0.1, 1.5])
def test_invalid_decay_raises(decay: float) -> None:
    with pytest.raises(ValueError, match="decay must be in"):
        geometric_adstock(np.ones(3), decay, 2)


def test_invalid_decay_in_one_channel_raises() -> None:
    with pytest.raises(ValueError, match="decay must be in"):
        geometric_adstock(np.ones((3, 2)), np.array([0.5, 1.0]), 2)


def test_negative_max_lag_raises() -> None:
    with pytest.raises(ValueError, match="max_lag"):
        lag_stack(np.ones(3), -1)


# ---------------------------------------------------------------- carry-over across folds ----------------


def test_first_test_row_carries_over_training_spend(small_synthetic) -> None:
    panel = prepare_panel(small_synthetic)
    max_lag, decay = 3, 0.5
    table = build_features(panel, FeatureConfig(adstock_decay=decay, max_lag=max_lag))
    fold = WalkForwardSplitter(initial_train=30, test_size=5).split(panel.periods)[0]
    dm = PanelDataModule(table, fold)

    first_test = fold.test[0]
    rows = dm.rows("test")
    assert rows.loc[0, PERIOD] == first_test
    stack = dm.splits["test"]["media"][0].double().numpy()  # (C, L+1), rupees
    assert stack.shape == (len(panel.channels), max_lag + 1)

    # hand-computed from the panel: spend of each channel at t, t-1, …, t-L (national: one value per period)
    t = list(panel.periods).index(first_test)
    lagged_periods = [panel.periods[t - lag] for lag in range(max_lag + 1)]
    assert all(p in fold.train for p in lagged_periods[1:])  # the lags reach back into the training window
    per_period = panel.frame.groupby(PERIOD)[[spend_col(c) for c in panel.channels]].first()
    expected = per_period.loc[lagged_periods].to_numpy().T  # (C, L+1)
    assert (expected[:, 1:] > 0).any(), "the test needs some training-period spend to carry over"
    np.testing.assert_allclose(stack, expected, rtol=1e-6)

    # fixed-decay adstock of that row = Σ_l 0.5^l · spend[t−l], and the feature table agrees
    hand = sum(decay**lag * expected[:, lag] for lag in range(max_lag + 1))
    np.testing.assert_allclose(stack @ geometric_weights(decay, max_lag), hand, rtol=1e-6)
    sku0 = rows.loc[0, SKU]
    row = table.frame[(table.frame[PERIOD] == first_test) & (table.frame[SKU] == sku0)].iloc[0]
    np.testing.assert_allclose([row[f"adstock_{c}"] for c in panel.channels], hand, rtol=1e-9)
    # the carried-over part is not zero: cutting the stack at the fold boundary would lose it
    assert (hand - expected[:, 0]).max() > 0


def test_first_period_of_the_calendar_has_no_carry_over(small_synthetic) -> None:
    panel = prepare_panel(small_synthetic)
    table = build_features(panel, FeatureConfig(max_lag=3))
    dm = PanelDataModule(table, WalkForwardSplitter(initial_train=30, test_size=5).split(panel.periods)[0])
    media = dm.splits["train"]["media"]
    first = dm.splits["train"]["period"] == 0
    assert first.any()
    assert (media[first][:, :, 1:] == 0).all()


def test_sku_level_spend_lags_within_each_skus_own_series(make_synthetic) -> None:
    """Spend that differs by SKU (a retailer's co-op budget, say) carries over within each SKU, not across SKUs,
    and its scale is the mean spend per row."""
    panel = make_synthetic()
    frame = panel.frame
    tv = spend_col(panel.channels[0])
    sku_factor = frame[SKU].map({s: i + 1.0 for i, s in enumerate(sorted(frame[SKU].unique()))})
    frame[tv] = frame[tv] * sku_factor  # SKU k spends k times the national amount
    prepare_panel(panel)
    assert not panel.national_spend()
    table = build_features(panel, FeatureConfig(max_lag=2))
    fold = WalkForwardSplitter(initial_train=20, test_size=5, step=5).split(panel.periods)[0]
    dm = PanelDataModule(table, fold)
    rows = table.frame.reset_index(drop=True)
    media = dm.arrays.media[:, 0, :]  # (rows, lags) of the first channel
    by_key = rows.set_index([PERIOD, SKU])[tv]
    periods = list(panel.periods)
    for i in np.random.default_rng(0).choice(len(rows), 25, replace=False):
        t = periods.index(rows.loc[i, PERIOD])
        for lag in range(3):
            want = by_key[(periods[t - lag], rows.loc[i, SKU])] if t - lag >= 0 else 0.0
            assert media[i, lag] == pytest.approx(want)
    train = dm.split_mask("train")
    assert dm.scaler.media_scale[0] == pytest.approx(rows.loc[train, tv].mean())
