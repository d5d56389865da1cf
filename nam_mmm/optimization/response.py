"""GMV over a planning horizon as a differentiable function of the spend plan.

The HR-NAM takes media as lag stacks of raw spend (``HierarchicalNAM.adstock``), so the carry-over of a plan is
exact: each SKU's spend series is the training history, then the plan over the horizon, then zero new spend over
the tail; every horizon and tail row gets its lag stack from that series, as the served model builds them
(:meth:`nam_mmm.serving.predictor.Predictor._media`). Spend before the horizon keeps working in it, and spend late
in the horizon keeps working in the tail; :meth:`ResponseModel.carry_over` reports both.

The plan is an (H, S, C) tensor of the spend each SKU's rows see, in rupees: for national media every SKU sees the
national spend of the period (:mod:`nam_mmm.optimization.decisions` maps budgets to it). The fold members run in
float64 (copies of the served model), so SLSQP gets gradients accurate to rounding.
"""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import torch

from nam_mmm.data.calendar.events import events_from_dicts
from nam_mmm.data.calendar.features import calendar_features, is_calendar_feature
from nam_mmm.optimization.reference import Horizon, Reference
from nam_mmm.serving.predictor import Predictor

DTYPE = torch.float64


class ResponseModel:
    """Predicted GMV of every horizon and tail row for a spend plan, for each fold model and for the ensemble.

    Args:
        predictor: the served model of a run folder (one model, or the fold ensemble).
        horizon: the planning periods and the tail (:func:`~nam_mmm.optimization.reference.planning_horizon`).
        reference: the non-media inputs of those periods (:func:`~nam_mmm.optimization.reference.build_reference`).
        features: optional (P, S, F) replacement of ``reference.features`` (scenarios change them).
    """

    def __init__(self, predictor: Predictor, horizon: Horizon, reference: Reference, features: np.ndarray | None = None) -> None:
        spec = predictor.spec
        self.predictor, self.horizon, self.reference = predictor, horizon, reference
        self.channels = list(spec.channels)
        self.skus = list(spec.skus)
        self.national = bool(spec.national)
        self.n_h, self.n_p = len(horizon.periods), len(horizon.all)
        self.n_s, self.n_c, self.lags = len(self.skus), len(self.channels), int(spec.max_lag)
        self.members = [copy.deepcopy(m).to(DTYPE).eval().requires_grad_(False) for m in predictor.model.members]
        self.brand_index = torch.as_tensor(np.tile(predictor._sku_brand_index, self.n_p), dtype=torch.long)
        self.sku_index = torch.as_tensor(np.tile(np.arange(self.n_s), self.n_p), dtype=torch.long)
        self.features = self._design(spec, features if features is not None else reference.features)
        history = np.asarray(predictor.history, dtype=float)
        if self.national:
            history = np.repeat(history[:, None, :], self.n_s, axis=1)  # every SKU sees the national spend
        pad = np.zeros((max(self.lags - len(history), 0), self.n_s, self.n_c))
        self.history = torch.as_tensor(np.concatenate([pad, history])[len(history) + len(pad) - self.lags :], dtype=DTYPE)  # (L, S, C)
        p, lag = np.arange(self.n_p)[:, None], np.arange(self.lags + 1)[None, :]
        self.lag_index = torch.as_tensor(self.lags + p - lag, dtype=torch.long)  # (P, L+1) into [history, plan, tail]

    def _design(self, spec, reference_features: np.ndarray) -> torch.Tensor:
        """(P·S, F) model inputs in model order: reference inputs, calendar features of the future dates."""
        periods = pd.Series(np.repeat(self.horizon.all, self.n_s))
        events = events_from_dicts(spec.events)
        calendar = calendar_features(periods, self.horizon.calendar, spec.festive_months, spec.fourier_order, events)
        flat = np.asarray(reference_features, dtype=float).reshape(self.n_p * self.n_s, -1)
        column = {name: j for j, name in enumerate(self.reference.feature_names)}
        x = np.zeros((self.n_p * self.n_s, len(spec.features)))
        for j, f in enumerate(spec.features):
            x[:, j] = calendar[f].to_numpy() if is_calendar_feature(f) else flat[:, column[f]]
        return torch.as_tensor(x, dtype=DTYPE)

    def with_features(self, features: np.ndarray) -> ResponseModel:
        """The same model and horizon with other (P, S, F) reference inputs (the fold members are shared)."""
        other = copy.copy(self)
        other.features = self._design(self.predictor.spec, features)
        return other

    def plan_tensor(self, plan: np.ndarray | torch.Tensor) -> torch.Tensor:
        """A plan as the (H, S, C) tensor the model sees: (H, C) national spend is broadcast to every SKU."""
        t = torch.as_tensor(plan, dtype=DTYPE)
        if t.dim() == 2:
            t = t.unsqueeze(1).expand(self.n_h, self.n_s, self.n_c)
        if tuple(t.shape) != (self.n_h, self.n_s, self.n_c):
            raise ValueError(f"a plan is (H, S, C) = ({self.n_h}, {self.n_s}, {self.n_c}) or (H, C), got {tuple(t.shape)}")
        return t

    def media(self, plan: torch.Tensor, history: torch.Tensor | None = None) -> torch.Tensor:
        """(P·S, C, L+1) lag stacks of raw spend: history, then the plan, then zero spend over the tail."""
        hist = self.history if history is None else history
        tail = plan.new_zeros((self.n_p - self.n_h, self.n_s, self.n_c))
        series = torch.cat([hist, plan, tail])  # (L + P, S, C)
        return series[self.lag_index].permute(0, 2, 3, 1).reshape(self.n_p * self.n_s, self.n_c, self.lags + 1)

    def member_log_gmv(self, plan, history: torch.Tensor | None = None) -> torch.Tensor:
        """(M, P, S) predicted log GMV of every fold model."""
        media = self.media(self.plan_tensor(plan), history)
        out = [m(self.features, media, self.brand_index, self.sku_index)["log_gmv"] for m in self.members]
        return torch.stack(out).reshape(len(self.members), self.n_p, self.n_s)

    def gmv(self, plan, history: torch.Tensor | None = None) -> torch.Tensor:
        """(P, S) GMV of the ensemble, rupees: exp of the members' mean log GMV, as the served model predicts."""
        return self.member_log_gmv(plan, history).mean(0).exp()

    def total(self, plan) -> torch.Tensor:
        """Ensemble GMV summed over every SKU and every horizon and tail period, rupees (differentiable)."""
        return self.gmv(plan).sum()

    def member_totals(self, plan) -> np.ndarray:
        """(M,) each fold model's GMV over the horizon and tail, rupees."""
        with torch.no_grad():
            return self.member_log_gmv(plan).exp().sum((1, 2)).numpy()

    def zero_plan(self) -> torch.Tensor:
        return torch.zeros((self.n_h, self.n_s, self.n_c), dtype=DTYPE)

    @torch.no_grad()
    def carry_over(self, plan) -> dict[str, float]:
        """Where a plan's GMV comes from, ensemble rupees:

        * ``horizon_gmv_inr`` / ``tail_gmv_inr``: GMV in the horizon / in the tail after it;
        * ``plan_effect_in_horizon_inr``: horizon GMV minus horizon GMV with no spend in the horizon;
        * ``plan_carry_out_inr``: the same in the tail, the plan's spend still working after the horizon;
        * ``carry_in_inr``: horizon + tail GMV minus the same with no spend before the horizon (the history's
          spend still working in the horizon).
        """
        plan = self.plan_tensor(plan)
        with_plan = self.gmv(plan)
        without = self.gmv(self.zero_plan())
        no_history = self.gmv(plan, torch.zeros_like(self.history))
        h = self.n_h
        return {
            "horizon_gmv_inr": float(with_plan[:h].sum()),
            "tail_gmv_inr": float(with_plan[h:].sum()),
            "plan_effect_in_horizon_inr": float((with_plan[:h] - without[:h]).sum()),
            "plan_carry_out_inr": float((with_plan[h:] - without[h:]).sum()),
            "carry_in_inr": float((with_plan - no_history).sum()),
        }
