"""The synthetic generator: reproducible files, a truth consistent with the panel, realistic media spend."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from nam_mmm.errors import ConfigError

from nam_mmm.data.cleaning import prepare_panel
from nam_mmm.data.panel import GMV, PERIOD, PROMO_DAYS, SKU, spend_col
from nam_mmm.data.synthetic import SyntheticConfig, default_channels, generate, load_synthetic

SMALL = dict(n_brands=2, skus_per_brand=2, n_periods=40, seed=3)


def _write(tmp: Path, **cfg) -> dict[str, bytes]:
    paths = generate(SyntheticConfig(**cfg)).write(tmp)
    assert set(paths) == {"panel", "truth", "truth_rows"}
    return {name: p.read_bytes() for name, p in paths.items()}


def test_same_seed_gives_byte_identical_files(tmp_path: Path) -> None:
    a = _write(tmp_path / "a", **SMALL)
    b = _write(tmp_path / "b", **SMALL)
    for name in a:
        assert a[name] == b[name], f"{name} differs between two runs with the same seed"
        assert len(a[name]) > 100
    header = a["panel"].decode().splitlines()[0].split(",")
    assert header[:4] == [PERIOD, "brand", SKU, GMV]
    assert "_row" not in header and "fit_weight" not in header  # internal columns are not written
    truth = json.loads(a["truth"])
    assert truth["config"]["seed"] == 3


def test_different_seed_gives_different_panel(tmp_path: Path) -> None:
    a = _write(tmp_path / "a", **SMALL)
    b = _write(tmp_path / "b", **{**SMALL, "seed": 4})
    assert a["panel"] != b["panel"]
    assert a["truth"] != b["truth"]


def test_written_panel_round_trips(tmp_path: Path) -> None:
    sp = generate(SyntheticConfig(**SMALL))
    back = pd.read_csv(sp.write(tmp_path)["panel"], parse_dates=[PERIOD])
    assert len(back) == 2 * 2 * 40
    np.testing.assert_allclose(back[GMV], sp.frame[GMV], rtol=1e-9)


# ---------------------------------------------------------------- truth vs panel -------------------------


def test_noise_around_truth_mean_matches_noise_sd() -> None:
    panel = load_synthetic(**SMALL, noise_sd=0.05)
    rows = panel.truth["rows"]
    merged = panel.frame.merge(rows, on=[PERIOD, SKU], validate="one_to_one")
    assert len(merged) == len(panel.frame)
    resid = np.log(merged[GMV]) - merged["log_gmv_mean"]
    assert abs(resid.mean()) < 0.02
    assert resid.std() == pytest.approx(0.05, rel=0.2)
    # the noise level follows the config
    louder = load_synthetic(**SMALL, noise_sd=0.2)
    m2 = louder.frame.merge(louder.truth["rows"], on=[PERIOD, SKU])
    assert (np.log(m2[GMV]) - m2["log_gmv_mean"]).std() == pytest.approx(0.2, rel=0.2)


def test_truth_roi_is_contribution_over_spend_and_spend_matches_panel() -> None:
    panel = load_synthetic(**SMALL)
    truth = panel.truth
    per_period = panel.spend_by_period()
    assert set(truth["roi"]) == set(panel.channels)
    for ch in panel.channels:
        assert truth["total_spend_inr"][ch] == pytest.approx(per_period[spend_col(ch)].sum(), rel=1e-12)
        assert truth["roi"][ch] == pytest.approx(truth["contribution_inr"][ch] / truth["total_spend_inr"][ch])
        assert truth["contribution_inr"][ch] > 0  # every default channel has a positive effect
    assert truth["adstock_decay"] == {c.name: c.decay for c in default_channels()}


def test_own_price_elasticities_and_noise_floor() -> None:
    panel = load_synthetic(**SMALL)
    own = panel.truth["own_price_elasticity"]
    assert set(own) == set(panel.skus)
    assert all(-3.0 <= e <= -0.5 for e in own.values())
    assert 0.0 < panel.truth["noise_floor_r2_log_gmv"] < 1.0
    assert panel.truth["skus"] == panel.sku_brand


def test_generated_panel_passes_validation() -> None:
    panel = prepare_panel(load_synthetic(**SMALL))
    assert panel.report.errors == []
    assert not panel.report.by_check("outage")
    assert (panel.frame["fit_weight"] == 1.0).all()
    assert [f for f in panel.report.by_check("consistency") if f.severity == "info"]


# ---------------------------------------------------------------- media spend ----------------------------


def test_spend_is_national_bursty_and_correlated() -> None:
    panel = load_synthetic(n_brands=1, skus_per_brand=2, n_periods=104, seed=3)
    assert panel.national_spend()
    nunique = panel.frame.groupby(PERIOD)[panel.spend_columns].nunique()
    assert (nunique == 1).all().all()

    spend = panel.spend_by_period()
    for ch in default_channels():
        col = spend[spend_col(ch.name)]
        assert (col >= 0).all()
        if ch.on_air_share < 1:
            assert (col == 0).any(), f"{ch.name} is never off air"
            assert (col > 0).any()
    # flighting: the channel with the lowest on-air share is off air most often
    off = (spend == 0).mean()
    assert off.idxmax() == spend_col(min(default_channels(), key=lambda c: c.on_air_share).name)

    # a common budget factor: spend co-moves across channels
    cols = list(spend.columns)
    raw = [np.corrcoef(spend[a], spend[b])[0, 1] for a, b in itertools.combinations(cols, 2)]
    assert np.mean(raw) > 0
    on_air = []
    for a, b in itertools.combinations(cols, 2):
        both = (spend[a] > 0) & (spend[b] > 0)
        on_air.append(np.corrcoef(np.log(spend.loc[both, a]), np.log(spend.loc[both, b]))[0, 1])
    assert np.mean(on_air) > 0.1


def test_monthly_frequency() -> None:
    panel = load_synthetic(n_brands=1, skus_per_brand=2, n_periods=24, freq="MS", start="2022-01-01", seed=1)
    assert panel.freq == "MS"
    assert list(panel.periods) == list(pd.date_range("2022-01-01", periods=24, freq="MS"))
    assert panel.frame[PROMO_DAYS].max() <= 31
    prepare_panel(panel)  # the monthly calendar validates (no gaps, no off-calendar dates)
    assert panel.report.errors == []


def test_bad_config_raises() -> None:
    with pytest.raises(ConfigError, match="saturation"):
        SyntheticConfig(saturation="exp")
    with pytest.raises(ConfigError, match="at least"):
        SyntheticConfig(n_periods=1)
    with pytest.raises(ValueError, match="weekly"):
        load_synthetic(**{**SMALL, "freq": "D"})


def test_single_sku_panel_is_rejected_with_a_clear_error() -> None:
    # one SKU has no peers to take a cross price from: a clear config error, not a panel of NaNs
    with pytest.raises(ConfigError, match="at least 2 SKUs"):
        load_synthetic(n_brands=1, skus_per_brand=1, n_periods=10, seed=0)
