"""Block-bootstrap intervals: the resampling is a moving-block bootstrap of periods, a resample enters the fit as
period counts on the fit weights, each resample is a real refit, and the tables carry the interval kind."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from helpers import TINY_RUN, compose_train
from nam_mmm.evaluation.intervals import (
    IntervalConfig,
    ResampledDataModule,
    auto_block_length,
    basic_interval,
    bias_aware_interval,
    interval_name,
    moving_block_counts,
)


def test_moving_block_counts_draw_whole_blocks_of_consecutive_periods():
    rng = np.random.default_rng(0)
    for n, block in ((30, 4), (11, 2), (7, 7), (5, 9)):
        for _ in range(50):
            counts = moving_block_counts(n, block, rng)
            assert counts.sum() == n and len(counts) == n and (counts >= 0).all()
    # with blocks of 5 periods, the drawn set is a union of runs of 5 (the last block may be cut): never i.i.d.
    counts = np.stack([moving_block_counts(40, 5, rng) for _ in range(400)])
    lag1 = np.mean([np.corrcoef(c[:-1] > 0, c[1:] > 0)[0, 1] for c in counts if (c > 0).std() > 0])
    assert lag1 > 0.5  # neighbouring periods are drawn together
    assert moving_block_counts(10, 1, rng).max() <= 10


def test_auto_block_length_and_interval_names():
    assert auto_block_length(11) == 2 and auto_block_length(96) == 5 and auto_block_length(3) == 1
    assert interval_name(0.9, False) == "block_bootstrap_90" and interval_name(0.9, True) == "block_bootstrap_folds_90"
    with pytest.raises(ValueError):
        IntervalConfig(resamples=1)


def test_basic_and_bias_aware_intervals():
    reps = np.array([[1.0], [2.0], [3.0], [4.0], [5.0]])
    lo, hi = basic_interval(np.array([3.0]), reps, 0.9)
    assert lo[0] == pytest.approx(2 * 3 - 4.8) and hi[0] == pytest.approx(2 * 3 - 1.2)  # reflected quantiles
    # refits that drift below the fit: the basic interval reaches above it, the union keeps the percentile end too
    drift = np.array([[0.0], [0.5], [1.0]])
    lo, hi = basic_interval(np.array([2.0]), drift, 0.9)
    assert lo[0] == pytest.approx(0.05) and hi[0] == pytest.approx(3.95)
    # bias allowance: mean of the refits 0.5 vs the fit 2.0, no fold spread -> half-widths grow by 1.5 in quadrature
    lo2, hi2 = bias_aware_interval(np.array([2.0]), np.array([2.0]), drift, None, 0.9)
    assert hi2[0] - 2.0 == pytest.approx(np.hypot(1.95, 1.5)) and 2.0 - lo2[0] == pytest.approx(np.hypot(1.95, 1.5))
    # walk-forward: around the ensemble mean, with the fold spread and the gap to the last window's fit
    lo3, hi3 = bias_aware_interval(np.array([1.0]), np.array([2.0]), drift, np.array([0.5]), 0.9)
    z = 1.6448536269514722
    assert hi3[0] - 1.0 == pytest.approx(np.sqrt(1.95**2 + (z * 0.5) ** 2 + 2.5**2))  # bias 1.5 + |1.0 − 2.0|


def test_a_resample_weights_training_rows_by_period_counts():
    from nam_mmm.data.folds.datamodule import PanelDataModule
    from nam_mmm.entry import load_table, make_splitter

    cfg = compose_train(TINY_RUN)
    table = load_table(cfg.data)
    (fold,) = make_splitter(cfg.validation).split(table.panel.periods)
    counts = np.zeros(len(fold.train))
    counts[:3] = [2, 0, 1]
    counts[5] = 3
    dm = ResampledDataModule(table, fold, counts)
    base = PanelDataModule(table, fold)
    w, w0 = dm.splits["train"]["weight"].numpy(), base.splits["train"]["weight"].numpy()
    period = dm.splits["train"]["period"].numpy()
    position = {p: i for i, p in enumerate(np.unique(period))}
    expected = w0 * counts[[position[p] for p in period]]
    assert np.array_equal(w, expected)
    assert np.array_equal(dm.splits["val"]["weight"].numpy(), base.splits["val"]["weight"].numpy())  # early stopping untouched
    assert np.array_equal(dm.splits["test"]["weight"].numpy(), base.splits["test"]["weight"].numpy())
    with pytest.raises(ValueError):
        ResampledDataModule(table, fold, counts[:-1])


def test_bootstrap_refits_give_interval_tables(tmp_path):
    """Two real refits of the tiny holdout model (in two forked processes): intervals named, points unchanged,
    the refits differ from each other (they are fits on different resamples, not re-scorings)."""
    from nam_mmm.entry import _builders, load_table, make_splitter, quiet_lightning
    from nam_mmm.evaluation.intervals import bootstrap_intervals
    from nam_mmm.evaluation.run_result import summarize_run
    from nam_mmm.evaluation.walk_forward import AcceptanceCriteria
    from nam_mmm.training.walk_forward import run_folds

    quiet_lightning()
    cfg = compose_train([*TINY_RUN, "trainer.max_epochs=15"])
    table = load_table(cfg.data)
    folds = make_splitter(cfg.validation).split(table.panel.periods)
    make_module, make_trainer = _builders(cfg, table, len(folds), [], [])
    runs = run_folds(table, folds, make_module, make_trainer, lambda f: tmp_path / "model.ckpt", seed=0)
    result = summarize_run(runs, table.panel.truth, AcceptanceCriteria())
    tables = bootstrap_intervals(result, table, make_module, make_trainer, IntervalConfig(resamples=2, processes=2, progress=False), seed=0)
    el, roi = tables.elasticities, tables.roi
    assert set(el["interval"]) == {"block_bootstrap_90"} and set(roi["interval"]) == {"block_bootstrap_90"}
    pd.testing.assert_series_equal(el["elasticity"], result.elasticities["elasticity"])
    assert (el["lower"] <= el["elasticity"] + 1e-12).all() and (el["elasticity"] <= el["upper"] + 1e-12).all()
    assert (roi["roi_lower"] <= roi["roi"]).all() and (roi["roi"] <= roi["roi_upper"]).all()
    assert (el["resamples"] == 2).all() and (roi["resamples"] == 2).all()
    reps = tables.replicates
    r = reps[(reps["table"] == "roi") & (reps["quantity"] == "roi")].pivot(index="resample", columns="unit", values="value")
    assert len(r) == 2 and not np.allclose(r.iloc[0], r.iloc[1])
    assert tables.info["block_length"] == auto_block_length(len(folds[0].train)) and not tables.info["failures"]
    band = tables.prediction_band
    assert len(band) == len(table.panel.periods) and (band["lower"] <= band["upper"]).all()
    assert {"feature", "brand", "x", "lower", "upper"} <= set(tables.curve_band.columns)


def _tables(shift_roi: float, shift_el: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    el = pd.DataFrame({"level": ["sku", "sku"], "unit": ["a", "b"], "feature": ["price", "price"], "elasticity": [-1.0, -1.5 + shift_el]})
    roi = pd.DataFrame({"channel": ["tv", "search"], "roi": [2.0 + shift_roi, 3.0 - shift_roi], "marginal_roi": [1.0, 1.0 + shift_roi]})
    return el, roi


def test_the_penalty_allowance_reaches_the_admissible_penalties_estimates_on_their_side():
    from nam_mmm.evaluation.intervals import penalty_allowance

    estimates = {0.0: _tables(1.5, -0.2), 0.1: _tables(0.5, 0.1), 0.3: _tables(0.0, 0.0)}
    pa = penalty_allowance(estimates, [0.0, 0.1, 0.3], 0.3)
    roi = pa.roi.set_index("channel")
    assert roi.loc["tv", "roi_up"] == pytest.approx(1.5) and roi.loc["tv", "roi_down"] == 0.0  # weaker penalty: larger tv ROI
    assert roi.loc["search", "roi_down"] == pytest.approx(1.5) and roi.loc["search", "roi_up"] == 0.0
    assert roi.loc["search", "marginal_roi_up"] == pytest.approx(1.5)
    el = pa.elasticities.set_index("unit")
    assert el.loc["b", "down"] == pytest.approx(0.2) and el.loc["b", "up"] == pytest.approx(0.1) and el.loc["a", "up"] == 0.0
    assert "0, 0.1" in pa.describe()
    # a penalty outside the tolerance moves nothing; the chosen one alone gives no allowance
    alone = penalty_allowance(estimates, [0.3], 0.3)
    assert (alone.roi[["roi_up", "roi_down"]].to_numpy() == 0).all() and alone.describe().startswith("none")
    assert (penalty_allowance(estimates, [0.1, 0.3], 0.3).roi.set_index("channel").loc["tv", "roi_up"]) == pytest.approx(0.5)


def test_the_penalty_allowance_widens_only_the_side_it_points_to():
    reps = np.array([[2.0], [2.0], [2.0]])  # refits that agree with the fit: no bootstrap width, no bias
    lo, hi = bias_aware_interval(np.array([2.0]), np.array([2.0]), reps, None, 0.9, np.array([1.5]), np.array([0.0]))
    assert lo[0] == pytest.approx(2.0) and hi[0] == pytest.approx(3.5)
    lo, hi = bias_aware_interval(np.array([2.0]), np.array([2.0]), reps, None, 0.9)
    assert lo[0] == hi[0] == pytest.approx(2.0)  # without it: the shrinkage every resample shares stays invisible


def test_interval_tables_carry_the_penalty_allowance_into_the_roi_and_elasticity_bounds():
    from nam_mmm.evaluation.intervals import interval_tables, penalty_allowance

    el, roi = _tables(0.0, 0.0)
    el = el.assign(lower=el["elasticity"], upper=el["elasticity"])
    boot_el = pd.concat([el.assign(resample=b) for b in range(3)], ignore_index=True)
    boot_roi = pd.concat([roi.assign(resample=b) for b in range(3)], ignore_index=True)
    pa = penalty_allowance({0.0: _tables(1.0, -0.4), 0.3: _tables(0.0, 0.0)}, [0.0, 0.3], 0.3)
    el_p, roi_p = interval_tables(el, roi, boot_el, boot_roi, 0.9, penalty=pa)
    el_0, roi_0 = interval_tables(el, roi, boot_el, boot_roi, 0.9)
    r, r0 = roi_p.set_index("channel"), roi_0.set_index("channel")
    assert r.loc["tv", "roi_upper"] == pytest.approx(3.0) and r.loc["tv", "roi_lower"] == pytest.approx(2.0)
    assert r.loc["search", "roi_lower"] == pytest.approx(2.0) and r0.loc["search", "roi_lower"] == pytest.approx(3.0)
    e = el_p.set_index("unit")
    assert e.loc["b", "lower"] == pytest.approx(-1.9) and e.loc["b", "upper"] == pytest.approx(-1.5)


def test_a_selection_without_inner_fits_gives_no_penalty_allowance():
    from nam_mmm.evaluation.intervals import choice_allowance
    from nam_mmm.training.selection import MediaShrinkageChoice

    assert choice_allowance(None) is None  # the penalty was a number
    short = MediaShrinkageChoice(0.0, [0.0, 0.3], [None, None], "—", "—", 0.05, "window too short", [0.0])
    assert choice_allowance(short) is None and "inner_fits" not in short.to_dict()
