"""Report metrics (zeros in the target, skill vs the naive mean) and the residual diagnostics on residuals whose
flaws are known."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from nam_mmm.evaluation.diagnostics import feature_importance, residual_diagnostics
from nam_mmm.evaluation.metrics import full_metrics, mape, metrics_table, naive_mean_forecast, skill_vs_naive, wmape


def test_mape_is_finite_with_zero_targets_and_says_how_many_were_left_out():
    actual = np.array([0.0, 100.0, 200.0, 0.0])
    predicted = np.array([5.0, 110.0, 180.0, 1.0])
    m = full_metrics(actual, predicted)
    assert np.isfinite(m["mape"]) and m["mape"] == pytest.approx((10 / 100 + 20 / 200) / 2 * 100)
    assert m["n_zero_actual"] == 2
    assert m["wmape"] == pytest.approx((5 + 10 + 20 + 1) / 300 * 100)  # zeros stay in wMAPE
    assert mape(actual, predicted) == m["mape"]  # the existing MAPE is unchanged


def test_error_signs_correlations_and_skill():
    a = np.array([10.0, 20.0, 30.0, 40.0])
    p = a + np.array([1.0, 1.0, 1.0, 5.0])
    m = full_metrics(a, p, naive=np.full(4, a.mean()))
    assert m["mean_error"] == pytest.approx(2.0) and m["median_error"] == pytest.approx(1.0)
    assert m["spearman"] == pytest.approx(1.0)
    assert m["skill_vs_naive"] == pytest.approx(1 - 28 / 500)
    assert skill_vs_naive(a, a, np.full(4, a.mean())) == 1.0
    assert wmape(np.zeros(3), np.ones(3)) != wmape(np.zeros(3), np.ones(3))  # all-zero target: no wMAPE (NaN)


def test_metrics_table_levels_and_naive_forecast():
    rows = pd.DataFrame(
        {
            "fold": [0, 0, 0, 0],
            "brand": ["b1", "b1", "b2", "b2"],
            "sku": ["s1", "s1", "s2", "s2"],
            "actual": [10.0, 12.0, 100.0, 90.0],
            "predicted": [11.0, 11.0, 95.0, 95.0],
            "fit_weight": [1, 1, 1, 0],
        }
    )
    train = pd.DataFrame({"fold": [0, 0, 0], "sku": ["s1", "s1", "s2"], "actual": [8.0, 10.0, 80.0], "fit_weight": [1, 1, 1]})
    rows["naive"] = naive_mean_forecast(rows, train)
    assert rows["naive"].tolist() == [9.0, 9.0, 80.0, 80.0]
    t = metrics_table(rows)
    assert t[["level", "unit"]].values.tolist() == [["all", "all"], ["brand", "b1"], ["brand", "b2"], ["sku", "s1"], ["sku", "s2"]]
    assert int(t.loc[t["unit"] == "all", "n"].iloc[0]) == 3  # the zero-weight row is not scored
    assert t.loc[t["unit"] == "s2", "mape"].iloc[0] == pytest.approx(5.0)


def _rows(resid: np.ndarray, level: np.ndarray | None = None) -> pd.DataFrame:
    n_t, n_s = resid.shape
    periods = pd.date_range("2023-01-02", periods=n_t, freq="W-MON")
    predicted = np.exp(np.repeat(np.log(1e6) + (level if level is not None else np.zeros(n_s))[None, :], n_t, axis=0))
    actual = predicted * np.exp(resid)
    return pd.DataFrame(
        {
            "period": np.repeat(periods, n_s),
            "sku": np.tile([f"s{i}" for i in range(n_s)], n_t),
            "actual": actual.ravel(),
            "predicted": predicted.ravel(),
            "fit_weight": 1.0,
        }
    )


def test_white_noise_passes_and_flawed_residuals_are_flagged():
    rng = np.random.default_rng(0)
    # each test rejects clean residuals 5 % of the time by design: check the rate over many draws, not one draw
    verdicts = pd.concat([residual_diagnostics(_rows(rng.normal(0, 0.05, (80, 4)), np.array([0.0, 0.5, 1.0, 1.5])), "in_sample") for _ in range(40)])
    false_alarms = (verdicts["verdict"] != "pass").groupby(verdicts["test"]).mean()
    assert (false_alarms <= 0.15).all(), false_alarms

    shocks = rng.normal(0, 0.05, 80)
    ar = np.zeros(80)
    for t in range(1, 80):
        ar[t] = 0.85 * ar[t - 1] + shocks[t]
    serial = residual_diagnostics(_rows(ar[:, None] + rng.normal(0, 0.005, (80, 4))), "out_of_sample").set_index("test")
    assert serial.loc["durbin_watson", "verdict"] == "warn" and serial.loc["durbin_watson", "statistic"] < 1.0
    assert serial.filter(like="ljung_box", axis=0)["verdict"].iloc[0] == "warn"

    level = np.array([0.0, 1.0, 2.0, 3.0])  # error size grows with the SKU's level
    hetero = residual_diagnostics(_rows(rng.normal(0, 1, (80, 4)) * (0.01 + 0.05 * level), level), "in_sample").set_index("test")
    assert hetero.loc["breusch_pagan", "verdict"] == "warn"

    heavy = residual_diagnostics(_rows(rng.standard_t(1.5, (80, 4)) * 0.02), "in_sample").set_index("test")
    assert heavy.loc["shapiro_wilk", "verdict"] == "warn"


def test_too_few_rows_are_skipped_with_a_reason():
    d = residual_diagnostics(_rows(np.array([[0.01, -0.02]])), "out_of_sample")
    assert set(d["verdict"]) == {"skipped"} and d["reading"].str.len().min() > 0


def test_feature_importance_is_anchor_free():
    d = pd.DataFrame({"fit_weight": 1.0, "effect_price": [0.1, -0.1, 0.3, -0.3], "effect_nps": [5.01, 4.99, 5.01, 4.99]})
    imp = feature_importance(d).set_index("feature")
    assert imp.loc["price", "mean_abs_effect_log_gmv"] == pytest.approx(0.2)
    assert imp.loc["nps", "mean_abs_effect_log_gmv"] == pytest.approx(0.01)  # a constant offset (the anchor) does not count
    assert imp["share"].sum() == pytest.approx(1.0)
