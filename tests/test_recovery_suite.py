"""The recovery suite: its scenarios, the baselines' attribution from coefficients, the recovery metrics, and a
fast slice of the benchmark with thresholds (a regression in recovery fails here, not only in the benchmark).

The slices train the HR-NAM in this process on small panels (about 10 s each): one generator scenario with strong,
well-separated media, and, when ``../shared/recovery`` is present, one panel of the independent generator.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from helpers import REPO_ROOT, train_in_process
from nam_mmm.data.features.table import FeatureConfig, build_features
from nam_mmm.data.folds.splitters import HoldoutSplitter, WalkForwardSplitter
from nam_mmm.data.panel import GMV, PRICE, spend_col
from nam_mmm.data.quality.cleaning import prepare_panel
from nam_mmm.data.sources.synthetic import SyntheticConfig, load_synthetic
from nam_mmm.evaluation.baseline_attribution import baseline_attribution, fit_fold
from nam_mmm.evaluation.baselines import run_baselines
from nam_mmm.evaluation.recovery import attribution_recovery, elasticity_recovery, noise_floor_gap
from nam_mmm.evaluation.recovery_suite import (
    DESCRIPTIONS,
    SCENARIOS,
    fold_plan,
    generate_scenario,
    scenario_config,
    score_run,
    shared_panels,
    shared_truth,
)
from nam_mmm.errors import ConfigError

SHARED = REPO_ROOT.parent / "shared" / "recovery"
SHARED_PANEL = SHARED / "medium_business_seed1"
requires_shared = pytest.mark.skipif(not (SHARED_PANEL / "panel.csv").exists(), reason="../shared/recovery/medium_business_seed1 not present")


# ---------------------------------------------------------------- scenarios ------------------------------


def _breaks(cfg: SyntheticConfig) -> set[str]:
    """Which of the generator's original assumptions a scenario config leaves."""
    forms = {ch.saturation or cfg.saturation for ch in cfg.channels}
    out = {f"saturation:{f}" for f in forms}
    out |= {f"adstock:{ch.adstock or cfg.adstock}" for ch in cfg.channels}
    out |= {f"pattern:{ch.pattern}" for ch in cfg.channels if ch.pattern != "flighted"}
    if any(ch.pattern == "flighted" and ch.on_air_share < 0.7 for ch in cfg.channels):
        out.add("flighted_zero_periods")
    if cfg.seasonality != "smooth":
        out.add("festival")
    if cfg.spend_level != "national":
        out.add(f"spend:{cfg.spend_level}")
    if cfg.spend_correlation is not None and cfg.spend_correlation >= 0.5:
        out.add("correlated_spend")
    if cfg.freq == "MS":
        out.add("monthly")
    return out


def test_scenarios_cover_the_assumptions_they_must_break() -> None:
    assert len(SCENARIOS) >= 6 and set(DESCRIPTIONS) == set(SCENARIOS)
    configs = {name: scenario_config(name, 1) for name in SCENARIOS}
    seen: set[str] = set()
    for name, cfg in configs.items():
        departures = _breaks(cfg) - {"saturation:hill", "adstock:geometric"}
        assert len(departures) >= 2 or cfg.noise_sd != 0.05, (name, departures)  # each combines several
        seen |= _breaks(cfg)
    needed = {"festival", "saturation:hill", "saturation:log", "saturation:exponential", "adstock:geometric", "adstock:delayed",
              "flighted_zero_periods", "pattern:flat", "correlated_spend", "spend:sku", "spend:brand", "monthly"}
    assert needed <= seen, needed - seen
    assert any(c.spend_level == "national" for c in configs.values()) and any(c.freq.startswith("W") for c in configs.values())
    assert len({c.noise_sd for c in configs.values()}) >= 3
    shares = [c.media_share for c in configs.values()]
    assert min(shares) == pytest.approx(0.05) and max(shares) == pytest.approx(0.15)


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_every_scenario_validates_with_media_in_range_and_four_folds(name: str) -> None:
    sp = generate_scenario(name, 2)
    cfg = sp.config
    assert 0.05 - 1e-6 <= sp.truth["media_share_of_gmv"] <= 0.15 + 1e-6
    assert sp.truth["media_share_of_gmv"] == pytest.approx(cfg.media_share, abs=1e-6)
    assert all(np.isfinite(v) and v > 0 for v in sp.truth["roi"].values())
    panel = load_synthetic(**{k: getattr(cfg, k) for k in SyntheticConfig.__dataclass_fields__})
    prepare_panel(panel)
    assert panel.report.errors == []
    assert panel.national_spend() == (cfg.spend_level == "national")
    folds = WalkForwardSplitter(**fold_plan(cfg.n_periods, cfg.freq)).split(panel.periods)
    assert len(folds) == 4 and folds[-1].test[-1] == panel.periods[-1]


def test_scenario_overrides_and_unknown_names() -> None:
    cfg = scenario_config("festival_national", 3, n_brands=2)
    assert cfg.seed == 3 and cfg.n_brands == 2 and cfg.seasonality == "festival"
    with pytest.raises(ConfigError, match="unknown recovery scenario"):
        scenario_config("nope")
    with pytest.raises(ConfigError, match="too few"):
        fold_plan(40, "W-MON")


def test_recovery_config_loads_a_scenario(compose) -> None:
    from nam_mmm.entry import load_table

    cfg = compose("train", ["data=recovery", "data.source.scenario=monthly_festival_sku", "data.source.seed=2", "logger=none"])
    table = load_table(cfg.data)
    assert table.panel.source == "scenario monthly_festival_sku (seed=2)"
    assert table.panel.freq == "MS" and not table.panel.national_spend()
    assert table.panel.truth["config"]["seasonality"] == "festival" and "rows" in table.panel.truth


# ---------------------------------------------------------------- baseline attribution -------------------

G_TV = 2.5e-9  # true effect of one rupee of TV on log GMV
PRICE_ELASTICITY = -1.3


def _known_table(seed: int = 3):
    """A panel whose log GMV is exactly level + price elasticity · log price + a TV term (no noise, no carry-over)."""
    panel = load_synthetic(n_brands=2, skus_per_brand=2, n_periods=48, seed=seed)
    f = panel.frame
    level = f["sku"].map({s: 10.0 + i for i, s in enumerate(panel.skus)})
    return panel, f, level


def test_log_linear_attribution_is_hand_computable() -> None:
    panel, f, level = _known_table()
    tv = f[spend_col("tv")]
    f[GMV] = np.exp(level + PRICE_ELASTICITY * np.log(f[PRICE]) + G_TV * tv)
    table = build_features(panel, FeatureConfig(model_features=[PRICE], adstock_decay=0.0, max_lag=2))
    folds = WalkForwardSplitter(initial_train=24, test_size=6, step=6, val_size=4).split(panel.periods)
    got = baseline_attribution(table, folds, ["ols"])["ols"]
    roi = got["roi"].set_index("channel")
    # by hand: each row's GMV times 1 − exp(−g · spend), summed over every row; spend counted once per period
    expected = float((f[GMV] * -np.expm1(-G_TV * tv)).sum())
    assert roi.loc["tv", "contribution_inr"] == pytest.approx(expected, rel=1e-6)
    spend_tv = panel.spend_by_period()[spend_col("tv")].sum()
    assert roi.loc["tv", "spend_inr"] == pytest.approx(spend_tv)
    assert roi.loc["tv", "roi"] == pytest.approx(expected / spend_tv, rel=1e-6)
    others = roi.drop(index="tv")
    assert (others["contribution_inr"].abs() < 1e-6 * expected).all()  # channels without an effect get none
    el = got["elasticities"]
    own = el[el["feature"] == PRICE]
    assert len(own) == len(panel.skus)
    np.testing.assert_allclose(own["elasticity"], PRICE_ELASTICITY, rtol=1e-6)  # β_price / scale_price


def test_loglog_attribution_uses_the_log_of_adstock() -> None:
    panel, f, level = _known_table()
    tv = f[spend_col("tv")]
    (fold,) = HoldoutSplitter(test_size=8, val_size=4).split(panel.periods)
    fit_periods = fold.train.union(fold.val)
    scale = panel.spend_by_period()[spend_col("tv")].loc[fit_periods].mean()  # the fold scaler's media scale
    h = 0.08
    f[GMV] = np.exp(level + PRICE_ELASTICITY * np.log(f[PRICE]) + h * np.log1p(tv / scale))
    table = build_features(panel, FeatureConfig(model_features=[PRICE], adstock_decay=0.0, max_lag=2))
    fit = fit_fold(table, fold, "loglog_ridge")
    media = fit.beta[len(panel.skus) + 1 :]  # levels, price, then the media columns in channel order
    tv_idx = panel.channels.index("tv")
    assert media[tv_idx] == pytest.approx(h, rel=0.02)  # penalized, noise-free: close to the truth
    y_hat = f[GMV].to_numpy()  # a near-exact fit: compare with the fitted β on the true rows
    by_hand = float((y_hat * (1 - (1 + tv.to_numpy() / scale) ** -media[tv_idx])).sum())
    assert fit.contribution[tv_idx] == pytest.approx(by_hand, rel=0.02)
    # the attribution's test predictions are the baseline's own
    base, _, _ = run_baselines(table, [fold], ["loglog_ridge"])
    np.testing.assert_allclose(fit.test_predicted, base["predicted"].to_numpy(), rtol=1e-10)


def test_attribution_and_elasticity_metrics_on_a_known_case() -> None:
    true_roi = {"a": 1.0, "b": 2.0, "c": 4.0}
    true_con = {"a": 10.0, "b": 30.0, "c": 60.0}
    est = pd.DataFrame({"channel": ["a", "b", "c"], "roi": [1.5, 1.0, 4.0], "contribution_inr": [20.0, 20.0, 60.0]})
    m = attribution_recovery(true_roi, true_con, est)
    assert m["roi_mape"] == pytest.approx((50 + 50 + 0) / 3)
    assert m["roi_rank_corr"] == pytest.approx(0.5)  # ranks (2, 1, 3) against (1, 2, 3)
    assert m["contribution_share_mae_pp"] == pytest.approx((10 + 10 + 0) / 3)  # shares 0.2/0.2/0.6 vs 0.1/0.3/0.6
    assert m["media_total_ratio"] == pytest.approx(1.0)
    truth = {"own_price_elasticity": {"s1": -1.0, "s2": -2.0}, "cross_price_elasticity": {"b1": 0.5}, "skus": {"s1": "b1", "s2": "b1"}}
    el = pd.DataFrame({"level": "sku", "unit": ["s1", "s2", "s1", "s2"], "feature": ["price", "price", "cross_price", "cross_price"], "elasticity": [-1.2, -1.6, 0.4, 0.7]})
    e = elasticity_recovery(truth, el)
    assert e["own_price_elasticity_mae"] == pytest.approx(0.3) and e["cross_price_elasticity_mae"] == pytest.approx(0.15)
    rows = pd.DataFrame({"period": [1, 2], "sku": ["s1", "s1"], "log_gmv_mean": np.log([100.0, 200.0])})
    preds = pd.DataFrame({"period": [1, 2], "sku": ["s1", "s1"], "actual": [110.0, 180.0], "predicted": [121.0, 200.0]})
    g = noise_floor_gap(rows, preds)
    assert g["floor_mape"] == pytest.approx((10 / 110 + 20 / 180) / 2 * 100)
    assert g["mape_gap_pp"] == pytest.approx(g["mape"] - g["floor_mape"]) and g["mape"] == pytest.approx(((11 / 110) + (20 / 180)) / 2 * 100)


# ---------------------------------------------------------------- fast slices of the benchmark -----------

SLICE = dict(n_brands=2, skus_per_brand=3, n_periods=78)


def test_slice_strong_separated_media_are_recovered(tmp_path) -> None:
    """HR-NAM on a small panel with strong, independent SKU-level media (holdout, 800 epochs, ~10 s)."""
    overrides = [
        "logger=none", "data=recovery", "data.source.scenario=strong_separated", "data.source.seed=1",
        *[f"+data.source.{k}={v}" for k, v in SLICE.items()],
        "data.holdout.test_size=13", "data.holdout.val_size=8", "trainer.max_epochs=800",
    ]
    train_in_process(tmp_path, overrides, base=[])
    sp = generate_scenario("strong_separated", 1, **SLICE)
    scores, info = score_run(tmp_path, sp.truth, sp.truth_rows)
    hr = scores["hr_nam"]
    print("slice:", json.dumps({m: {k: round(v, 3) for k, v in s.items()} for m, s in scores.items()}))
    # measured at commit time: ρ 1.00, own MAE 0.06, cross MAE 0.13, share MAE 9 pp, ROI MAPE 51 %, gap 4 pp
    assert hr["roi_rank_corr"] >= 0.8, hr
    assert hr["own_price_elasticity_mae"] <= 0.15, hr
    assert hr["cross_price_elasticity_mae"] <= 0.25, hr
    assert hr["contribution_share_mae_pp"] <= 15.0, hr
    assert hr["roi_mape"] <= 80.0, hr
    assert 0.3 <= hr["media_total_ratio"] <= 2.0, hr
    assert hr["mape_gap_pp"] <= 8.0, hr
    assert hr["worst_fold_vs_naive"] <= 1.0, hr
    assert info["folds"] == 1 and set(scores) == {"hr_nam", "ridge", "loglog_ridge"}
    assert np.isfinite(scores["ridge"]["own_price_elasticity_mae"]) and np.isfinite(scores["loglog_ridge"]["roi_mape"])


@requires_shared
def test_shared_panels_are_read_as_their_truth_says(compose) -> None:
    from nam_mmm.entry import load_table

    assert SHARED_PANEL in shared_panels(SHARED)
    truth = json.loads((SHARED_PANEL / "truth.json").read_text())
    cfg = compose("train", ["data=scenario_shared", f"data.source.path={SHARED_PANEL / 'panel.csv'}", "data.source.controls=[c1,c2,c3,c4]", "logger=none"])
    panel = load_table(cfg.data).panel
    assert sorted(panel.channels) == sorted(truth["channels"])
    assert len(panel.skus) == truth["n_geos"] and len(panel.periods) == truth["n_periods"]
    assert not panel.national_spend()  # spend per geo
    spend = panel.spend_by_period()
    for ch in panel.channels:
        assert spend[spend_col(ch)].sum() == pytest.approx(truth["spend"][ch], rel=1e-9)


@requires_shared
def test_slice_shared_panel_recovery(tmp_path) -> None:
    """HR-NAM on medium_business_seed1 of the independent generator (holdout, 400 epochs, ~7 s)."""
    overrides = [
        "logger=none", "data=scenario_shared", f"data.source.path={SHARED_PANEL / 'panel.csv'}", "data.source.controls=[c1,c2,c3,c4]",
        "data.holdout.test_size=13", "data.holdout.val_size=8", "trainer.max_epochs=400",
    ]
    train_in_process(tmp_path, overrides, base=[])
    scores, _ = score_run(tmp_path, shared_truth(json.loads((SHARED_PANEL / "truth.json").read_text())))
    hr = scores["hr_nam"]
    print("shared slice:", json.dumps({m: {k: round(v, 3) for k, v in s.items()} for m, s in scores.items()}))
    # measured at commit time: ρ 0.83, ROI MAPE 24 %, share MAE 2.1 pp, media 0.94 of the truth
    assert hr["roi_rank_corr"] >= 0.7, hr
    assert hr["roi_mape"] <= 40.0, hr
    assert hr["contribution_share_mae_pp"] <= 5.0, hr
    assert 0.7 <= hr["media_total_ratio"] <= 1.3, hr
    assert "mape_gap_pp" not in hr  # no noiseless mean in these panels
