"""Baselines on the HR-NAM's folds, the ridge math they share with the HR-NAM's shrinkage, the comparison table,
and the identifiability check."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from helpers import TINY_RUN, compose_train, requires_dtmart, train_in_process
from nam_mmm.models.linear import ridge_predict, ridge_solve, select_alpha, unit_rms


def _linear_panel(seed: int = 0, n_units: int = 3, n_periods: int = 12, noise: float = 0.0):
    rng = np.random.default_rng(seed)
    unit = np.repeat(np.arange(n_units), n_periods)
    period = np.tile(np.arange(n_periods), n_units)
    x = rng.normal(size=(len(unit), 2))
    levels = np.array([1.0, 2.0, 3.5])[:n_units]
    y = levels[unit] + x @ np.array([0.7, -0.3]) + noise * rng.normal(size=len(unit))
    return x, y, unit, period


def test_ridge_without_penalty_recovers_levels_and_slopes_exactly():
    x, y, unit, _ = _linear_panel()
    beta = ridge_solve(x, y, unit, 3, alpha=0.0)
    np.testing.assert_allclose(beta, [1.0, 2.0, 3.5, 0.7, -0.3], atol=1e-10)
    np.testing.assert_allclose(ridge_predict(beta, x, unit, 3), y, atol=1e-10)


def test_ridge_with_a_huge_penalty_keeps_only_the_unit_levels():
    x, y, unit, _ = _linear_panel(noise=0.1)
    beta = ridge_solve(x, y, unit, 3, alpha=1e9)
    np.testing.assert_allclose(beta[3:], 0.0, atol=1e-6)
    np.testing.assert_allclose(beta[:3], [y[unit == u].mean() for u in range(3)], atol=1e-5)


def test_ridge_gives_an_unseen_unit_the_mean_level():
    x, y, unit, _ = _linear_panel()
    beta = ridge_solve(x, y, unit, 4, alpha=0.1)  # unit 3 has no rows
    assert beta[3] == pytest.approx(y.mean())


def test_rolling_origin_alpha_small_for_signal_large_for_noise():
    x, y, unit, period = _linear_panel(noise=0.05)
    assert select_alpha(x, y, unit, period, 3) <= 0.01
    rng = np.random.default_rng(1)
    noise_y = np.array([1.0, 2.0, 3.5])[unit] + rng.normal(size=len(y))
    assert select_alpha(x, noise_y, unit, period, 3) >= 1.0


def test_select_alpha_without_enough_history_returns_the_middle_of_the_grid():
    x, y, unit, period = _linear_panel(n_periods=3)
    grid = np.array([0.1, 1.0, 10.0])
    assert select_alpha(x, y, unit, period, 3, alphas=grid) == 1.0


def test_unit_rms():
    np.testing.assert_allclose(unit_rms(np.array([[3.0, 0.0], [-3.0, 0.0]])), [3.0, 1.0])


def _synthetic_folds(overrides=()):
    from nam_mmm.entry import load_table, make_splitter

    cfg = compose_train([*TINY_RUN, "validation=walk_forward", "data.walk_forward.initial_train=28", "data.walk_forward.test_size=4", "data.walk_forward.step=4", *overrides])
    table = load_table(cfg.data)
    return table, make_splitter(cfg.validation).split(table.panel.periods)


def test_baselines_score_the_fold_test_rows_and_naive_is_the_training_mean():
    from nam_mmm.data.panel import GMV, PERIOD, SKU
    from nam_mmm.evaluation.baselines import run_baselines

    table, folds = _synthetic_folds()
    preds, seconds, skipped = run_baselines(table, folds, ["naive_mean", "ridge", "loglog_ridge", "gam", "ols"])
    assert set(preds["model"]) == {"naive_mean", "ridge", "loglog_ridge", "gam", "ols"} and not skipped
    assert set(seconds) == set(preds["model"])
    frame = table.frame
    for fold in folds:
        got = preds[(preds["model"] == "naive_mean") & (preds["fold"] == fold.index)]
        assert set(got[PERIOD]) == set(fold.test)
        before = frame[frame[PERIOD].isin(fold.train.union(fold.val))]
        means = before.groupby(SKU)[GMV].mean()
        np.testing.assert_allclose(got["predicted"].to_numpy(), got[SKU].map(means).to_numpy(), rtol=1e-10)
    assert np.isfinite(preds["predicted"]).all() and (preds["predicted"] > 0).all()


def test_baselines_never_see_the_test_periods():
    from nam_mmm.data.panel import GMV, PERIOD
    from nam_mmm.evaluation.baselines import run_baselines

    table, folds = _synthetic_folds()
    before, _, _ = run_baselines(table, folds[:1], ["ridge", "gam", "naive_mean"])
    test = table.frame[PERIOD].isin(folds[0].test)
    table.frame.loc[test, GMV] *= 7.0  # garbage in the test periods' target
    after, _, _ = run_baselines(table, folds[:1], ["ridge", "gam", "naive_mean"])
    np.testing.assert_allclose(before["predicted"], after["predicted"], rtol=1e-12)
    np.testing.assert_allclose(after["actual"], before["actual"] * 7.0, rtol=1e-12)


def test_unknown_baseline_is_a_config_error():
    from nam_mmm.errors import ConfigError
    from nam_mmm.evaluation.baselines import available_baselines

    with pytest.raises(ConfigError, match="unknown baseline"):
        available_baselines(["ridge", "prophet"])


def test_comparison_table_skill_and_wmape():
    from nam_mmm.evaluation.comparison import comparison_table, wmape

    rows = pd.DataFrame(
        {
            "model": ["a"] * 4 + ["naive_mean"] * 4,
            "fold": [0, 0, 1, 1] * 2,
            "period": pd.to_datetime(["2020-01-01"] * 2 + ["2020-02-01"] * 2) .tolist() * 2,
            "sku": ["x", "y"] * 4,
            "actual": [100.0, 200.0, 100.0, 200.0] * 2,
            "predicted": [110.0, 190.0, 100.0, 200.0, 150.0, 150.0, 150.0, 150.0],
            "fit_weight": [1.0] * 8,
        }
    )
    table = comparison_table(rows, {"a": 1.0, "naive_mean": 0.0}).set_index("model")
    assert table.loc["naive_mean", "skill_vs_naive"] == 0.0
    assert table.loc["a", "skill_vs_naive"] == pytest.approx(1 - 200.0 / 10000.0)
    assert table.loc["a", "wmape"] == pytest.approx(20.0 / 600.0 * 100)
    assert table.loc["a", "worst_fold_mape"] == pytest.approx(7.5)
    assert wmape(np.array([0.0, 10.0]), np.array([5.0, 5.0])) == pytest.approx(50.0)


def test_lambda_function_rejects_unknown_words():
    from nam_mmm.errors import ConfigError
    from nam_mmm.training.loss import LossConfig

    with pytest.raises(ConfigError, match="lambda_function"):
        LossConfig(lambda_function="ridge")


def test_auto_shrinkage_is_resolved_per_fold_from_training_data(tmp_path):
    train_in_process(tmp_path, ["loss.lambda_function=auto", "trainer.max_epochs=5"])
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["lambda_function"] > 0


def test_function_penalty_shrinks_the_curves():
    import torch

    from nam_mmm.training.loss import CompositeLoss

    contrib = torch.tensor([[1.0, -2.0], [3.0, 0.0]])
    out = {"pred": torch.zeros(2), "contrib": contrib}
    batch = {"weight": torch.tensor([1.0, 0.0])}
    # only the first row enters: (1 + 4) / 1
    w = batch["weight"]
    assert float(((out["contrib"] ** 2) * w[:, None]).sum() / w.sum()) == 5.0
    assert CompositeLoss({"lambda_function": 0.5}).config.lambda_function == 0.5


def test_identifiability_flags_twins_constant_and_short_panels():
    from nam_mmm.evaluation.identifiability import check_identifiability

    rng = np.random.default_rng(0)
    good = rng.uniform(1, 10, size=(60, 3))
    assert check_identifiability(good, ["a", "b", "c"]).ok
    twins = np.column_stack([good[:, 0], good[:, 0] * 2.0 + 0.01 * rng.normal(size=60), good[:, 2]])
    report = check_identifiability(twins, ["a", "b", "c"])
    assert not report.ok and "correlates with b" in " ".join(report.flagged["a"]) and "c" not in report.flagged
    flat = good.copy()
    flat[:, 2] = 5.0
    assert "spend never varies" in check_identifiability(flat, ["a", "b", "c"]).flagged["c"]
    short = check_identifiability(good[:8], ["a", "b", "c"])
    assert not short.ok and "per channel" in short.message()
    assert json.dumps(report.to_dict())  # JSON-able for identifiability.json


@requires_dtmart
def test_dtmart_is_flagged_as_not_identified():
    from nam_mmm.entry import load_table, make_splitter
    from nam_mmm.evaluation.identifiability import check_identifiability

    cfg = compose_train(["data=dtmart", "validation=walk_forward", "logger=none"])
    table = load_table(cfg.data)
    fold = make_splitter(cfg.validation).split(table.panel.periods)[-1]
    spend = table.panel.spend_by_period().loc[fold.train.union(fold.val)]
    report = check_identifiability(spend.to_numpy(), table.channels)
    assert not report.ok
    assert "not identified" in report.message()
