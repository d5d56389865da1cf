"""The scenario planner: what-if changes to prices, promotions and spend over the horizon, and what each yields.

A scenario is a name, a description and a list of changes, each applied over the horizon periods to the reference
inputs (:mod:`nam_mmm.optimization.reference`) or to the current plan's spend::

    festival_push:
      description: festive months get 40 % more media and 5 points more discount
      changes:
        - {target: spend, op: multiply, value: 1.4, periods: {festive: true}}
        - {target: discount, op: add, value: 0.05, periods: {festive: true}}

* ``target``: a non-calendar model input (``price``, ``cross_price``, ``discount``, ``promo_days``, ``nps``, a
  control …), ``spend`` (every channel, or the ``channels`` listed) or ``spend_<channel>``;
* ``op``: ``multiply``, ``add`` or ``set``; ``value``: the number;
* optional ``periods`` (default: every horizon period): ``{festive: true}`` (the model's festive months),
  ``{months: [10, 11]}`` or ``{first: 2025-01-06, last: 2025-02-24}``; optional ``brands`` / ``skus`` lists.

Channels listed that the model does not have are skipped and named in the ``notes`` column (the example scenarios
list the channel names of several data sets). Each scenario reports its investment, the GMV over the horizon and
its carry-over tail, the lift over the baseline (the scenario named ``baseline``, else the unchanged reference),
the media ROI (GMV minus GMV without the horizon's spend, per rupee) and the incremental ROI over the baseline, with
the spread across fold models (mean ± 1.96 sd) when the run has a fold ensemble.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch

from nam_mmm.data.panel import SPEND_PREFIX
from nam_mmm.errors import ConfigError
from nam_mmm.optimization.planner import Z, PlanningContext

OPS = ("multiply", "add", "set")
BASELINE = "baseline"


@dataclass
class Change:
    target: str
    op: str
    value: float
    channels: list[str] | None = None
    periods: dict | None = None
    brands: list[str] | None = None
    skus: list[str] | None = None


@dataclass
class Scenario:
    name: str
    description: str = ""
    changes: list[Change] = field(default_factory=list)


def parse_scenarios(spec: dict) -> list[Scenario]:
    """Scenarios from a ``{name: {description, changes: [...]}}`` mapping (one-line errors for bad entries)."""
    if not spec:
        raise ConfigError("scenarios: none given (a mapping of name -> {description, changes})")
    out = []
    for name, body in spec.items():
        body = dict(body or {})
        unknown = set(body) - {"description", "changes"}
        if unknown:
            raise ConfigError(f"scenario '{name}': unknown key(s) {', '.join(sorted(unknown))} (known: description, changes)")
        changes = []
        for i, raw in enumerate(body.get("changes") or []):
            raw = dict(raw)
            where = f"scenario '{name}', change {i + 1}"
            bad = set(raw) - set(Change.__dataclass_fields__)
            if bad:
                raise ConfigError(f"{where}: unknown key(s) {', '.join(sorted(bad))} (known: {', '.join(Change.__dataclass_fields__)})")
            if raw.get("op") not in OPS:
                raise ConfigError(f"{where}: op must be one of {', '.join(OPS)}, got {raw.get('op')!r}")
            if "target" not in raw or "value" not in raw:
                raise ConfigError(f"{where}: needs target and value")
            try:
                raw["value"] = float(raw["value"])
            except (TypeError, ValueError):
                raise ConfigError(f"{where}: value must be a number, got {raw['value']!r}") from None
            changes.append(Change(**raw))
        out.append(Scenario(str(name), str(body.get("description") or ""), changes))
    return out


def _apply(values: np.ndarray, op: str, value: float) -> np.ndarray:
    if op == "multiply":
        return values * value
    if op == "add":
        return values + value
    return np.full_like(values, value)


def _period_mask(ctx: PlanningContext, sel: dict | None, where: str) -> np.ndarray:
    periods = ctx.horizon.periods
    if not sel:
        return np.ones(len(periods), dtype=bool)
    sel = dict(sel)
    unknown = set(sel) - {"festive", "months", "first", "last"}
    if unknown:
        raise ConfigError(f"{where}: periods: unknown key(s) {', '.join(sorted(unknown))} (known: festive, months, first, last)")
    mask = np.ones(len(periods), dtype=bool)
    if sel.get("festive"):
        mask &= periods.month.isin(ctx.predictor.spec.festive_months)
    if sel.get("months"):
        mask &= periods.month.isin([int(m) for m in sel["months"]])
    if sel.get("first"):
        mask &= periods >= pd.Timestamp(str(sel["first"]))
    if sel.get("last"):
        mask &= periods <= pd.Timestamp(str(sel["last"]))
    return np.asarray(mask, dtype=bool)


def _members(labels, wanted, unknown_message: str) -> np.ndarray:
    """(len(labels),) which labels are ``wanted``; a wanted label not among them is a one-line error."""
    unknown = sorted(set(wanted) - set(labels))
    if unknown:
        raise ConfigError(f"{unknown_message} {', '.join(unknown)}")
    return np.isin(labels, wanted)


def apply_scenario(ctx: PlanningContext, scenario: Scenario) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """The scenario's (P, S, F) inputs, its spend plan (as the current plan's shape) and notes."""
    ref = ctx.reference
    features = ref.features.copy()
    spend = np.asarray(ref.current_spend, dtype=float).copy()
    spec = ctx.predictor.spec
    channels, skus = list(spec.channels), list(spec.skus)
    sku_brand = np.array([spec.sku_brand[s] for s in skus])
    notes = []
    for i, ch in enumerate(scenario.changes):
        where = f"scenario '{scenario.name}', change {i + 1}"
        periods = _period_mask(ctx, ch.periods, where)
        if ch.periods and not periods.any():
            notes.append(f"change {i + 1} ({ch.target}): no horizon period selected")
        units = np.ones(len(skus), dtype=bool)
        if ch.brands:
            units &= _members(sku_brand, ch.brands, f"{where}: unknown brand(s)")
        if ch.skus:
            units &= _members(skus, ch.skus, f"{where}: unknown SKU(s)")
        if ch.target == "spend" or ch.target.startswith(SPEND_PREFIX):
            wanted = ch.channels if ch.target == "spend" else [ch.target[len(SPEND_PREFIX):]]
            wanted = channels if wanted is None else list(wanted)
            missing = [c for c in wanted if c not in channels]
            if ch.target != "spend" and missing:
                raise ConfigError(f"{where}: unknown channel '{missing[0]}' (the model's channels: {', '.join(channels)})")
            cols = [channels.index(c) for c in wanted if c in channels]
            if not cols:
                notes.append(f"change {i + 1}: none of the channels {', '.join(wanted)} is in the model")
                continue
            if ch.channels and missing:
                notes.append(f"change {i + 1}: not in the model: {', '.join(missing)}")
            if spend.ndim == 2:  # national spend: one value per period, for every SKU
                if ch.brands or ch.skus:
                    raise ConfigError(f"{where}: spend is national in this model; brands/skus cannot be chosen for a spend change")
                block = spend[np.ix_(periods, cols)]
                spend[np.ix_(periods, cols)] = _apply(block, ch.op, ch.value)
            else:
                idx = np.ix_(periods, units, cols)
                spend[idx] = _apply(spend[idx], ch.op, ch.value)
            if (spend < 0).any():
                raise ConfigError(f"{where}: spend would fall below 0")
            continue
        if ch.target not in ref.feature_names:
            raise ConfigError(f"{where}: unknown target '{ch.target}' (the model's inputs: {', '.join(ref.feature_names)}, spend, spend_<channel>)")
        j = ref.feature_names.index(ch.target)
        horizon_periods = np.concatenate([periods, np.zeros(len(ctx.horizon.tail), dtype=bool)])  # the tail keeps the reference
        idx = np.ix_(horizon_periods, units, [j])
        features[idx] = _apply(features[idx], ch.op, ch.value)
        if ch.target in spec.log_features and (features[:, :, j] <= 0).any():
            raise ConfigError(f"{where}: {ch.target} would be <= 0 (the model takes its log)")
    return features, spend, notes


def _members(ctx: PlanningContext, features: np.ndarray, spend: np.ndarray) -> tuple[float, np.ndarray, float, np.ndarray]:
    """Ensemble and per-member GMV with the spend, and without the horizon's spend, rupees."""
    response = ctx.response.with_features(features)
    plan = response.plan_tensor(spend)
    with torch.no_grad():
        return float(response.total(plan)), response.member_totals(plan), float(response.total(response.zero_plan())), response.member_totals(response.zero_plan())


def _band(values: np.ndarray) -> tuple[float | None, float | None]:
    if len(values) < 2:
        return None, None
    m, sd = float(values.mean()), float(values.std(ddof=1))
    return m - Z * sd, m + Z * sd


def evaluate_scenarios(ctx: PlanningContext, scenarios: list[Scenario]) -> pd.DataFrame:
    """One row per scenario: investment, GMV, lift over the baseline, media and incremental ROI, with intervals."""
    applied = {s.name: apply_scenario(ctx, s) for s in scenarios}
    base_features, base_spend, _ = applied.get(BASELINE) or (ctx.reference.features, ctx.reference.current_spend, [])
    g_base, m_base, _, _ = _members(ctx, base_features, base_spend)
    spend_base = float(np.asarray(base_spend).sum())
    rows = []
    for s in scenarios:
        features, spend, notes = applied[s.name]
        g, m, g0, m0 = _members(ctx, features, spend)
        invest = float(np.asarray(spend).sum())
        lift_m = 100.0 * (m / m_base - 1.0)
        roi_m = (m - m0) / invest if invest > 0 else np.full(len(m), np.nan)
        lo, hi = _band(m)
        llo, lhi = _band(lift_m)
        rlo, rhi = _band(roi_m)
        extra = invest - spend_base
        rows.append({
            "scenario": s.name,
            "description": s.description,
            "investment_inr": invest,
            "gmv_inr": g,
            "gmv_lower_inr": lo,
            "gmv_upper_inr": hi,
            "lift_pct": 100.0 * (g / g_base - 1.0),
            "lift_lower_pct": llo,
            "lift_upper_pct": lhi,
            "media_contribution_inr": g - g0,
            "roi": (g - g0) / invest if invest > 0 else np.nan,
            "roi_lower": rlo,
            "roi_upper": rhi,
            "incremental_roi": (g - g_base) / extra if abs(extra) > 1e-9 * max(spend_base, 1.0) else np.nan,
            "interval": "fold_mean_pm_1.96sd" if len(m) > 1 else "none",
            "notes": "; ".join(notes),
        })
    return pd.DataFrame(rows)
