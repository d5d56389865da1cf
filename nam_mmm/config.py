"""Typed configs at the edge: the dataclasses that config groups are checked against when Hydra composes.

``conf/model/*.yaml`` and ``conf/loss/*.yaml`` start from the schema stored here (``defaults: [_schema, _self_]``),
so a misspelt or mistyped key in a YAML file or on the command line fails at compose time with Hydra's one-line
reason, and the code inside the package receives these typed objects, never raw dicts. Light on purpose (no
torch, no Lightning): every entry point imports it before composing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from nam_mmm.errors import ConfigError


@dataclass
class ModelSettings:
    """Model hyper-parameters (``conf/model``): media family, network sizes, hierarchy, adstock."""

    name: str = "hill"
    media_response: str = "hill"
    media_kwargs: dict | None = None
    brand_hidden: int = 16
    sku_hidden: int = 8
    mlp_l2: float = 1e-3
    dropout: float = 0.0
    hier_mode: str = "weighted"
    hier_weight: float = 0.7
    learn_adstock: bool = True
    adstock_per_brand: bool = False
    grid_points: int = 33
    input_clamp: float | None = None


@dataclass
class LossConfig:
    """Weights and settings of the loss terms (``conf/loss``).

    Attributes:
        fit: ``mse`` or ``huber`` on the scaled log GMV.
        huber_delta: Huber transition point, in scaled-target units.
        lambda_constraint_start / lambda_constraint_end: constraint weight at epoch 0 and after warm-up.
        constraint_warmup_epochs: epochs of linear annealing from start to end weight.
        lambda_hierarchical: pulls SKU curves to their brand's (weighted) or SKU deviations to 0 (deviation).
        lambda_smooth: penalty on squared second differences of the curves.
        lambda_bounds: penalty on elasticities outside their business bounds.
        lambda_l2: multiplier of the components' own L2 penalties (unconstrained networks).
        lambda_function: function-space ridge: weight of the mean over fitted rows of each feature's squared
            contribution (scaled-target units), summed over features. For a linear effect ``β·z`` of a feature with
            unit second moment it is ``β²``, so it is the ridge penalty of the same design (0 = off; ``auto``: the
            fold's cross-validated ridge penalty, resolved per fold by :func:`nam_mmm.training.shrinkage.ridge_shrinkage`
            before the loss is built).
        lambda_media: function-space ridge on the media channels only, added to ``lambda_function``: the weight
            of the mean over fitted rows of each channel's squared contribution. Media curves start at 0 at zero
            spend, so this is a prior that a channel does nothing unless the fit asks for it (the half-normal
            media priors of Bayesian MMMs); national spend that moves with the season otherwise lets media
            absorb seasonality (0 = off; ``cv``: chosen from ``lambda_media_grid`` by a forecast inside the first
            fold's training window, :mod:`nam_mmm.training.selection`).
        lambda_media_grid: the penalties ``lambda_media: cv`` chooses from.
        lambda_media_tolerance: ``cv`` takes the largest penalty whose inner forecast error is within this
            relative margin of the best one.
        violation_tol: a grid step counts as a violation when it goes the wrong way by more than this.
    """

    fit: str = "mse"
    huber_delta: float = 1.0
    lambda_constraint_start: float = 0.1
    lambda_constraint_end: float = 1.0
    constraint_warmup_epochs: int = 50
    lambda_hierarchical: float = 0.05
    lambda_smooth: float = 0.01
    lambda_bounds: float = 1.0
    lambda_l2: float = 1.0
    lambda_function: Any = 0.0  # a number >= 0 or 'auto' (checked in __post_init__)
    lambda_media: Any = 0.0  # a number >= 0 or 'cv' (checked in __post_init__)
    lambda_media_grid: list[float] = field(default_factory=lambda: [0.0, 0.1, 0.3])
    lambda_media_tolerance: float = 0.05
    violation_tol: float = 1e-6

    def __post_init__(self) -> None:
        if isinstance(self.lambda_function, str) and self.lambda_function != "auto":
            raise ConfigError(f"loss.lambda_function must be a number >= 0 or auto, got {self.lambda_function!r}")
        if isinstance(self.lambda_media, str):
            if self.lambda_media != "cv":
                raise ConfigError(f"loss.lambda_media must be a number >= 0 or cv, got {self.lambda_media!r}")
        elif self.lambda_media < 0:
            raise ConfigError(f"loss.lambda_media must be >= 0, got {self.lambda_media!r}")
        if not self.lambda_media_grid or any(float(g) < 0 for g in self.lambda_media_grid):
            raise ConfigError(f"loss.lambda_media_grid must be a non-empty list of numbers >= 0, got {list(self.lambda_media_grid)!r}")
        if self.lambda_media_tolerance < 0:
            raise ConfigError(f"loss.lambda_media_tolerance must be >= 0, got {self.lambda_media_tolerance!r}")

    def constraint_weight(self, epoch: int) -> float:
        if self.constraint_warmup_epochs <= 0:
            return self.lambda_constraint_end
        frac = min(max(epoch, 0) / self.constraint_warmup_epochs, 1.0)
        return self.lambda_constraint_start + frac * (self.lambda_constraint_end - self.lambda_constraint_start)


def register_configs() -> None:
    """Store the schemas in Hydra's ConfigStore (idempotent) as ``model/_schema`` and ``loss/_schema``."""
    from hydra.core.config_store import ConfigStore

    cs = ConfigStore.instance()
    cs.store(group="model", name="_schema", node=ModelSettings)
    cs.store(group="loss", name="_schema", node=LossConfig)
