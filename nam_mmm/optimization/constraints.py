"""Budget constraints from config as named linear rows ``lo <= a·x <= hi`` over the decisions ``x`` (rupees).

Every constraint carries the config key it came from, so an infeasible set is reported in one line naming the
constraints that clash: :func:`check_feasible` finds an irreducible infeasible subset (drop a constraint, keep it
dropped when the rest stays infeasible) with a linear program per step. Spend is never negative (always on).

Settings (``constraints`` in ``conf/plan_budget.yaml``; amounts are rupees over the whole horizon):

* ``default.min_share_ratio`` / ``default.max_share_ratio``: every channel's share of the plan's total stays within
  these multiples of its *basis share* (``share_basis``: ``history`` = its share of all training spend, ``current``
  = its share of the current plan); a side a channel sets itself (below) replaces the default's side.
* ``channels.<name>``: ``min`` / ``max`` (rupees), ``min_share`` / ``max_share`` (of the plan's total), ``change``
  (±fraction of the channel's current amount), ``lock: true`` (every decision of the channel stays at its current
  value).
* ``period_cap``: most rupees spent in a period, over all channels: a number for every period, a list (one per
  period) or ``{date: cap}``.
* ``brands.<name>``: ``min`` / ``max`` rupees of the brand over all channels (``brand_channel`` only).

A channel never spent in the training data has no evidence behind its curve: it is held at zero unless its own
``max`` or ``max_share`` allows spend.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linprog

from nam_mmm.errors import ConfigError
from nam_mmm.optimization.decisions import DecisionSpace

CHANNEL_KEYS = ("min", "max", "min_share", "max_share", "change", "lock")
SHARE_BASES = ("history", "current")


@dataclass
class Constraint:
    """Rows ``lo <= A x <= hi`` with the config key they come from and a readable statement."""

    name: str
    text: str
    A: np.ndarray  # (r, n)
    lo: np.ndarray  # (r,)
    hi: np.ndarray  # (r,)
    # (n,) the decisions the constraint is about. The rows' coefficients on the other decisions are one common
    # value (0, or −share, or 1 for the total), so binding does not make their marginal ROIs differ (KKT)
    subject: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.subject is None:
            self.subject = (self.A != 0).any(0)

    def slack(self, x: np.ndarray) -> np.ndarray:
        """(r,) distance to the nearer side (negative: violated)."""
        v = self.A @ x
        return np.minimum(v - self.lo, self.hi - v)

    def binding(self, x: np.ndarray, tol: float) -> bool:
        return bool((self.slack(x) <= tol).any())


@dataclass
class ConstraintSet:
    """All constraints of a plan over ``n`` decisions (spend >= 0 always holds on top)."""

    n: int
    items: list[Constraint] = field(default_factory=list)

    def add(self, name: str, text: str, a, lo, hi, subject: np.ndarray | None = None) -> None:
        a = np.atleast_2d(np.asarray(a, dtype=float))
        lo, hi = np.atleast_1d(np.asarray(lo, dtype=float)), np.atleast_1d(np.asarray(hi, dtype=float))
        self.items.append(Constraint(name, text, a, lo, hi, None if subject is None else np.asarray(subject, dtype=bool)))

    def rows(self, subset: list[Constraint] | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        items = self.items if subset is None else subset
        if not items:
            return np.zeros((0, self.n)), np.zeros(0), np.zeros(0)
        return np.vstack([c.A for c in items]), np.concatenate([c.lo for c in items]), np.concatenate([c.hi for c in items])

    def violation(self, x: np.ndarray) -> float:
        """Largest violation in rupees (0 when feasible), spend >= 0 included."""
        worst = float(max(0.0, -np.min(x))) if len(x) else 0.0
        for c in self.items:
            worst = max(worst, float(max(0.0, -c.slack(x).min())))
        return worst

    def binding_names(self, x: np.ndarray, tol: float) -> list[str]:
        return [c.name for c in self.items if c.binding(x, tol)]


def _fmt(v: float) -> str:
    return f"{v:,.0f}"


def equality_mask(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """(r,) the rows ``lo <= a·x <= hi`` whose two sides are one number (to 1e-12): equalities for a solver."""
    return np.isfinite(lo) & np.isfinite(hi) & (np.abs(hi - lo) <= 1e-12 * np.maximum(np.abs(hi), 1.0))


def _budget_rows(cs: ConstraintSet, total: float | None, spend_all: bool, max_total: float | None) -> None:
    """``budget.total`` (= or <= the budget) and ``budget.max_total``; rows on the total bind no channel alone."""
    n = cs.n
    ones = np.ones(n)
    if total is not None:
        if not np.isfinite(total) or total < 0:
            raise ConfigError(f"budget.total must be a number of rupees >= 0, got {total!r}")
        if spend_all:
            cs.add("budget.total", f"total = {_fmt(total)}", ones, total, total, subject=np.zeros(n))
        else:
            cs.add("budget.total", f"total <= {_fmt(total)}", ones, -np.inf, total, subject=np.zeros(n))
    if max_total is not None:
        cs.add("budget.max_total", f"total <= {_fmt(max_total)}", ones, -np.inf, max_total, subject=np.zeros(n))


def _share_row(cs: ConstraintSet, name: str, text: str, member: np.ndarray, share: float, at_least: bool) -> None:
    """channel − share·total >= 0 (``at_least``) or <= 0; the row is about the channel's own decisions."""
    a = member - share * np.ones(cs.n)
    cs.add(name, text, a, 0.0 if at_least else -np.inf, np.inf if at_least else 0.0, subject=member)


def _channel_rows(cs: ConstraintSet, space: DecisionSpace, c: int, own: dict, current_total: float) -> None:
    """The rows a channel sets itself (``constraints.channels.<name>``), in the order of :data:`CHANNEL_KEYS`."""
    ch, n = space.channels[c], cs.n
    member = (space.channel_of == c).astype(float)
    key = f"constraints.channels.{ch}"
    if own.get("lock"):
        idx = np.flatnonzero(member)
        cs.add(f"{key}.lock", f"{ch} locked at {_fmt(current_total)}", np.eye(n)[idx], space.current[idx], space.current[idx])
    if own.get("min") is not None:
        cs.add(f"{key}.min", f"{ch} >= {_fmt(own['min'])}", member, float(own["min"]), np.inf)
    if own.get("max") is not None:
        cs.add(f"{key}.max", f"{ch} <= {_fmt(own['max'])}", member, -np.inf, float(own["max"]))
    for side, at_least in (("min_share", True), ("max_share", False)):
        if own.get(side) is not None:
            r = float(own[side])
            if not 0 <= r <= 1:
                raise ConfigError(f"{key}.{side} must be a share in [0, 1], got {r}")
            _share_row(cs, f"{key}.{side}", f"{ch} {'>=' if at_least else '<='} {r:.1%} of the total", member, r, at_least)
    if own.get("change") is not None:
        frac = float(own["change"])
        if frac < 0:
            raise ConfigError(f"{key}.change must be a fraction >= 0 (0.2 = ±20 %), got {frac}")
        cur = current_total
        cs.add(f"{key}.change", f"{ch} within ±{frac:.0%} of its current {_fmt(cur)}", member, max(cur * (1 - frac), 0.0), cur * (1 + frac))


def _default_rows(cs: ConstraintSet, space: DecisionSpace, c: int, own: dict, default: dict, share: float, basis: str, never_spent: bool) -> None:
    """A channel never spent is held at zero unless it allows spend itself; else ``constraints.default``'s share
    ratios on the sides the channel does not set itself."""
    ch, n = space.channels[c], cs.n
    member = (space.channel_of == c).astype(float)
    if never_spent and not (own.get("max") is not None or own.get("max_share") is not None or own.get("lock")):
        idx = np.flatnonzero(member)  # one row per decision: the solver keeps them as bounds
        cs.add(f"history.{ch}.never_spent", f"{ch} = 0 (never spent in the training data; set constraints.channels.{ch}.max to allow spend)", np.eye(n)[idx], np.full(len(idx), -np.inf), np.zeros(len(idx)))
        return
    sets_low = any(own.get(k) not in (None, False) for k in ("min", "min_share", "change", "lock"))
    sets_high = any(own.get(k) not in (None, False) for k in ("max", "max_share", "change", "lock"))
    for side, ratio_key, sets in (("min", "min_share_ratio", sets_low), ("max", "max_share_ratio", sets_high)):
        ratio = default.get(ratio_key)
        if ratio is None or sets:
            continue
        rel = ">=" if side == "min" else "<="
        text = f"{ch} {rel} {float(ratio):g} x its {basis} share {share:.1%} of the total"
        _share_row(cs, f"constraints.default.{ratio_key}", text, member, float(ratio) * float(share), side == "min")


def _period_cap_rows(cs: ConstraintSet, space: DecisionSpace, cap) -> None:
    """``constraints.period_cap``: one number for every period, a list (one per period) or ``{date: cap}``."""
    n_h = len(space.periods)
    if isinstance(cap, dict):
        unknown_p = sorted(set(map(str, cap)) - set(space.periods))
        if unknown_p:
            raise ConfigError(f"constraints.period_cap: period(s) {', '.join(unknown_p)} not in the horizon ({space.periods[0]} … {space.periods[-1]})")
        caps = {space.periods.index(str(p)): float(v) for p, v in cap.items()}
    elif isinstance(cap, (list, tuple)):
        if len(cap) != n_h:
            raise ConfigError(f"constraints.period_cap: a list needs one cap per horizon period ({n_h}), got {len(cap)}")
        caps = {h: float(v) for h, v in enumerate(cap)}
    else:
        caps = {h: float(cap) for h in range(n_h)}
    for h, v in caps.items():
        cs.add(f"constraints.period_cap[{space.periods[h]}]", f"spend in {space.periods[h]} <= {_fmt(v)}", space.rupees_per_period[h], -np.inf, v)


def _brand_rows(cs: ConstraintSet, space: DecisionSpace, brands: dict) -> None:
    """``constraints.brands.<name>``: ``min`` / ``max`` rupees of a brand over all channels."""
    if space.granularity != "brand_channel":
        raise ConfigError("constraints.brands needs budget.granularity=brand_channel")
    unknown_b = sorted(set(brands) - set(space.brands))
    if unknown_b:
        raise ConfigError(f"constraints.brands: unknown brand(s) {', '.join(unknown_b)} (the model's brands: {', '.join(space.brands)})")
    for b, bound in brands.items():
        member = (space.group == space.brands.index(b)).astype(float)
        bound = dict(bound or {})
        if bound.get("min") is not None:
            cs.add(f"constraints.brands.{b}.min", f"{b} >= {_fmt(bound['min'])}", member, float(bound["min"]), np.inf)
        if bound.get("max") is not None:
            cs.add(f"constraints.brands.{b}.max", f"{b} <= {_fmt(bound['max'])}", member, -np.inf, float(bound["max"]))


def _checked_settings(cfg: dict, channels: list[str]) -> tuple[str, dict, dict]:
    """``share_basis``, ``default`` and ``channels`` of the settings, each checked for unknown keys."""
    basis = str(cfg.get("share_basis") or "history")
    if basis not in SHARE_BASES:
        raise ConfigError(f"constraints.share_basis must be one of {', '.join(SHARE_BASES)}, got {basis!r}")
    default = dict(cfg.get("default") or {})
    bad = set(default) - {"min_share_ratio", "max_share_ratio"}
    if bad:
        raise ConfigError(f"constraints.default: unknown setting(s) {', '.join(sorted(bad))} (known: min_share_ratio, max_share_ratio)")
    per_channel = dict(cfg.get("channels") or {})
    unknown_ch = sorted(set(per_channel) - set(channels))
    if unknown_ch:
        raise ConfigError(f"constraints.channels: unknown channel(s) {', '.join(unknown_ch)} (the model's channels: {', '.join(channels)})")
    return basis, default, per_channel


def build_constraints(
    space: DecisionSpace,
    cfg: dict,
    total: float | None,
    spend_all: bool,
    history_share: np.ndarray,
    max_total: float | None = None,
) -> ConstraintSet:
    """The constraint set of ``cfg`` (the ``constraints`` settings) for ``space``.

    Args:
        total: the budget (rupees over the horizon); ``spend_all``: the plan spends exactly it (else at most it).
        history_share: (C,) each channel's share of the training spend (its basis when ``share_basis: history``;
            zero marks a channel never spent).
        max_total: a cap on the total when there is no budget (target-efficiency modes), named ``budget.max_total``.
    """
    cfg = dict(cfg or {})
    unknown = set(cfg) - {"default", "channels", "period_cap", "brands", "share_basis"}
    if unknown:
        raise ConfigError(f"constraints: unknown setting(s) {', '.join(sorted(unknown))} (known: default, channels, period_cap, brands, share_basis)")
    cs = ConstraintSet(space.n)
    _budget_rows(cs, total, spend_all, max_total)
    basis, default, per_channel = _checked_settings(cfg, space.channels)
    current_totals = space.channel_totals(space.current)
    share = np.asarray(history_share, dtype=float) if basis == "history" else current_totals / max(current_totals.sum(), 1e-300)
    for c, ch in enumerate(space.channels):
        own = dict(per_channel.get(ch) or {})
        bad = set(own) - set(CHANNEL_KEYS)
        if bad:
            raise ConfigError(f"constraints.channels.{ch}: unknown setting(s) {', '.join(sorted(bad))} (known: {', '.join(CHANNEL_KEYS)})")
        _channel_rows(cs, space, c, own, current_totals[c])
        _default_rows(cs, space, c, own, default, share[c], basis, history_share[c] <= 0)
    if cfg.get("period_cap") is not None:
        _period_cap_rows(cs, space, cfg["period_cap"])
    brands = dict(cfg.get("brands") or {})
    if brands:
        _brand_rows(cs, space, brands)
    return cs


def _lp(cs: ConstraintSet, subset: list[Constraint], scale: float, objective: np.ndarray | None = None):
    """A feasible point of ``subset`` (x >= 0), in rupees, or None; with ``objective`` the LP minimizing it."""
    A, lo, hi = cs.rows(subset)
    eq = equality_mask(lo, hi)
    ub_rows, ub_rhs = [A[~eq & np.isfinite(hi)]], [hi[~eq & np.isfinite(hi)]]
    ub_rows.append(-A[~eq & np.isfinite(lo)])
    ub_rhs.append(-lo[~eq & np.isfinite(lo)])
    A_ub, b_ub = np.vstack(ub_rows), np.concatenate(ub_rhs)
    c = np.zeros(cs.n) if objective is None else objective
    res = linprog(
        c, A_ub=A_ub if len(b_ub) else None, b_ub=b_ub / scale if len(b_ub) else None,
        A_eq=A[eq] if eq.any() else None, b_eq=lo[eq] / scale if eq.any() else None,
        bounds=[(0, None)] * cs.n, method="highs",
    )
    return res.x * scale if res.status == 0 else None


def _scale(cs: ConstraintSet) -> float:
    _, lo, hi = cs.rows()
    finite = np.concatenate([np.abs(lo[np.isfinite(lo)]), np.abs(hi[np.isfinite(hi)])])
    finite = finite[finite > 0]
    return float(finite.max()) if len(finite) else 1.0


def check_feasible(cs: ConstraintSet) -> np.ndarray:
    """A feasible point (rupees); raises a one-line :class:`ConfigError` naming the clashing constraints."""
    scale = _scale(cs)
    point = _lp(cs, cs.items, scale)
    if point is not None:
        return point
    kept = list(cs.items)
    for c in list(kept):  # deletion filter: what remains is infeasible, and feasible without any one of its members
        trial = [k for k in kept if k is not c]
        if _lp(cs, trial, scale) is None:
            kept = trial
    names = "; ".join(f"{c.name} ({c.text})" for c in kept)
    raise ConfigError(f"infeasible budget constraints: {names} cannot all hold with spend >= 0; relax one of them")


def project(cs: ConstraintSet, x0: np.ndarray) -> np.ndarray:
    """The feasible point nearest to ``x0`` in the L1 norm (a linear program), rupees."""
    n = cs.n
    scale = _scale(cs)
    # variables [x, t] with t >= |x − x0|: minimize Σ t
    A, lo, hi = cs.rows()
    ext = ConstraintSet(2 * n)
    if len(A):
        ext.items.append(Constraint("rows", "", np.hstack([A, np.zeros((len(A), n))]), lo, hi))
    eye = np.eye(n)
    ext.items.append(Constraint("t>=x-x0", "", np.hstack([-eye, eye]), -x0, np.full(n, np.inf)))
    ext.items.append(Constraint("t>=x0-x", "", np.hstack([eye, eye]), x0, np.full(n, np.inf)))
    point = _lp(ext, ext.items, scale, objective=np.concatenate([np.zeros(n), np.ones(n)]))
    if point is None:
        return check_feasible(cs)
    return np.maximum(point[:n], 0.0)
