"""Feature engineering: hand-checked derived features, feature-spec errors, multicollinearity and decomposition."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from nam_mmm.data.features.table import ROLES, FeatureConfig, build_features
from nam_mmm.data.panel import BRAND, CROSS_PRICE, NPS, PERIOD, PRICE, ROW, SKU, Panel, spend_col
from nam_mmm.data.quality.cleaning import prepare_panel
from nam_mmm.data.quality.diagnostics import decompose_total, high_correlation_pairs, vif_table
from nam_mmm.errors import ConfigError, DataError


def _at(frame: pd.DataFrame, period, sku: str) -> pd.Series:
    (i,) = np.flatnonzero((frame[PERIOD] == pd.Timestamp(period)).to_numpy() & (frame[SKU] == sku).to_numpy())
    return frame.iloc[i]


def _without_cross_price(panel: Panel) -> Panel:
    panel.frame = panel.frame.drop(columns=[CROSS_PRICE])
    return panel


# ---------------------------------------------------------------- prices ---------------------------------


def test_cross_price_is_mean_price_of_the_other_skus_of_the_brand(make_synthetic) -> None:
    panel = prepare_panel(make_synthetic(skus_per_brand=3))
    given = panel.frame[CROSS_PRICE].copy()
    table = build_features(_without_cross_price(panel), FeatureConfig(max_lag=2))
    f = table.frame
    assert table.descriptions[CROSS_PRICE]["source"] == "derived from price"
    p = panel.periods[7]
    others = [_at(f, p, f"brand_1_sku_{k}")[PRICE] for k in (1, 3)]
    assert _at(f, p, "brand_1_sku_2")[CROSS_PRICE] == pytest.approx(np.mean(others), rel=1e-12)
    # the generator draws its cross price the same way: derived and given agree on every row
    np.testing.assert_allclose(f[CROSS_PRICE], given, rtol=1e-9)


def test_single_sku_brand_falls_back_to_all_other_skus(make_synthetic) -> None:
    raw = make_synthetic()
    raw.frame = raw.frame[raw.frame[SKU] != "brand_2_sku_2"].reset_index(drop=True)  # brand_2 keeps one SKU
    panel = _without_cross_price(prepare_panel(raw))
    f = build_features(panel, FeatureConfig(max_lag=2)).frame
    p = panel.periods[5]
    lone = _at(f, p, "brand_2_sku_1")
    others = [_at(f, p, s)[PRICE] for s in ("brand_1_sku_1", "brand_1_sku_2")]
    assert lone[CROSS_PRICE] == pytest.approx(np.mean(others), rel=1e-12)
    # the two-SKU brand still uses its sibling only
    assert _at(f, p, "brand_1_sku_1")[CROSS_PRICE] == pytest.approx(others[1], rel=1e-12)


def test_no_fallback_leaves_single_sku_brand_missing_and_errors_if_used(make_synthetic) -> None:
    raw = make_synthetic()
    raw.frame = raw.frame[raw.frame[SKU] != "brand_2_sku_2"].reset_index(drop=True)
    panel = _without_cross_price(prepare_panel(raw))
    cfg = FeatureConfig(model_features=[PRICE], cross_price_fallback="none", max_lag=2)
    f = build_features(panel, cfg).frame
    assert f.loc[f[SKU] == "brand_2_sku_1", CROSS_PRICE].isna().all()
    assert f.loc[f[SKU] != "brand_2_sku_1", CROSS_PRICE].notna().all()
    with pytest.raises(DataError) as exc:
        build_features(panel, FeatureConfig(model_features=[PRICE, CROSS_PRICE], cross_price_fallback="none", max_lag=2))
    assert "model feature 'cross_price' has missing values" in str(exc.value)
    assert "column 'cross_price'" in str(exc.value)


def test_price_index(small_synthetic) -> None:
    f = build_features(prepare_panel(small_synthetic), FeatureConfig(max_lag=2)).frame
    p = f[PERIOD].iloc[0]
    a, b = _at(f, p, "brand_1_sku_1"), _at(f, p, "brand_1_sku_2")
    assert a["price_index"] == pytest.approx(a[PRICE] / ((a[PRICE] + b[PRICE]) / 2), rel=1e-12)
    np.testing.assert_allclose(f.groupby([PERIOD, BRAND])["price_index"].mean(), 1.0, rtol=1e-12)
    np.testing.assert_allclose(f["cross_price_index"], f[CROSS_PRICE] / f[PRICE], rtol=1e-12)


# ---------------------------------------------------------------- calendar --------------------------------


def test_month_cycle_and_festive_flag_monthly(make_synthetic) -> None:
    panel = prepare_panel(make_synthetic(n_brands=1, n_periods=12, freq="MS", start="2022-01-01"))
    f = build_features(panel, FeatureConfig(max_lag=2)).frame
    by_month = f.groupby(f[PERIOD].dt.month)[["month_sin", "month_cos", "festive", "time_index"]].first()
    np.testing.assert_allclose(by_month.loc[[1, 4, 7, 10], "month_sin"], [0, 1, 0, -1], atol=1e-12)
    np.testing.assert_allclose(by_month.loc[[1, 4, 7, 10], "month_cos"], [1, 0, -1, 0], atol=1e-12)
    assert by_month["festive"].tolist() == [0.0] * 9 + [1.0] * 3  # Oct–Dec by default
    assert by_month["time_index"].tolist() == list(range(12))
    custom = build_features(panel, FeatureConfig(max_lag=2, festive_months=[1])).frame
    assert set(custom.loc[custom["festive"] == 1, PERIOD].dt.month) == {1}


def test_weekly_month_position_moves_within_the_month(small_synthetic) -> None:
    f = build_features(prepare_panel(small_synthetic), FeatureConfig(max_lag=2)).frame
    row = _at(f, "2023-01-16", "brand_1_sku_1")  # 15 days into a 31-day January
    angle = 2 * np.pi * (15 / 31) / 12
    assert row["month_sin"] == pytest.approx(np.sin(angle))
    assert row["month_cos"] == pytest.approx(np.cos(angle))


# ---------------------------------------------------------------- media -----------------------------------


def test_share_of_voice_sums_to_one_where_anything_is_spent(small_synthetic) -> None:
    panel = prepare_panel(small_synthetic)
    silent = panel.periods[4]
    panel.frame.loc[panel.frame[PERIOD] == silent, panel.spend_columns] = 0.0
    f = build_features(panel, FeatureConfig(max_lag=2)).frame
    sov = f[[f"sov_{c}" for c in panel.channels]]
    total = sov.sum(axis=1)
    spent = f[panel.spend_columns].sum(axis=1) > 0
    assert (~spent).any() and spent.any()
    np.testing.assert_allclose(total[spent], 1.0, rtol=1e-12)
    assert (total[~spent] == 0).all()
    assert ((sov >= 0) & (sov <= 1)).all().all()


def test_spend_lags_atl_btl_and_per_channel_decay(small_synthetic) -> None:
    panel = prepare_panel(small_synthetic)
    cfg = FeatureConfig(max_lag=3, adstock_decay={"tv": 0.0, "default": 0.5}, atl_channels=["tv", "sponsorship"])
    f = build_features(panel, cfg).frame
    sku = f[SKU] == "brand_1_sku_1"
    tv = f.loc[sku, spend_col("tv")].to_numpy()
    np.testing.assert_array_equal(f.loc[sku, "spend_tv_lag1"].to_numpy(), np.r_[0.0, tv[:-1]])
    np.testing.assert_array_equal(f.loc[sku, "adstock_tv"].to_numpy(), tv)  # decay 0: adstock = spend
    dig = f.loc[sku, spend_col("digital")].to_numpy()
    assert f.loc[sku, "adstock_digital"].to_numpy()[5] == pytest.approx(dig[5] + 0.5 * dig[4] + 0.25 * dig[3] + 0.125 * dig[2])
    np.testing.assert_allclose(f["atl_spend"], f[spend_col("tv")] + f[spend_col("sponsorship")])
    np.testing.assert_allclose(f["atl_spend"] + f["btl_spend"], f[panel.spend_columns].sum(axis=1))
    with pytest.raises(ConfigError, match="unknown channel"):
        build_features(panel, FeatureConfig(adstock_decay={"radio": 0.3}))


def test_nps_lags_and_change(small_synthetic) -> None:
    panel = prepare_panel(small_synthetic)
    f = build_features(panel, FeatureConfig(max_lag=2, nps_lags=[1, 2])).frame
    for sku in panel.skus:
        s = f[f[SKU] == sku].sort_values(PERIOD)
        nps = s[NPS].to_numpy()
        np.testing.assert_array_equal(s["nps_lag1"].to_numpy(), np.r_[nps[0], nps[:-1]])  # first period: current
        np.testing.assert_array_equal(s["nps_lag2"].to_numpy(), np.r_[nps[:2], nps[:-2]])
        np.testing.assert_allclose(s["nps_change"].to_numpy(), np.r_[0.0, np.diff(nps)])


# ---------------------------------------------------------------- specs and errors -----------------------


def test_default_specs_and_roles_table(small_synthetic) -> None:
    table = build_features(prepare_panel(small_synthetic), FeatureConfig(max_lag=2))
    specs = {s.name: s for s in table.model_specs}
    assert list(specs) == FeatureConfig().model_features
    assert (specs[PRICE].transform, specs[PRICE].center, specs[PRICE].elasticity) == ("log", "sku", True)
    assert (specs["month_sin"].center, specs["month_sin"].scale) == ("none", "none")
    roles = table.roles_table().set_index("feature")
    assert set(roles["role"]) <= set(ROLES)
    assert roles.loc[PRICE, "in_model"] and roles.loc["adstock_tv", "in_model"]
    assert not roles.loc["festive", "in_model"] and not roles.loc["sov_tv", "in_model"]
    overridden = build_features(
        prepare_panel(small_synthetic), FeatureConfig(max_lag=2, specs={"discount": {"scale": "range"}})
    )
    assert {s.name: s for s in overridden.model_specs}["discount"].scale == "range"


def test_missing_model_feature_is_a_config_error_naming_it(small_synthetic) -> None:
    panel = prepare_panel(small_synthetic)
    with pytest.raises(ConfigError) as exc:
        build_features(panel, FeatureConfig(model_features=[PRICE, "temperature"], max_lag=2))
    assert "model feature 'temperature' is not in the feature table" in str(exc.value)
    assert "price_index" in str(exc.value)  # lists what is available


def test_bad_spec_override_is_a_config_error(small_synthetic) -> None:
    panel = prepare_panel(small_synthetic)
    with pytest.raises(ConfigError, match="feature 'discount': unknown role 'discounts'"):
        build_features(panel, FeatureConfig(max_lag=2, specs={"discount": {"role": "discounts"}}))
    with pytest.raises(ConfigError, match="transform must be log or identity"):
        build_features(panel, FeatureConfig(max_lag=2, specs={"nps": {"transform": "sqrt"}}))


def test_log_feature_with_non_positive_value_is_a_data_error(small_synthetic) -> None:
    panel = prepare_panel(small_synthetic)
    panel.frame.loc[9, PRICE] = 0.0
    line = int(panel.frame.loc[9, ROW])
    with pytest.raises(DataError) as exc:
        build_features(panel, FeatureConfig(max_lag=2))
    text = str(exc.value)
    assert "\n" not in text
    assert "column 'price'" in text and f"rows {line}" in text and "log-transformed but has values <= 0" in text


# ---------------------------------------------------------------- diagnostics ----------------------------


def test_vif_and_correlation_flag_a_near_duplicate_feature(small_synthetic) -> None:
    panel = prepare_panel(small_synthetic)
    rng = np.random.default_rng(0)
    panel.frame["price_twin"] = panel.frame[PRICE] * (1 + 1e-3 * rng.standard_normal(len(panel.frame)))
    panel.controls.append("price_twin")
    table = build_features(panel, FeatureConfig(max_lag=2))
    vif = vif_table(table).set_index("feature")
    assert {f"adstock_{c}" for c in panel.channels} <= set(vif.index)
    assert {PRICE, "price_twin"} <= set(vif.index)
    assert (vif["vif"] >= 1 - 1e-9).all()
    assert vif.loc["price_twin", "vif"] > 100 and vif.loc["price_twin", "flag"] == "high (>10)"
    assert vif.loc["nps", "vif"] < 5 and vif.loc["nps", "flag"] == ""
    assert vif["vif"].is_monotonic_decreasing
    pairs = high_correlation_pairs(table, 0.8)
    top = pairs.iloc[0]
    assert {top["feature_a"], top["feature_b"]} == {PRICE, "price_twin"} and top["r"] > 0.99
    assert (pairs["r"].abs() >= 0.8).all()
    assert len(high_correlation_pairs(table, 0.999)) <= len(pairs)


def test_vif_notes_a_rank_deficient_design(make_synthetic) -> None:
    # more national features than periods: the design cannot be full rank, and the table says so
    panel = prepare_panel(make_synthetic(n_brands=1, n_periods=8, freq="MS", start="2022-01-01", max_lag=2))
    table = build_features(panel, FeatureConfig(max_lag=2))
    vif = vif_table(table)
    assert "rank-deficient" in vif.attrs.get("note", "")
    assert np.isinf(vif["vif"]).any()


def test_decomposition_needs_two_seasons(make_synthetic) -> None:
    monthly = build_features(prepare_panel(make_synthetic(n_brands=1, n_periods=12, freq="MS", start="2022-01-01")))
    out, msg = decompose_total(monthly)
    assert out is None and msg == "skipped: 12 months < 2 seasons"
    weekly = build_features(prepare_panel(make_synthetic(n_brands=1, n_periods=104)), FeatureConfig(max_lag=2))
    out, msg = decompose_total(weekly)
    assert msg == "done: 104 weeks, period 52"
    assert list(out.columns) == ["observed", "trend", "seasonal", "resid"] and len(out) == 104
    # additive on log total GMV: the parts add back up where the trend is defined
    ok = out["trend"].notna()
    np.testing.assert_allclose(out.loc[ok, ["trend", "seasonal", "resid"]].sum(axis=1), out.loc[ok, "observed"], rtol=1e-9)
