"""The planner, scenarios and ROI simulator on a real (tiny) trained run folder.

One tiny walk-forward run is shared by the module: 2 brands × 2 SKUs × 40 weeks, three fold models, and a fourth
channel (``radio``) that is never spent, so the ensemble's intervals and the zero-history channel are exercised on the
code users run. The tests check the response against the served model, exact gradients against finite differences,
constraints at the optimum, KKT, the files the scripts write and their one-line errors.
"""

from __future__ import annotations

import json
import sys

import numpy as np
import pandas as pd
import pytest
import torch

from helpers import REPO_ROOT, TINY_RUN, assert_one_line, train_in_process
from nam_mmm.errors import ConfigError, DataError
from nam_mmm.optimization.io import open_run
from nam_mmm.optimization.planner import PlanSettings, channel_table, frontier, planning_context, solve_plan
from nam_mmm.optimization.roi_curves import roi_curves
from nam_mmm.optimization.scenarios import evaluate_scenarios, parse_scenarios
from nam_mmm.optimization.solver import value_and_grad
from nam_mmm.serving.predictor import Predictor

CHANNELS = (
    "[{name: tv, mean_spend: 2.0e7, decay: 0.6, beta: 0.06},"
    "{name: digital, mean_spend: 8.0e6, decay: 0.3, beta: 0.045},"
    "{name: search, mean_spend: 3.0e6, decay: 0.1, beta: 0.03, on_air_share: 0.95},"
    "{name: radio, mean_spend: 0.0, decay: 0.3, beta: 0.0}]"
)
WALK_FORWARD = ["validation=walk_forward", "data.walk_forward.initial_train=22", "data.walk_forward.test_size=6", "data.walk_forward.step=6", "data.walk_forward.val_size=4"]
WIDE = {"default": {"min_share_ratio": 0.2, "max_share_ratio": 5.0}}  # loose bounds: the optimum is interior


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("planner") / "run"
    train_in_process(out, [*WALK_FORWARD, f"+data.source.channels={CHANNELS}"], base=TINY_RUN)
    return out


@pytest.fixture(scope="module")
def inputs(run_dir):
    from nam_mmm.entry import load_table

    return open_run(run_dir, load_table)


@pytest.fixture(scope="module")
def ctx(inputs):
    predictor, frame = inputs
    return planning_context(predictor, frame, 6)


def gmv_objective(context):
    return lambda x: context.response.total(context.space.to_plan(x))


def test_the_response_equals_the_served_models_prediction_of_the_same_future_rows(ctx, inputs) -> None:
    predictor, _ = inputs
    plan = ctx.reference.current_spend
    rows = []
    for p, period in enumerate(ctx.horizon.all):
        for s, sku in enumerate(predictor.spec.skus):
            row = {"period": period.strftime("%Y-%m-%d"), "sku": sku}
            row.update({f: ctx.reference.features[p, s, j] for j, f in enumerate(ctx.reference.feature_names)})
            row.update({f"spend_{c}": plan[p, k] if p < len(ctx.horizon.periods) else 0.0 for k, c in enumerate(predictor.spec.channels)})
            rows.append(row)
    served = predictor.predict(pd.DataFrame(rows))["gmv"].to_numpy()
    with torch.no_grad():
        ours = ctx.response.gmv(plan).numpy().ravel()
    np.testing.assert_allclose(ours, served, rtol=1e-5)  # float64 copies vs the float32 served model


@pytest.mark.parametrize("granularity", ["channel", "channel_period", "brand_channel"])
def test_autograd_gradients_equal_finite_differences(inputs, granularity) -> None:
    predictor, frame = inputs
    context = planning_context(predictor, frame, 6, granularity=granularity)
    objective = gmv_objective(context)
    x = context.space.current + 1e6  # every decision above zero (zero spend is a kink of the curves)
    _, grad = value_and_grad(objective, x)
    assert np.isfinite(grad).all()
    h = 1e-3 * x
    for k in range(0, context.space.n, max(1, context.space.n // 6)):
        e = np.zeros_like(x)
        e[k] = h[k]
        fd = (value_and_grad(objective, x + e)[0] - value_and_grad(objective, x - e)[0]) / (2 * h[k])
        assert grad[k] == pytest.approx(fd, rel=1e-5, abs=1e-7 * np.abs(grad).max()), context.space.name(k)


def test_bounds_and_locks_hold_and_the_never_spent_channel_stays_at_zero(ctx) -> None:
    cur = dict(zip(ctx.space.channels, ctx.space.current, strict=True))
    cfg = {"channels": {"tv": {"lock": True}, "digital": {"change": 0.25}, "search": {"max_share": 0.3}}}
    plan = solve_plan(ctx, PlanSettings(horizon=6, starts=2), cfg)
    x = dict(zip(ctx.space.channels, plan.x, strict=True))
    assert x["tv"] == pytest.approx(cur["tv"], rel=1e-12)
    assert cur["digital"] * 0.75 - 1e-3 <= x["digital"] <= cur["digital"] * 1.25 + 1e-3
    assert x["search"] <= 0.3 * plan.x.sum() + 1e-3
    assert x["radio"] == pytest.approx(0.0, abs=1e-6)
    assert plan.x.sum() == pytest.approx(ctx.space.current.sum(), rel=1e-9)
    table = channel_table(plan).set_index("channel")
    assert "constraints.channels.tv.lock" in table.loc["tv", "held_by"]
    assert "history.radio.never_spent" in table.loc["radio", "held_by"]
    assert np.isfinite(table["marginal_roi"]).all()


def test_kkt_holds_at_an_interior_optimum(ctx) -> None:
    plan = solve_plan(ctx, PlanSettings(horizon=6, starts=2), WIDE)
    free = plan.kkt["free"]
    assert free.sum() >= 2, plan.kkt["held_by"]
    mroi = plan.gmv_grad[free]
    assert np.max(np.abs(mroi - mroi.mean())) <= 1e-4 * abs(mroi.mean())
    assert plan.report["kkt_relative_gap"] <= 1e-4
    assert plan.report["uplift_vs_current_mix_inr"] >= -1e-6 * plan.report["gmv_inr"]  # never worse than the current mix


def test_the_ensemble_reports_the_spread_across_fold_models_and_one_model_none(ctx, inputs) -> None:
    plan = solve_plan(ctx, PlanSettings(horizon=6, starts=1), WIDE)
    r = plan.report
    assert r["members"] == 3 and r["uplift_by_member"]["interval"] == "fold_mean_pm_1.96sd"
    assert r["gmv_by_member"]["lower"] < r["gmv_by_member"]["mean"] < r["gmv_by_member"]["upper"]
    co = r["carry_over"]
    assert co["plan_carry_out_inr"] > 0 and co["carry_in_inr"] > 0  # spend keeps working after the horizon; history's into it
    predictor, frame = inputs
    single = Predictor(list(predictor.model.members)[-1:], predictor.spec)
    one = solve_plan(planning_context(single, frame, 6), PlanSettings(horizon=6, starts=1), WIDE)
    assert one.report["members"] == 1 and one.report["uplift_by_member"]["interval"] == "none"


def test_a_never_spent_channel_allowed_by_a_max_gets_a_bounded_finite_amount(ctx) -> None:
    cap = 0.05 * ctx.space.current.sum()
    plan = solve_plan(ctx, PlanSettings(horizon=6, starts=1), {**WIDE, "channels": {"radio": {"max": cap}}})
    radio = ctx.space.channels.index("radio")
    assert 0.0 <= plan.x[radio] <= cap + 1e-6
    assert np.isfinite(plan.x).all() and np.isfinite(plan.gmv_grad).all() and np.isfinite(plan.report["gmv_inr"])


def test_target_mroi_mode_stops_where_free_channels_reach_the_target(ctx) -> None:
    at_current = value_and_grad(gmv_objective(ctx), ctx.space.current)[1]
    target = float(np.median(at_current[at_current > 0]))
    plan = solve_plan(ctx, PlanSettings(horizon=6, mode="target_mroi", target_mroi=target, starts=2), {})
    free = plan.kkt["free"]
    assert free.any()
    np.testing.assert_allclose(plan.gmv_grad[free], target, rtol=1e-3)


def test_infeasible_plan_is_a_one_line_error_naming_the_clash(ctx) -> None:
    total = float(ctx.space.current.sum())
    with pytest.raises(ConfigError) as err:
        solve_plan(ctx, PlanSettings(horizon=6, total=total), {"channels": {"tv": {"min": 0.8 * total}, "digital": {"min": 0.5 * total}}})
    assert_one_line(err.value, "budget.total", "constraints.channels.tv.min", "constraints.channels.digital.min")


def test_the_frontier_rises_with_the_budget_and_its_marginal_roi_falls(ctx) -> None:
    table = frontier(ctx, PlanSettings(horizon=6, starts=0), WIDE, [0.5, 1.0, 2.0])
    assert (table["status"] == "ok").all()
    assert table["gmv_inr"].is_monotonic_increasing and table["marginal_roi"].is_monotonic_decreasing
    assert (table["gmv_inr"] >= table["gmv_current_mix_inr"] - 1e-6 * table["gmv_inr"]).all()


def test_references_last_n_and_a_user_file_agree_with_the_same_inputs(ctx, inputs, tmp_path) -> None:
    predictor, frame = inputs
    last_n = planning_context(predictor, frame, 6, reference_kind="last_n")
    assert last_n.reference.source_periods[-1] == predictor.spec.periods[-1]
    rows = []  # the last_year inputs and spend of the horizon, written as a user file
    for p, period in enumerate(ctx.horizon.periods):
        for s, sku in enumerate(predictor.spec.skus):
            row = {"period": period.strftime("%Y-%m-%d"), "sku": sku}
            row.update({f: ctx.reference.features[p, s, j] for j, f in enumerate(ctx.reference.feature_names)})
            row.update({f"spend_{c}": ctx.reference.current_spend[p, k] for k, c in enumerate(predictor.spec.channels)})
            rows.append(row)
    path = tmp_path / "reference.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    from_file = planning_context(predictor, None, 6, reference_kind="file", reference_path=str(path))
    np.testing.assert_allclose(from_file.space.current, ctx.space.current)
    n_h = len(ctx.horizon.periods)
    with torch.no_grad():
        np.testing.assert_allclose(from_file.response.gmv(from_file.reference.current_spend)[:n_h].numpy(), ctx.response.gmv(ctx.reference.current_spend)[:n_h].numpy(), rtol=1e-12)
    pd.DataFrame(rows[:-1]).to_csv(path, index=False)
    with pytest.raises(DataError) as err:
        planning_context(predictor, None, 6, reference_kind="file", reference_path=str(path))
    assert_one_line(err.value, "reference.csv", "SKU-period(s) of the horizon missing")


def test_scenarios_report_lift_investment_and_roi_with_intervals(ctx) -> None:
    from omegaconf import OmegaConf

    spec = OmegaConf.to_container(OmegaConf.load(REPO_ROOT / "conf/scenarios/examples.yaml"))
    table = evaluate_scenarios(ctx, parse_scenarios(spec)).set_index("scenario")
    assert list(table.index) == ["baseline", "aggressive_digital", "price_reduction", "premium_positioning", "festival_push"]
    assert table.loc["baseline", "lift_pct"] == 0.0
    assert table.loc["aggressive_digital", "investment_inr"] > table.loc["baseline", "investment_inr"]
    assert "not in the model" in table.loc["aggressive_digital", "notes"]  # DT Mart's channel names are skipped, named
    assert table.loc["price_reduction", "lift_pct"] > 0  # own-price elasticity < 0 in every fold model
    assert (table["interval"] == "fold_mean_pm_1.96sd").all() and (table["lift_lower_pct"] <= table["lift_upper_pct"]).all()
    with pytest.raises(ConfigError) as err:
        evaluate_scenarios(ctx, parse_scenarios({"bad": {"changes": [{"target": "colour", "op": "multiply", "value": 2}]}}))
    assert_one_line(err.value, "scenario 'bad', change 1", "unknown target 'colour'")


def test_roi_curves_mark_the_current_spend_and_leave_out_the_never_spent_channel(ctx) -> None:
    table, notes = roi_curves(ctx, 2.0, 5)
    assert set(table["channel"]) == {"tv", "digital", "search"} and any("radio" in n for n in notes)
    for _, g in table.groupby("channel"):
        assert g["is_current"].sum() == 1 and g["marginal_roi"].is_monotonic_decreasing  # concave curves
        assert np.isfinite(g["marginal_roi"]).all()
        cur = g[g["is_current"]].iloc[0]
        assert cur["spend_inr"] == pytest.approx(ctx.space.current[ctx.space.channels.index(cur["channel"])])


def _script(name):
    sys.path.insert(0, str(REPO_ROOT / "scripts"))
    try:
        return __import__(name)
    finally:
        sys.path.pop(0)


def test_the_scripts_write_their_files_into_the_run_folder(run_dir, compose) -> None:
    plan_budget = _script("plan_budget")
    report = plan_budget.plan(compose("plan_budget", [f"run_dir={run_dir}", "budget.horizon=6", "solver.starts=1", "frontier.multipliers=[0.5,1.0]"]))
    budget = pd.read_csv(run_dir / "budget.csv")
    assert list(budget.columns) == ["channel", "spend_inr", "current_inr", "current_plan_inr", "change_pct", "marginal_roi", "held_by"]
    assert budget["spend_inr"].sum() == pytest.approx(report["budget_inr"])
    summary = json.loads((run_dir / "budget_summary.json").read_text())
    assert summary["uplift_by_member"]["interval"] == "fold_mean_pm_1.96sd" and summary["settings"]["budget"]["horizon"] == 6
    for name in ("budget_channels.csv", "budget_allocation.png", "budget_frontier.csv", "budget_frontier.png"):
        assert (run_dir / name).is_file(), name
    _script("scenarios").run(compose("scenarios", [f"run_dir={run_dir}", "horizon=6"]))
    assert len(pd.read_csv(run_dir / "scenarios.csv")) == 5 and (run_dir / "scenarios.png").is_file()
    _script("roi_curves").run(compose("roi_curves", [f"run_dir={run_dir}", "horizon=6", "range.points=4"]))
    assert (run_dir / "roi_curves.csv").is_file() and (run_dir / "roi_curves.png").is_file()
    per_period = plan_budget.plan(compose("plan_budget", [f"run_dir={run_dir}", "budget.horizon=6", "budget.granularity=channel_period", "solver.starts=0", "frontier.multipliers=[]"]))
    assert len(pd.read_csv(run_dir / "budget.csv")) == 6 * 4 and per_period["granularity"] == "channel_period"


def test_an_infeasible_budget_through_the_script_is_one_line_and_exit_2(run_dir, compose, capsys) -> None:
    plan_budget = _script("plan_budget")
    cfg = compose("plan_budget", [f"run_dir={run_dir}", "budget.total=1e6", "constraints.channels={tv: {min: 5e6}}", "frontier.multipliers=[]"])
    with pytest.raises(SystemExit) as exit_info:
        plan_budget.plan(cfg)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: infeasible budget constraints") and "\n" not in err and "constraints.channels.tv.min" in err
