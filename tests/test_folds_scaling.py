"""Fold plans on the calendar, scaling fitted on training periods only (no leakage), and the DT Mart plan."""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch

from helpers import requires_dtmart
from nam_mmm.data.features.scaling import FittedScaler
from nam_mmm.data.features.table import FeatureConfig, FeatureTable, build_features
from nam_mmm.data.folds.datamodule import PanelDataModule
from nam_mmm.data.folds.splitters import HoldoutSplitter, WalkForwardSplitter
from nam_mmm.data.panel import FIT_WEIGHT, GMV, PERIOD, PRICE, SKU
from nam_mmm.data.quality.cleaning import prepare_panel
from nam_mmm.errors import ConfigError

MONTHS = pd.date_range("2024-01-01", periods=12, freq="MS")


def _spans(folds, part: str) -> list[tuple[int, int]]:
    """(first, last) positions in MONTHS of one part of each fold."""
    return [(MONTHS.get_loc(getattr(f, part)[0]), MONTHS.get_loc(getattr(f, part)[-1])) for f in folds]


# ---------------------------------------------------------------- walk-forward ---------------------------


def test_expanding_folds() -> None:
    folds = WalkForwardSplitter(initial_train=6, test_size=1, step=1).split(MONTHS)
    assert len(folds) == 6
    assert [f.index for f in folds] == list(range(6))
    assert _spans(folds, "train") == [(0, 5 + k) for k in range(6)]
    assert [list(f.test) for f in folds] == [[m] for m in MONTHS[6:]]
    assert all(len(f.val) == 0 for f in folds)


def test_rolling_folds_keep_the_window_length() -> None:
    folds = WalkForwardSplitter(initial_train=6, test_size=1, mode="rolling").split(MONTHS)
    assert _spans(folds, "train") == [(k, 5 + k) for k in range(6)]
    assert all(len(f.train) == 6 for f in folds)


def test_step_and_test_size() -> None:
    folds = WalkForwardSplitter(initial_train=6, test_size=2, step=2).split(MONTHS)
    assert _spans(folds, "test") == [(6, 7), (8, 9), (10, 11)]
    assert _spans(folds, "train") == [(0, 5), (0, 7), (0, 9)]
    # a step shorter than the test size overlaps test windows; the last window still fits the calendar
    overlapping = WalkForwardSplitter(initial_train=6, test_size=3, step=2).split(MONTHS)
    assert _spans(overlapping, "test") == [(6, 8), (8, 10)]


def test_val_slice_is_carved_from_the_end_of_training() -> None:
    folds = WalkForwardSplitter(initial_train=6, test_size=1, val_size=2).split(MONTHS)
    f0 = folds[0]
    assert list(f0.train) == list(MONTHS[:4]) and list(f0.val) == list(MONTHS[4:6])
    assert list(f0.fit_periods) == list(f0.train)
    for f in folds:  # disjoint and in time order: train < val < test
        assert f.train[-1] < f.val[0] and f.val[-1] < f.test[0]


def test_max_folds_keeps_the_last_ones_renumbered() -> None:
    folds = WalkForwardSplitter(initial_train=6, test_size=1, max_folds=2).split(MONTHS)
    assert [f.index for f in folds] == [0, 1]
    assert [f.test[0] for f in folds] == [MONTHS[10], MONTHS[11]]


def test_fraction_and_unsorted_input() -> None:
    shuffled = MONTHS[[3, 0, 11, 5, 1, 2, 4, 6, 7, 8, 9, 10, 0]]  # unsorted, with a duplicate
    folds = WalkForwardSplitter(initial_train=0.5, test_size=3, step=3).split(shuffled)
    assert _spans(folds, "train") == [(0, 5), (0, 8)]
    assert folds[0].describe() == {
        "fold": 0,
        "train": "2024-01-01 … 2024-06-01 (6)",
        "val": "—",
        "test": "2024-07-01 … 2024-09-01 (3)",
    }


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(mode="sliding"), "expanding or rolling"),
        (dict(test_size=0), "test_size and step must be >= 1"),
        (dict(step=0), "test_size and step must be >= 1"),
        (dict(initial_train=12), "cannot hold initial_train=12"),
        (dict(initial_train=4, val_size=4), "must exceed val_size"),
        (dict(initial_train=2.5), "whole number of periods"),
        (dict(initial_train=-3), "whole number of periods"),
    ],
)
def test_walk_forward_config_errors(kwargs: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        WalkForwardSplitter(**{"initial_train": 6, **kwargs}).split(MONTHS)


# ---------------------------------------------------------------- holdout --------------------------------


def test_holdout_counts_and_fractions() -> None:
    (fold,) = HoldoutSplitter(test_size=2, val_size=1).split(MONTHS)
    assert list(fold.train) == list(MONTHS[:9])
    assert list(fold.val) == [MONTHS[9]]
    assert list(fold.test) == list(MONTHS[10:])
    weeks = pd.date_range("2024-01-01", periods=20, freq="W-MON")
    (f,) = HoldoutSplitter(test_size=0.15, val_size=0.15).split(weeks)
    assert (len(f.train), len(f.val), len(f.test)) == (14, 3, 3)
    (no_val,) = HoldoutSplitter(test_size=3, val_size=0).split(MONTHS)
    assert len(no_val.val) == 0 and len(no_val.train) == 9


def test_holdout_config_errors() -> None:
    with pytest.raises(ConfigError, match="fewer than 2 training periods"):
        HoldoutSplitter(test_size=6, val_size=5).split(MONTHS)
    with pytest.raises(ConfigError, match="whole number"):
        HoldoutSplitter(test_size=1.5).split(MONTHS)


# ---------------------------------------------------------------- scaling: no leakage --------------------


def _table(panel) -> FeatureTable:
    return build_features(prepare_panel(panel), FeatureConfig(max_lag=3))


def _tamper_outside_training(table: FeatureTable, train: pd.DatetimeIndex, factor: float = 1000.0) -> FeatureTable:
    """A copy of the table whose GMV, features and spend are multiplied by ``factor`` outside ``train``."""
    panel = copy.copy(table.panel)
    panel.frame = table.panel.frame.copy()
    later = ~panel.frame[PERIOD].isin(train)
    panel.frame.loc[later, [GMV, *panel.spend_columns]] *= factor
    frame = table.frame.copy()
    later = ~frame[PERIOD].isin(train)
    numeric = [GMV, *panel.spend_columns, *(s.name for s in table.model_specs)]
    numeric += [c for c in frame.columns if c.startswith(("adstock_", "sov_"))]
    frame.loc[later, numeric] *= factor
    return dataclasses.replace(table, frame=frame, panel=panel)


def test_scaler_and_train_tensors_ignore_everything_after_training(small_synthetic) -> None:
    table = _table(small_synthetic)
    fold = WalkForwardSplitter(initial_train=24, test_size=8, val_size=4).split(table.panel.periods)[0]
    dm = PanelDataModule(table, fold)
    tampered = PanelDataModule(_tamper_outside_training(table, fold.train), fold)

    a, b = dm.scaler, tampered.scaler
    for name in ("center", "scale", "media_scale", "y_center"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name
    assert a.y_scale == b.y_scale
    for key, tensor in dm.splits["train"].items():
        assert torch.equal(tensor, tampered.splits["train"][key]), key
    # the tampering is real: the test rows did change
    assert not torch.equal(dm.splits["test"]["log_gmv"], tampered.splits["test"]["log_gmv"])
    assert not torch.equal(dm.splits["test"]["x"], tampered.splits["test"]["x"])
    assert not torch.equal(dm.splits["test"]["media"], tampered.splits["test"]["media"])


def test_scaler_statistics_are_training_means(small_synthetic) -> None:
    table = _table(small_synthetic)
    fold = WalkForwardSplitter(initial_train=24, test_size=8).split(table.panel.periods)[0]
    dm = PanelDataModule(table, fold)
    sc = dm.scaler
    train = table.frame[table.frame[PERIOD].isin(fold.train)]
    skus = table.panel.skus
    # y: per-SKU mean log GMV of the training rows
    expected_y = np.log(train[GMV]).groupby(train[SKU]).mean().reindex(skus).to_numpy()
    np.testing.assert_allclose(sc.y_center, expected_y, rtol=1e-12)
    # price: log-transformed, centred per SKU on the training mean
    j = sc.feature_names.index(PRICE)
    assert sc.log_mask[j]
    expected_price = np.log(train[PRICE]).groupby(train[SKU]).mean().reindex(skus).to_numpy()
    np.testing.assert_allclose(sc.center[:, j], expected_price, rtol=1e-12)
    # media: mean spend per training period, rupees
    per_period = train.groupby(PERIOD)[table.panel.spend_columns].first()
    np.testing.assert_allclose(sc.media_scale, per_period.mean().to_numpy(), rtol=1e-12)
    # scaled training features: mean 0 for centred ones
    z = sc.transform(dm.arrays.x[dm.split_mask("train")], dm.arrays.sku[dm.split_mask("train")])
    assert abs(z[:, j].mean()) < 1e-9 and z[:, j].std() == pytest.approx(1.0)


def test_rows_out_of_the_fit_do_not_move_the_target_scale(small_synthetic) -> None:
    table = _table(small_synthetic)
    fold = WalkForwardSplitter(initial_train=24, test_size=8).split(table.panel.periods)[0]
    base = PanelDataModule(table, fold).scaler
    frame = table.frame.copy()
    hit = frame[PERIOD] == fold.train[10]  # e.g. an outage week that was dropped
    frame.loc[hit, FIT_WEIGHT] = 0.0
    frame.loc[hit, GMV] *= 1e-3
    excluded = PanelDataModule(dataclasses.replace(table, frame=frame), fold)
    assert (excluded.splits["train"]["weight"] == 0).sum() == hit.sum()
    # GMV statistics come from the other 23 training weeks only: close to the full-data ones, not dragged down
    np.testing.assert_allclose(excluded.scaler.y_center, base.y_center, atol=0.05)


def test_scaler_round_trips_through_a_dict(small_synthetic) -> None:
    table = _table(small_synthetic)
    dm = PanelDataModule(table, HoldoutSplitter(test_size=8, val_size=4).split(table.panel.periods)[0])
    back = FittedScaler.from_dict(dm.scaler.to_dict())
    mask = dm.split_mask("test")
    np.testing.assert_array_equal(
        back.transform(dm.arrays.x[mask], dm.arrays.sku[mask]), dm.scaler.transform(dm.arrays.x[mask], dm.arrays.sku[mask])
    )
    assert back.y_scale == dm.scaler.y_scale


# ---------------------------------------------------------------- DT Mart ------------------------------


@requires_dtmart
def test_dtmart_walk_forward_plan_and_report(compose) -> None:
    from nam_mmm.entry import load_table, make_splitter

    cfg = compose("inspect", ["data=dtmart"])
    table = load_table(cfg.data)
    folds = make_splitter(cfg.validation).split(table.panel.periods)
    assert len(folds) == 6
    assert [f.test[0] for f in folds] == list(pd.date_range("2016-01-01", "2016-06-01", freq="MS"))
    # no early-stopping month (the auto shrinkage regularizes); training always ends before the test month
    assert all(len(f.test) == 1 and len(f.val) == 0 and f.train[-1] < f.test[0] for f in folds)
    assert list(folds[0].train) == list(pd.date_range("2015-07-01", "2015-12-01", freq="MS"))

    report = table.panel.report
    (outage,) = report.by_check("outage")
    assert outage.periods == ["2015-08-01"]
    missing = {f.column: f for f in report.by_check("missing")}
    for column in ("Radio", "Other"):
        assert column in missing, sorted(missing)
        assert missing[column].message.startswith("9 of 12 periods missing")
        assert len(missing[column].periods) == 9
    # dropped (the config's action): the outage month leaves the fit but stays in the calendar for carry-over
    assert "outage" not in [s.name for s in table.model_specs]
    august = table.frame["period"] == pd.Timestamp("2015-08-01")
    assert (table.frame.loc[august, FIT_WEIGHT] == 0).all() and (table.frame.loc[~august, FIT_WEIGHT] == 1).all()

    dm = PanelDataModule(table, folds[0])
    assert dm.splits["train"]["x"].shape[0] == 6 * 5 and dm.splits["test"]["x"].shape[0] == 5
    assert float(dm.splits["train"]["weight"].sum()) == 5 * 5  # the outage month's 5 rows carry weight 0
    # the 9 reported channels are validated as they are, then summed into the configured groups
    assert table.channels == ["atl", "online", "sem"]
    assert dm.splits["train"]["media"].shape[1:] == (3, cfg.data.features.max_lag + 1)
    from nam_mmm.data.quality.cleaning import prepare_panel
    from nam_mmm.data.sources.dtmart import load_dtmart

    raw = prepare_panel(load_dtmart(cfg.data.source.root)).spend_by_period()
    atl = raw[["spend_tv", "spend_sponsorship", "spend_content_marketing", "spend_radio"]].sum(axis=1)
    np.testing.assert_allclose(table.panel.spend_by_period()["spend_atl"].to_numpy(), atl.to_numpy())


@requires_dtmart
def test_dtmart_holdout_plan(compose) -> None:
    from nam_mmm.entry import load_table, make_splitter

    cfg = compose("inspect", ["data=dtmart", "validation=holdout"])
    table = load_table(cfg.data)
    (fold,) = make_splitter(cfg.validation).split(table.panel.periods)
    assert list(fold.test) == [pd.Timestamp("2016-05-01"), pd.Timestamp("2016-06-01")]
    assert list(fold.val) == [pd.Timestamp("2016-04-01")]
    assert len(fold.train) == 9
