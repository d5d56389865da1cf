"""The budget planner: the allocation of a future budget that maximizes predicted GMV, and what it buys.

Modes (``budget.mode``):

* ``fixed_budget``: maximize GMV over the horizon and its carry-over tail with the budget spent (``spend_all``, or at
  most the budget);
* ``target_mroi``: spend while the marginal ROI (extra GMV per extra rupee) is above ``target_mroi``: maximize
  ``GMV − target · spend``, so every channel not held by a constraint ends with marginal ROI = target;
* ``max_profit``: maximize ``margin · GMV − spend`` (``target_mroi`` = 1 / margin).

The target modes need no budget; without one the total is capped at ``max_total_ratio`` × the current plan
(``budget.max_total``), and the cap is named when it binds.

With a fold ensemble the planner maximizes the ensemble's prediction (the served model's: exp of the members' mean
log GMV) and reports the optimum's GMV and uplift under every fold model: mean ± 1.96 sd across the members.

At an optimum (KKT), every decision that no constraint besides the total holds has the same marginal ROI (the
budget's shadow price, ``target_mroi`` in the target modes); the others are named with the constraints that bind.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch

from nam_mmm.data.features.model_inputs import brand_order
from nam_mmm.errors import ConfigError
from nam_mmm.optimization.constraints import ConstraintSet, build_constraints
from nam_mmm.optimization.decisions import DecisionSpace, build_decisions
from nam_mmm.optimization.reference import Horizon, Reference, build_reference, planning_horizon
from nam_mmm.optimization.response import ResponseModel
from nam_mmm.optimization.solver import Objective, Solution, maximize, start_points, value_and_grad
from nam_mmm.serving.predictor import Predictor

MODES = ("fixed_budget", "target_mroi", "max_profit")
Z = 1.96  # fold interval: mean ± 1.96 sd across fold models, as the run folder's fold intervals


@dataclass
class PlanSettings:
    """The ``budget`` and ``solver`` settings of ``conf/plan_budget.yaml`` (units in comments)."""

    horizon: int = 13  # planning periods after the training calendar
    total: float | None = None  # rupees over the horizon; None = the current plan's total
    granularity: str = "channel"  # channel | channel_period | brand_channel
    pacing: str = "reference"  # reference | even
    mode: str = "fixed_budget"  # fixed_budget | target_mroi | max_profit
    target_mroi: float | None = None  # GMV rupees per rupee (target_mroi mode)
    margin: float | None = None  # profit per rupee of GMV (max_profit mode; reported as profit when set)
    spend_all: bool = True  # fixed_budget: spend exactly the budget (else at most)
    max_total_ratio: float = 3.0  # target modes without a budget: total at most this × the current plan
    starts: int = 4  # random starts besides the current plan and equal amounts
    max_iter: int = 300  # SLSQP iterations per start
    tol: float = 1e-10  # SLSQP ftol on the scaled objective
    seed: int = 0  # random starts
    kkt_tol: float = 1e-6  # a constraint binds within this share of the budget


@dataclass
class PlanningContext:
    """Everything about a run folder's planning problem that does not depend on the budget settings."""

    predictor: Predictor
    horizon: Horizon
    reference: Reference
    response: ResponseModel
    space: DecisionSpace
    history_share: np.ndarray  # (C,) each channel's share of the training spend
    brand_weight: np.ndarray  # (B,) each brand's share of the predicted GMV of the current plan

    @property
    def current_plan(self) -> np.ndarray:
        return self.space.current


def planning_context(
    predictor: Predictor,
    frame: pd.DataFrame | None,
    horizon: int,
    granularity: str = "channel",
    pacing: str = "reference",
    reference_kind: str = "auto",
    reference_path: str | None = None,
) -> PlanningContext:
    """The planning problem of a served model over the next ``horizon`` periods (``frame``: the run's feature table)."""
    spec = predictor.spec
    hz = planning_horizon(predictor.calendar, spec.freq, horizon, spec.max_lag)
    ref = build_reference(reference_kind, hz, frame, spec.skus, spec.features, spec.channels, predictor.history, spec.national, reference_path)
    response = ResponseModel(predictor, hz, ref)
    brands = brand_order(spec.sku_brand)
    with torch.no_grad():
        by_sku = response.gmv(ref.current_spend)[: len(hz.periods)].sum(0).numpy()
    brand_weight = np.bincount(predictor._sku_brand_index, weights=by_sku, minlength=len(brands))
    brand_weight = brand_weight / brand_weight.sum()
    space = build_decisions(
        granularity, pacing, ref.current_spend, predictor.history, spec.channels,
        [p.strftime("%Y-%m-%d") for p in hz.periods], predictor._sku_brand_index, brands, brand_weight,
    )
    hist = np.asarray(predictor.history, dtype=float)
    per_channel = hist.reshape(-1, hist.shape[-1]).sum(0)
    share = per_channel / per_channel.sum() if per_channel.sum() > 0 else np.zeros_like(per_channel)
    return PlanningContext(predictor, hz, ref, response, space, share, brand_weight)


@dataclass
class BudgetPlan:
    """A solved plan and what the report needs."""

    settings: PlanSettings
    context: PlanningContext
    constraints: ConstraintSet
    solution: Solution
    current: np.ndarray  # the current mix at this plan's total (decisions)
    gmv_grad: np.ndarray  # ∂GMV/∂x at the optimum: marginal ROI of every decision
    target: float | None  # the marginal ROI the target modes aim at
    report: dict = field(default_factory=dict)
    kkt: dict = field(default_factory=dict)  # kkt_analysis at the optimum

    @property
    def x(self) -> np.ndarray:
        return self.solution.x


def _gmv(ctx: PlanningContext) -> Objective:
    return lambda x: ctx.response.total(ctx.space.to_plan(x))


def _objective(ctx: PlanningContext, mode: str, target: float | None, margin: float | None):
    gmv = _gmv(ctx)
    if mode == "fixed_budget":
        return gmv
    if mode == "target_mroi":
        return lambda x: gmv(x) - target * x.sum()
    return lambda x: margin * gmv(x) - x.sum()


def _mode_target(settings: PlanSettings) -> float | None:
    if settings.mode not in MODES:
        raise ConfigError(f"budget.mode must be one of {', '.join(MODES)}, got {settings.mode!r}")
    if settings.mode == "target_mroi":
        if settings.target_mroi is None or not settings.target_mroi > 0:
            raise ConfigError(f"budget.mode=target_mroi needs budget.target_mroi > 0 (GMV rupees per rupee), got {settings.target_mroi!r}")
        return float(settings.target_mroi)
    if settings.mode == "max_profit":
        if settings.margin is None or not settings.margin > 0:
            raise ConfigError(f"budget.mode=max_profit needs budget.margin > 0 (profit per rupee of GMV), got {settings.margin!r}")
        return 1.0 / float(settings.margin)
    return None


def solve_plan(ctx: PlanningContext, settings: PlanSettings, constraints_cfg: dict | None, extra_starts: list[np.ndarray] | None = None) -> BudgetPlan:
    """Solve one plan: build the constraints, run SLSQP from several starts, and analyse the optimum."""
    target = _mode_target(settings)
    space = ctx.space
    cur_total = float(space.current.sum())
    fixed = settings.mode == "fixed_budget"
    total = settings.total if settings.total is not None else (cur_total if fixed else None)
    if total is not None:
        total = float(total)
    max_total = None if (fixed or total is not None) else settings.max_total_ratio * cur_total
    cs = build_constraints(space, constraints_cfg, total, settings.spend_all if fixed else False, ctx.history_share, max_total)
    budget = total if total is not None else max_total
    if not budget or budget <= 0:
        budget = max(cur_total, 1.0)
    current_mix = space.current * (budget / cur_total) if cur_total > 0 else np.full(space.n, budget / max(space.n, 1))
    starts = start_points(cs, space.current, budget, settings.starts, settings.seed)
    starts += [(f"given_{i + 1}", np.asarray(s, dtype=float)) for i, s in enumerate(extra_starts or [])]
    objective = _objective(ctx, settings.mode, target, settings.margin)
    solution = maximize(objective, cs, starts, budget, settings.max_iter, settings.tol)
    _, grad = value_and_grad(_gmv(ctx), solution.x)
    plan = BudgetPlan(settings, ctx, cs, solution, current_mix, grad, target)
    plan.report = _report(plan, budget)
    return plan


def _interval(values: np.ndarray) -> dict:
    if len(values) < 2:
        return {"mean": float(values.mean()), "sd": None, "lower": None, "upper": None, "min": float(values.min()), "max": float(values.max()), "interval": "none"}
    sd = float(values.std(ddof=1))
    m = float(values.mean())
    return {"mean": m, "sd": sd, "lower": m - Z * sd, "upper": m + Z * sd, "min": float(values.min()), "max": float(values.max()), "interval": "fold_mean_pm_1.96sd"}


def kkt_analysis(cs: ConstraintSet, x: np.ndarray, grad: np.ndarray, budget: float, tol_share: float) -> dict:
    """Which decisions are free (no binding constraint is about them, spend above 0) and how equal their marginal
    ROIs are; per decision, the binding constraints that hold it."""
    tol = tol_share * max(budget, 1.0)
    held: list[list[str]] = [[] for _ in range(len(x))]
    binding = []
    for c in cs.items:
        if c.binding(x, tol):
            binding.append(c.name)
            for k in np.flatnonzero(c.subject):
                if c.name not in held[k]:
                    held[k].append(c.name)
    for k in np.flatnonzero(x <= tol):
        held[k].append("spend >= 0")
    free = np.array([not h for h in held], dtype=bool)
    shadow = float(np.mean(grad[free])) if free.any() else None
    gap = float(np.max(np.abs(grad[free] - shadow)) / max(abs(shadow), 1e-12)) if free.any() else None
    return {"free": free, "held_by": held, "binding": binding, "shadow_mroi": shadow, "kkt_relative_gap": gap}


def _report(plan: BudgetPlan, budget: float) -> dict:
    ctx, space, x = plan.context, plan.context.space, plan.x
    response = ctx.response
    to_plan = space.to_plan
    with torch.no_grad():
        g_opt = float(response.total(to_plan(x)))
        g_mix = float(response.total(to_plan(plan.current)))
        g_cur = float(response.total(to_plan(space.current)))
        g_zero = float(response.total(response.zero_plan()))
    m_opt = response.member_totals(to_plan(x))
    m_mix = response.member_totals(to_plan(plan.current))
    m_zero = response.member_totals(response.zero_plan())
    kkt = kkt_analysis(plan.constraints, x, plan.gmv_grad, budget, plan.settings.kkt_tol)
    spend = float(x.sum())
    margin = plan.settings.margin
    report = {
        "mode": plan.settings.mode,
        "granularity": space.granularity,
        "pacing": plan.settings.pacing,
        "horizon": {"periods": space.periods, "tail_periods": [p.strftime("%Y-%m-%d") for p in ctx.horizon.tail]},
        "reference": {"kind": ctx.reference.kind, "source_periods": ctx.reference.source_periods},
        "budget_inr": spend,
        "current_plan_total_inr": float(space.current.sum()),
        "gmv_inr": g_opt,
        "gmv_current_mix_inr": g_mix,
        "gmv_current_plan_inr": g_cur,
        "gmv_zero_spend_inr": g_zero,
        "uplift_vs_current_mix_inr": g_opt - g_mix,
        "uplift_vs_current_mix_pct": 100.0 * (g_opt - g_mix) / g_mix,
        "uplift_vs_current_plan_inr": g_opt - g_cur,
        "media_roi": (g_opt - g_zero) / spend if spend > 0 else None,
        "members": len(m_opt),
        "gmv_by_member": _interval(m_opt),
        "uplift_by_member": _interval(m_opt - m_mix),
        "media_roi_by_member": _interval((m_opt - m_zero) / spend) if spend > 0 else None,
        "carry_over": response.carry_over(to_plan(x)),
        "carry_over_current_mix": response.carry_over(to_plan(plan.current)),
        "shadow_mroi": kkt["shadow_mroi"],
        "kkt_relative_gap": kkt["kkt_relative_gap"],
        "binding_constraints": kkt["binding"],
        "target_mroi": plan.target,
        "starts": [vars(s) for s in plan.solution.starts],
        "starts_reaching_best": plan.solution.agreeing_starts,
    }
    if margin:
        report["profit_inr"] = margin * g_opt - spend
        report["profit_current_mix_inr"] = margin * g_mix - float(plan.current.sum())
    plan.kkt = kkt
    return report


def decision_table(plan: BudgetPlan) -> pd.DataFrame:
    """``budget.csv``: one row per decision (channel[, period][, brand]) with proposed and current spend, the
    marginal ROI at the optimum and what holds the decision (``free``: at the common marginal ROI)."""
    space = plan.context.space
    rows = pd.DataFrame(space.labels())
    rows["spend_inr"] = plan.x
    rows["current_inr"] = plan.current
    rows["current_plan_inr"] = space.current
    rows["change_pct"] = np.where(plan.current > 0, 100.0 * (plan.x / np.where(plan.current > 0, plan.current, 1.0) - 1.0), np.nan)
    rows["marginal_roi"] = plan.gmv_grad
    rows["held_by"] = ["free" if not h else "; ".join(h) for h in plan.kkt["held_by"]]
    return rows


def channel_table(plan: BudgetPlan) -> pd.DataFrame:
    """Per channel: current and proposed spend and share, marginal ROI at the optimum (spend-weighted over the
    channel's decisions) and the constraints holding it (``free``)."""
    space = plan.context.space
    x, g = plan.x, plan.gmv_grad
    out = []
    for c, ch in enumerate(space.channels):
        k = np.flatnonzero(space.channel_of == c)
        spend = float(x[k].sum())
        mroi = float((x[k] * g[k]).sum() / spend) if spend > 0 else float(g[k].mean())
        held = sorted({name for j in k for name in plan.kkt["held_by"][j]})
        out.append({
            "channel": ch,
            "current_inr": float(plan.current[k].sum()),
            "proposed_inr": spend,
            "current_share": float(plan.current[k].sum() / max(plan.current.sum(), 1e-300)),
            "proposed_share": spend / max(float(x.sum()), 1e-300),
            "history_share": float(plan.context.history_share[c]),
            "marginal_roi": mroi,
            "held_by": "free" if not held else "; ".join(held),
        })
    return pd.DataFrame(out)


def frontier(ctx: PlanningContext, settings: PlanSettings, constraints_cfg: dict | None, multipliers: list[float]) -> pd.DataFrame:
    """The efficient frontier: the optimal GMV and ROI of fixed budgets ``multipliers`` × the plan's budget, next to
    the current mix at the same budgets. A budget the constraints cannot meet gets its one-line reason."""
    base = settings.total if settings.total is not None else float(ctx.space.current.sum())
    rows, previous = [], None
    for m in sorted(float(v) for v in multipliers):
        s = PlanSettings(**{**vars(settings), "mode": "fixed_budget", "total": m * base, "spend_all": True, "starts": min(settings.starts, 1)})
        row = {"budget_multiplier": m, "budget_inr": m * base}
        try:
            plan = solve_plan(ctx, s, constraints_cfg, extra_starts=[previous * m / previous_m] if previous is not None else None)
        except ConfigError as err:
            rows.append({**row, "status": f"infeasible: {err}"})
            continue
        r = plan.report
        previous, previous_m = plan.x, m
        rows.append({
            **row,
            "gmv_inr": r["gmv_inr"],
            "gmv_lower_inr": r["gmv_by_member"]["lower"],
            "gmv_upper_inr": r["gmv_by_member"]["upper"],
            "gmv_current_mix_inr": r["gmv_current_mix_inr"],
            "uplift_vs_current_mix_inr": r["uplift_vs_current_mix_inr"],
            "media_contribution_inr": r["gmv_inr"] - r["gmv_zero_spend_inr"],
            "media_roi": r["media_roi"],
            "marginal_roi": r["shadow_mroi"],
            "binding": "; ".join(r["binding_constraints"]),
            "status": "ok",
        })
    return pd.DataFrame(rows)
