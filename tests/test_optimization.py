"""The budget planner's optimizer on problems with known curves (no trained model): hand-solved optima, KKT,
bounds and locks, the one-line infeasibility error, the decision maps, and the generator's true response."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from helpers import assert_one_line
from nam_mmm.data.sources.synthetic import ChannelTruth, SyntheticConfig, generate, load_synthetic, media_response
from nam_mmm.errors import ConfigError
from nam_mmm.optimization.constraints import build_constraints, check_feasible
from nam_mmm.optimization.decisions import build_decisions
from nam_mmm.optimization.planner import kkt_analysis
from nam_mmm.optimization.response import DTYPE
from nam_mmm.optimization.solver import maximize, start_points, value_and_grad
from nam_mmm.optimization.truth import GeneratorResponse, true_response


def channel_space(current: list[float], n_periods: int = 1, names: list[str] | None = None):
    """A national channel-level decision space whose decisions are the channel totals."""
    names = names or [f"c{i + 1}" for i in range(len(current))]
    cur = np.tile(np.asarray(current, dtype=float) / n_periods, (n_periods, 1))
    periods = [str(p.date()) for p in pd.date_range("2025-01-06", periods=n_periods, freq="W-MON")]
    return build_decisions("channel", "reference", cur, cur, names, periods, np.zeros(2, dtype=np.int64), ["b"])


def log_curves(a: list[float], k: list[float]):
    """G(x) = Σ a_i · log(1 + x_i / k_i): concave, marginal ROI a_i / (k_i + x_i)."""
    a_t, k_t = torch.tensor(a, dtype=DTYPE), torch.tensor(k, dtype=DTYPE)
    return lambda x: (a_t * torch.log1p(x / k_t)).sum()


def solve(objective, cs, current, budget, starts=3):
    return maximize(objective, cs, start_points(cs, np.asarray(current, dtype=float), budget, starts, 0), budget)


def test_a_hand_solved_two_channel_problem_gives_the_known_optimum() -> None:
    # max 2·log(1 + x1/10) + log(1 + x2/10) with x1 + x2 = 100: 2/(10 + x1) = 1/(10 + x2) → x1 = 70, x2 = 30, mROI 1/40
    space = channel_space([50.0, 50.0])
    cs = build_constraints(space, {}, total=100.0, spend_all=True, history_share=np.array([0.5, 0.5]))
    sol = solve(log_curves([2.0, 1.0], [10.0, 10.0]), cs, space.current, 100.0)
    np.testing.assert_allclose(sol.x, [70.0, 30.0], atol=1e-4)
    np.testing.assert_allclose(sol.grad, [1 / 40, 1 / 40], rtol=1e-5)
    kkt = kkt_analysis(cs, sol.x, sol.grad, 100.0, 1e-6)
    assert kkt["free"].all() and kkt["binding"] == ["budget.total"]
    assert kkt["kkt_relative_gap"] < 1e-5 and kkt["shadow_mroi"] == pytest.approx(1 / 40, rel=1e-5)
    assert sol.agreeing_starts == len(sol.starts) == 5  # current, equal and 3 random starts all reach it


def test_a_binding_bound_is_named_and_its_marginal_roi_stays_above_the_others() -> None:
    space = channel_space([50.0, 50.0])
    cfg = {"channels": {"c1": {"max": 50.0}}}
    cs = build_constraints(space, cfg, total=100.0, spend_all=True, history_share=np.array([0.5, 0.5]))
    sol = solve(log_curves([2.0, 1.0], [10.0, 10.0]), cs, space.current, 100.0)
    np.testing.assert_allclose(sol.x, [50.0, 50.0], atol=1e-5)
    kkt = kkt_analysis(cs, sol.x, sol.grad, 100.0, 1e-6)
    assert kkt["held_by"][0] == ["constraints.channels.c1.max"] and kkt["held_by"][1] == []
    assert sol.grad[0] == pytest.approx(2 / 60) and sol.grad[1] == pytest.approx(1 / 60)  # capped channel: higher mROI


def test_target_mroi_spends_each_channel_until_its_marginal_roi_is_the_target() -> None:
    # max G(x) − t·Σx: a_i / (k_i + x_i) = t → x_i = a_i / t − k_i = (70, 30) for t = 1/40
    space = channel_space([50.0, 50.0])
    cs = build_constraints(space, {}, total=None, spend_all=False, history_share=np.array([0.5, 0.5]), max_total=300.0)
    gmv = log_curves([2.0, 1.0], [10.0, 10.0])
    sol = solve(lambda x: gmv(x) - x.sum() / 40, cs, space.current, 300.0)
    np.testing.assert_allclose(sol.x, [70.0, 30.0], atol=1e-3)
    _, grad = value_and_grad(gmv, sol.x)
    np.testing.assert_allclose(grad, [1 / 40, 1 / 40], rtol=1e-4)


def test_bounds_locks_and_change_limits_hold_at_the_optimum() -> None:
    space = channel_space([40.0, 30.0, 20.0, 10.0])
    cfg = {"channels": {"c1": {"lock": True}, "c2": {"change": 0.1}, "c3": {"min": 10.0}, "c4": {"max_share": 0.15}}}
    cs = build_constraints(space, cfg, total=100.0, spend_all=True, history_share=np.full(4, 0.25))
    sol = solve(log_curves([1.0, 5.0, 0.1, 5.0], [10.0, 10.0, 10.0, 10.0]), cs, space.current, 100.0)
    x = sol.x
    assert x[0] == pytest.approx(40.0, abs=1e-9)  # locked: exactly the current amount
    assert 27.0 - 1e-6 <= x[1] <= 33.0 + 1e-6 and x[1] == pytest.approx(33.0, abs=1e-5)  # wants more: at +10 %
    assert x[3] == pytest.approx(15.0, abs=1e-5)  # strong channel: at its 15 % share
    assert x[2] >= 10.0 and x[2] == pytest.approx(12.0, abs=1e-5)  # weak channel: takes what is left
    assert x.sum() == pytest.approx(100.0) and cs.violation(x) < 1e-6
    names = kkt_analysis(cs, x, sol.grad, 100.0, 1e-6)["held_by"]
    assert names[0] == ["constraints.channels.c1.lock"] and names[1] == ["constraints.channels.c2.change"]
    assert names[2] == [] and names[3] == ["constraints.channels.c4.max_share"]


def test_infeasible_constraints_raise_one_line_error_naming_only_the_clash() -> None:
    space = channel_space([40.0, 30.0, 30.0])
    cfg = {"channels": {"c1": {"min": 80.0}, "c2": {"min": 50.0}, "c3": {"max": 1000.0}}}
    cs = build_constraints(space, cfg, total=100.0, spend_all=True, history_share=np.full(3, 1 / 3))
    with pytest.raises(ConfigError) as err:
        check_feasible(cs)
    text = assert_one_line(err.value, "infeasible budget constraints", "budget.total", "constraints.channels.c1.min", "constraints.channels.c2.min")
    assert "c3.max" not in text  # not part of the clash


def test_default_share_bounds_that_cannot_all_hold_are_named() -> None:
    space = channel_space([40.0, 30.0, 30.0])
    cs = build_constraints(space, {"default": {"min_share_ratio": 1.2}}, total=100.0, spend_all=True, history_share=np.array([0.5, 0.3, 0.2]))
    with pytest.raises(ConfigError) as err:
        check_feasible(cs)
    assert_one_line(err.value, "constraints.default.min_share_ratio", "c1 >= 1.2 x its history share 50.0%")


@pytest.mark.parametrize(
    "cfg, parts",
    [
        ({"channels": {"radio": {"max": 1.0}}}, ("unknown channel(s) radio", "c1, c2")),
        ({"channels": {"c1": {"maximum": 1.0}}}, ("constraints.channels.c1", "unknown setting(s) maximum")),
        ({"default": {"min_ratio": 0.5}}, ("constraints.default", "min_ratio")),
        ({"channels": {"c1": {"max_share": 1.5}}}, ("max_share must be a share in [0, 1]",)),
        ({"brands": {"b": {"max": 1.0}}}, ("constraints.brands needs budget.granularity=brand_channel",)),
    ],
)
def test_bad_constraint_settings_are_one_line_errors(cfg, parts) -> None:
    with pytest.raises(ConfigError) as err:
        build_constraints(channel_space([1.0, 1.0]), cfg, total=2.0, spend_all=True, history_share=np.array([0.5, 0.5]))
    assert_one_line(err.value, *parts)


def test_a_channel_never_spent_is_held_at_zero_unless_allowed() -> None:
    space = channel_space([60.0, 40.0, 0.0])
    gmv = log_curves([1.0, 1.0, 50.0], [10.0, 10.0, 10.0])  # the unspent channel looks best: no evidence behind it
    cs = build_constraints(space, {}, total=100.0, spend_all=True, history_share=np.array([0.6, 0.4, 0.0]))
    sol = solve(gmv, cs, space.current, 100.0)
    assert sol.x[2] == pytest.approx(0.0, abs=1e-9) and np.isfinite(sol.grad).all()
    assert "history.c3.never_spent" in kkt_analysis(cs, sol.x, sol.grad, 100.0, 1e-6)["held_by"][2]
    allowed = build_constraints(space, {"channels": {"c3": {"max": 20.0}}}, total=100.0, spend_all=True, history_share=np.array([0.6, 0.4, 0.0]))
    sol = solve(gmv, allowed, space.current, 100.0)
    assert sol.x[2] == pytest.approx(20.0, abs=1e-5) and np.isfinite(sol.x).all()


def test_period_caps_bind_per_period_and_are_named() -> None:
    cur = np.array([[10.0, 10.0], [10.0, 10.0], [10.0, 10.0]])
    periods = ["2025-01-06", "2025-01-13", "2025-01-20"]
    space = build_decisions("channel_period", "reference", cur, cur, ["c1", "c2"], periods, np.zeros(1, dtype=np.int64), ["b"])
    cfg = {"period_cap": {"2025-01-13": 5.0}}
    cs = build_constraints(space, cfg, total=60.0, spend_all=True, history_share=np.array([0.5, 0.5]))
    sol = solve(log_curves([1.0] * 6, [10.0] * 6), cs, space.current, 60.0)
    per_period = space.rupees_per_period @ sol.x
    np.testing.assert_allclose(per_period, [27.5, 5.0, 27.5], atol=1e-4)  # the cap binds, the rest splits evenly
    assert "constraints.period_cap[2025-01-13]" in kkt_analysis(cs, sol.x, sol.grad, 60.0, 1e-6)["binding"]


def test_decision_maps_reproduce_the_current_plan_at_every_granularity() -> None:
    rng = np.random.default_rng(0)
    national = rng.uniform(1, 10, (4, 3))
    national[:, 2] = [0, 5, 0, 5]  # a flighted channel
    sku_brand = np.array([0, 0, 1])
    per_sku = rng.uniform(1, 10, (4, 3, 3))
    periods = ["p1", "p2", "p3", "p4"]
    for gran in ("channel", "channel_period", "brand_channel"):
        space = build_decisions(gran, "reference", national, national, ["a", "b", "c"], periods, sku_brand, ["B1", "B2"], np.array([0.7, 0.3]))
        np.testing.assert_allclose(space.to_plan(space.current).numpy(), np.repeat(national[:, None, :], 3, 1), rtol=1e-12)
        np.testing.assert_allclose(space.rupees_per_period @ space.current, national.sum(1), rtol=1e-12)
        space = build_decisions(gran, "reference", per_sku, per_sku, ["a", "b", "c"], periods, sku_brand, ["B1", "B2"])
        np.testing.assert_allclose(space.to_plan(space.current).numpy(), per_sku, rtol=1e-12)
        np.testing.assert_allclose(space.rupees_per_period @ space.current, per_sku.sum((1, 2)), rtol=1e-12)


def test_a_national_brand_budget_maps_to_the_spend_intensity_of_its_share() -> None:
    # brand 1 holds 70 % of GMV: 70 rupees for brand 1 alone give its SKUs what 100 national rupees give
    national = np.array([[100.0]])
    space = build_decisions("brand_channel", "even", national, national, ["tv"], ["p1"], np.array([0, 1]), ["B1", "B2"], np.array([0.7, 0.3]))
    plan = space.to_plan(np.array([70.0, 0.0])).numpy()
    np.testing.assert_allclose(plan[0, :, 0], [100.0, 0.0])


@pytest.mark.parametrize(
    "channel, saturation",
    [
        (ChannelTruth("a", 1.0, 0.5, 0.05, 1.2, 0.8), "hill"),
        (ChannelTruth("b", 1.0, 0.5, 0.03, 0.7, 1.0), "exponential"),
        (ChannelTruth("c", 1.0, 0.5, 0.02), "log"),
        (ChannelTruth("d", 1.0, 0.5, 0.04, 0.9, saturation="exponential"), "hill"),
    ],
)
def test_the_torch_truth_curves_equal_the_generators(channel, saturation) -> None:
    x = np.linspace(0.0, 6.0, 61)
    np.testing.assert_allclose(true_response(torch.as_tensor(x, dtype=DTYPE), channel, saturation).numpy(), media_response(x, channel, saturation), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("options", [{}, {"adstock": "delayed", "saturation": "exponential", "media_share": 0.1, "seasonality": "festival"}])
def test_the_true_response_reproduces_the_generators_noiseless_rows(options) -> None:
    cfg = dict(n_brands=2, skus_per_brand=2, n_periods=60, seed=5, **options)
    if options.get("adstock") == "delayed":
        cfg["channels"] = [dict(vars(c), peak_lag=1.0) for c in SyntheticConfig().channels]
    panel = load_synthetic(**cfg)
    spend = panel.frame.groupby("period")[[f"spend_{c}" for c in panel.channels]].first().to_numpy()
    periods = sorted(panel.frame["period"].unique())
    start, n_h = 30, 10
    truth = GeneratorResponse(panel.truth, spend[:start], [str(pd.Timestamp(p).date()) for p in periods[start : start + n_h + 8]], n_h)
    log_gmv = truth.log_gmv(torch.as_tensor(spend[start : start + n_h])).numpy()[:n_h]  # the tail has no spend: horizon rows only
    rows = panel.truth["rows"].pivot_table(index="period", columns="sku", values="log_gmv_mean").reindex(columns=truth.skus).to_numpy()
    np.testing.assert_allclose(log_gmv, rows[start : start + n_h], atol=1e-10)


def test_the_true_response_gradient_equals_finite_differences() -> None:
    sp = generate(SyntheticConfig(n_brands=2, skus_per_brand=2, n_periods=40, seed=2))
    truth = {**sp.truth, "rows": sp.truth_rows}
    spend = sp.frame.groupby("period")[[f"spend_{c.name}" for c in sp.config.channels]].first().to_numpy()
    periods = [str(pd.Timestamp(p).date()) for p in sorted(sp.frame["period"].unique())]
    model = GeneratorResponse(truth, spend[:20], periods[20:], 4)
    x = np.abs(spend[20:24]).reshape(-1) + 1e6
    objective = lambda v: model.total(v.reshape(4, -1))  # noqa: E731
    _, grad = value_and_grad(objective, x)
    h = 1e-4 * x
    fd = np.array([(value_and_grad(objective, x + h[k] * np.eye(len(x))[k])[0] - value_and_grad(objective, x - h[k] * np.eye(len(x))[k])[0]) / (2 * h[k]) for k in range(len(x))])
    np.testing.assert_allclose(grad, fd, rtol=1e-5, atol=1e-9 * np.abs(grad).max())
