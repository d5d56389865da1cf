"""SLSQP over the decisions with exact gradients from autograd, from several feasible starts; the best is kept.

The objective is any differentiable function of the decisions in rupees (total GMV, GMV minus a target times the
spend, profit). Variables are scaled to the average decision and the objective to the budget, so SLSQP works on
numbers of order one; starts are projected onto the constraints first (an L1-nearest feasible point).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from scipy.optimize import minimize

from nam_mmm.optimization.constraints import ConstraintSet, check_feasible, equality_mask, project
from nam_mmm.optimization.response import DTYPE

Objective = Callable[[torch.Tensor], torch.Tensor]  # decisions (n,) rupees -> scalar rupees, to maximize


def value_and_grad(objective: Objective, x: np.ndarray) -> tuple[float, np.ndarray]:
    """Objective and its exact gradient (autograd) at ``x``."""
    t = torch.as_tensor(np.asarray(x, dtype=float), dtype=DTYPE).clone().requires_grad_(True)
    value = objective(t)
    (grad,) = torch.autograd.grad(value, t)
    return float(value.detach()), grad.numpy().astype(float)


@dataclass
class StartResult:
    start: str
    value: float
    success: bool
    iterations: int
    message: str
    feasible: bool


@dataclass
class Solution:
    """The best plan found: decisions, objective, gradient there, and every start's outcome."""

    x: np.ndarray
    value: float
    grad: np.ndarray
    starts: list[StartResult] = field(default_factory=list)

    @property
    def agreeing_starts(self) -> int:
        """Starts that reached the best value (to 1e-6 of it)."""
        return sum(1 for s in self.starts if s.feasible and abs(s.value - self.value) <= 1e-6 * max(abs(self.value), 1.0))


def start_points(cs: ConstraintSet, current: np.ndarray, total: float, n_random: int, seed: int) -> list[tuple[str, np.ndarray]]:
    """Named starting points before projection: the current plan scaled to ``total``, equal amounts, random splits."""
    n = cs.n
    cur_total = float(current.sum())
    scaled = current * (total / cur_total) if cur_total > 0 else np.full(n, total / max(n, 1))
    points = [("current", scaled), ("equal", np.full(n, total / max(n, 1)))]
    rng = np.random.default_rng(seed)
    points += [(f"random_{i + 1}", rng.dirichlet(np.ones(n)) * total) for i in range(n_random)]
    return points


def _single_variable_bounds(A: np.ndarray, lo: np.ndarray, hi: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows on one decision as its bounds (SLSQP keeps bounds exactly): (n,) lower and upper rupees (spend >= 0
    included) and (r,) which rows stay general constraints."""
    lower, upper = np.zeros(n), np.full(n, np.inf)
    general = np.ones(len(A), dtype=bool)
    for r in range(len(A)):
        nz = np.flatnonzero(A[r])
        if len(nz) == 1:
            k, a = nz[0], A[r, nz[0]]
            lo_k, hi_k = (lo[r] / a, hi[r] / a) if a > 0 else (hi[r] / a, lo[r] / a)
            lower[k], upper[k] = max(lower[k], lo_k), min(upper[k], hi_k)
            general[r] = False
    return lower, np.maximum(upper, lower), general


def _slsqp_rows(As: np.ndarray, lo: np.ndarray, hi: np.ndarray, general: np.ndarray, scale_total: float) -> list[dict]:
    """SLSQP's constraint dicts of the ``general`` rows ``As`` (scaled), sides in budget units: the equalities,
    then the lower and the upper sides."""
    eq = equality_mask(lo, hi)
    rows = []
    if (eq & general).any():
        Ae, be = As[eq & general], lo[eq & general] / scale_total
        rows.append({"type": "eq", "fun": lambda u, Ae=Ae, be=be: Ae @ u - be, "jac": lambda u, Ae=Ae: Ae})
    for side in ("lo", "hi"):
        bound = lo if side == "lo" else hi
        m = ~eq & general & np.isfinite(bound)
        if m.any():
            sign = 1.0 if side == "lo" else -1.0
            Ai, bi = sign * As[m], sign * bound[m] / scale_total
            rows.append({"type": "ineq", "fun": lambda u, Ai=Ai, bi=bi: Ai @ u - bi, "jac": lambda u, Ai=Ai: Ai})
    return rows


def maximize(
    objective: Objective,
    cs: ConstraintSet,
    starts: list[tuple[str, np.ndarray]],
    scale_total: float,
    max_iter: int = 300,
    tol: float = 1e-10,
) -> Solution:
    """The best feasible SLSQP solution over ``starts`` (each projected onto the constraints first).

    ``scale_total``: rupees used to scale the objective and the variables (the budget). Raises the one-line
    infeasibility error when the constraints cannot hold.
    """
    feasible_point = check_feasible(cs)
    n = cs.n
    scale_total = float(scale_total) if scale_total and scale_total > 0 else max(float(feasible_point.sum()), 1.0)
    s = scale_total / max(n, 1)  # rupees per unit of a scaled variable
    A, lo, hi = cs.rows()
    lower, upper, general = _single_variable_bounds(A, lo, hi, n)
    rows = _slsqp_rows(A * s / scale_total, lo, hi, general, scale_total)  # rows in scaled variables and budget units
    bounds = [(lower[k] / s, None if not np.isfinite(upper[k]) else upper[k] / s) for k in range(n)]
    f0, _ = value_and_grad(objective, feasible_point)

    def fun(u: np.ndarray) -> tuple[float, np.ndarray]:
        value, grad = value_and_grad(objective, np.maximum(u, 0.0) * s)
        return -(value - f0) / scale_total, -grad * s / scale_total

    best: Solution | None = None
    results = []
    tol_rupees = 1e-7 * scale_total
    for name, x0 in starts:
        u0 = np.clip(project(cs, np.asarray(x0, dtype=float)), lower, upper) / s
        res = minimize(fun, u0, jac=True, method="SLSQP", bounds=bounds, constraints=rows, options={"maxiter": max_iter, "ftol": tol})
        x = np.clip(res.x * s, lower, upper)
        feasible = cs.violation(x) <= tol_rupees
        if not feasible:  # an SLSQP end point slightly off the constraints: its nearest feasible point
            x = project(cs, x)
            feasible = cs.violation(x) <= tol_rupees
        value, grad = value_and_grad(objective, x)
        results.append(StartResult(name, value, bool(res.success), int(res.nit), str(res.message), feasible))
        if feasible and (best is None or value > best.value):
            best = Solution(x=x, value=value, grad=grad)
    if best is None:  # no start ended feasible: the feasible point itself
        value, grad = value_and_grad(objective, feasible_point)
        best = Solution(x=feasible_point, value=value, grad=grad)
    best.starts = results
    return best
