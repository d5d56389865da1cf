"""Optimization strategies (seed §6.6): which parameters move at each step.

* ``joint``: every parameter, one optimizer.
* ``coordinate``: one feature at a time (its brand and SKU curves; for media also its adstock decay), fitting
  the residual of the others, ``inner_iterations`` steps each; the biases are a unit of their own.
* ``block``: feature blocks (pricing, marketing, brand health, temporal; derived from roles unless given)
  updated jointly against the residual of the rest.
* ``hybrid``: phases coordinate → block → joint over shares of the epochs (seed: 20 / 30 / 50 %).

A *unit* is a named set of features. While a unit is optimized no parameter outside it changes, not even
through optimizer momentum or weight decay: each unit has its own optimizer, gradients outside the unit
are dropped, and entries of shared tensors that belong to other features are restored after the step.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from nam_mmm.errors import ConfigError

BIAS_UNIT = "bias"
ALL_UNIT = "all"
DEFAULT_BLOCKS = {
    "pricing": ["own_price", "cross_price", "discount", "promo", "distribution"],
    "marketing": ["media"],
    "brand_health": ["brand_health"],
    "temporal": ["seasonality", "trend", "control"],
}
DEFAULT_BLOCKS_ROLES = {role for roles in DEFAULT_BLOCKS.values() for role in roles}


PHASE_CODES = {"coordinate": 0, "block": 1, "joint": 2}  # logged as train/phase


@dataclass(frozen=True)
class Phase:
    """A stretch of epochs with one kind of update. ``first_epoch`` inclusive, ``last_epoch`` exclusive."""

    kind: str  # coordinate | block | joint
    first_epoch: int
    last_epoch: int


@dataclass
class Strategy:
    """Resolved strategy for one model.

    Attributes:
        name: ``joint``, ``coordinate``, ``block`` or ``hybrid``.
        phases: the phases in order (the last one runs until training stops).
        units: unit name → feature names (``all`` = every parameter, ``bias`` = the biases).
        inner_iterations: steps per unit per epoch in coordinate and block phases.
    """

    name: str
    phases: list[Phase]
    units: dict[str, list[str]]
    inner_iterations: int = 1
    coordinate_units: list[str] = field(default_factory=list)
    block_units: list[str] = field(default_factory=list)

    def phase_at(self, epoch: int) -> Phase:
        for p in self.phases:
            if p.first_epoch <= epoch < p.last_epoch:
                return p
        return self.phases[-1]

    def units_at(self, epoch: int) -> list[str]:
        """The units optimized, in order, during one epoch."""
        kind = self.phase_at(epoch).kind
        if kind == "coordinate":
            return self.coordinate_units
        if kind == "block":
            return self.block_units
        return [ALL_UNIT]

    @property
    def warm_epochs(self) -> int:
        """Epochs before the last phase starts (early stopping should not end training before them)."""
        return self.phases[-1].first_epoch

    @property
    def phase_names(self) -> list[str]:
        return [p.kind for p in self.phases]


def _blocks(slots: list, blocks: dict[str, list[str]]) -> list[tuple[str, list[str]]]:
    """(block unit name, its features) in the order of ``blocks``; features no block claims form ``block:other``."""
    names = [s.name for s in slots]
    roles = {s.name: s.role for s in slots}
    out: list[tuple[str, list[str]]] = []
    claimed: set[str] = set()
    known = set(names) | set(roles.values()) | set(DEFAULT_BLOCKS_ROLES)
    for block, members in blocks.items():
        unknown = [m for m in members if m not in known]
        if unknown:
            raise ConfigError(f"strategy.blocks.{block}: {', '.join(unknown)} is neither a feature nor a role of this model")
        feats = [n for n in names if n in members or roles[n] in members]
        overlap = claimed.intersection(feats)
        if overlap:
            raise ConfigError(f"strategy.blocks: feature(s) {', '.join(sorted(overlap))} in more than one block")
        claimed.update(feats)
        if feats:
            out.append((f"block:{block}", feats))
    rest = [n for n in names if n not in claimed]
    if rest:
        out.append(("block:other", rest))
    return out


def _phases(name: str, max_epochs: int, split: list[float] | None) -> list[Phase]:
    """One phase over every epoch, or hybrid's coordinate → block → joint over shares of ``max_epochs``."""
    if name != "hybrid":
        return [Phase(name, 0, max_epochs)]
    shares = list(split or [0.2, 0.3, 0.5])
    if len(shares) != 3 or any(s < 0 for s in shares) or abs(sum(shares) - 1) > 1e-6:
        raise ConfigError(f"strategy.split must be three non-negative shares summing to 1, got {shares}")
    b1 = int(round(shares[0] * max_epochs))
    b2 = b1 + int(round(shares[1] * max_epochs))
    phases = [Phase("coordinate", 0, b1), Phase("block", b1, b2), Phase("joint", b2, max(max_epochs, b2 + 1))]
    return [p for p in phases if p.last_epoch > p.first_epoch or p.kind == "joint"]


def build_strategy(
    name: str,
    slots: list,
    max_epochs: int,
    inner_iterations: int = 1,
    split: list[float] | None = None,
    blocks: dict[str, list[str]] | None = None,
) -> Strategy:
    """Resolve a strategy for a model's feature slots.

    Args:
        name: ``joint`` | ``coordinate`` | ``block`` | ``hybrid``.
        slots: the model's FeatureSlot list (names and roles).
        max_epochs: training length; hybrid phase boundaries are shares of it.
        inner_iterations: steps per unit per epoch in coordinate/block phases.
        split: hybrid shares of (coordinate, block, joint) epochs, summing to 1 (seed: 0.2, 0.3, 0.5).
        blocks: block name → roles or feature names; default :data:`DEFAULT_BLOCKS` (by role).
    """
    if name not in ("joint", "coordinate", "block", "hybrid"):
        raise ConfigError(f"strategy must be joint, coordinate, block or hybrid, got {name!r}")
    if inner_iterations < 1:
        raise ConfigError("strategy.inner_iterations must be >= 1")
    names = [s.name for s in slots]
    units: dict[str, list[str]] = {ALL_UNIT: names, BIAS_UNIT: []}
    coordinate_units = [f"feature:{n}" for n in names] + [BIAS_UNIT]
    for n in names:
        units[f"feature:{n}"] = [n]
    block_units = []
    for unit, feats in _blocks(slots, blocks or DEFAULT_BLOCKS):
        units[unit] = feats
        block_units.append(unit)
    block_units.append(BIAS_UNIT)
    return Strategy(name, _phases(name, max_epochs, split), units, inner_iterations, coordinate_units, block_units)
