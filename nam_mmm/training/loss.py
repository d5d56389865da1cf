"""The composite loss (seed §5): fit + constraint + hierarchical + smoothness + elasticity bounds + L2.

All shape terms are computed on the model's curve grid (every SKU's combined function on a grid of inputs,
including values outside the training range), so they cost the same whatever the number of rows.
"""

from __future__ import annotations


import torch
from torch.nn import functional as F

from nam_mmm.config import LossConfig
from nam_mmm.models.nam import HierarchicalNAM


def fit_loss(pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor, kind: str = "mse", delta: float = 1.0) -> torch.Tensor:
    """Weighted mean of squared (or Huber) errors; rows with weight 0 do not count."""
    if kind == "mse":
        err = (pred - target) ** 2
    elif kind == "huber":
        err = F.huber_loss(pred, target, reduction="none", delta=delta)
    else:
        raise ValueError(f"loss.fit must be mse or huber, got {kind!r}")
    return (err * weight).sum() / weight.sum().clamp_min(1.0)


def grid_elasticity(model: HierarchicalNAM, combined: torch.Tensor, grid: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
    """d log GMV / d log x between grid points, (S, G−1, len(features)), for curve columns of log-transformed
    scalar features (``features``: the global feature index of each column of ``combined``)."""
    dz = grid[1:, features] - grid[:-1, features]
    df = combined[:, 1:, :] - combined[:, :-1, :]
    return model.y_scale * df / dz / model.scale[features]


def shape_terms(model: HierarchicalNAM, cfg: LossConfig, rates: bool = True, groups: list[int] | None = None) -> dict[str, torch.Tensor]:
    """Constraint, hierarchical, smoothness and bounds penalties from the curve grid; with ``rates`` also the
    share of grid steps violating monotonicity, concavity and bounds (monitors, not differentiated).

    Every penalty is a sum over features with a fixed normalization, so with ``groups`` (the component groups a
    strategy is updating) the result differs from the full one only by the constant part of the frozen
    features: the gradients are the same at a fraction of the cost. Rates need all groups.
    """
    c = model.curves(groups=groups)
    combined, grid, feats = c["combined"], c["grid"], c["features"]
    n_s, n_g, n_f = combined.shape[0], combined.shape[1], len(model.slots)
    d1 = combined[:, 1:, :] - combined[:, :-1, :]
    d2 = d1[:, 1:, :] - d1[:, :-1, :]
    direction, concave = model.direction[feats], model.concave[feats]
    wrong_way = F.relu(-direction * d1)  # (S, G-1, F), 0 where direction is 0
    convex = F.relu(d2) * concave
    n_dir, n_conc = model.n_directed, model.n_concave
    constraint = wrong_way.sum() / max(n_dir, 1) / n_s + convex.sum() / max(n_conc, 1) / n_s
    if model.hier_mode == "weighted":
        gap = c["sku"] - c["brand"][model.sku_brand]
    else:
        gap = c["sku"]
    hier = gap.pow(2).sum() / (n_s * n_g * n_f)
    smooth = d2.pow(2).sum() / (n_s * max(n_g - 2, 1) * n_f) * (n_g - 2) ** 2  # scale-free in the grid size
    terms = {"constraint": constraint, "hierarchical": hier, "smoothness": smooth}
    zero = combined.new_zeros(())
    bounded = model.is_bounded[feats]
    el = None
    if model.n_bounded and bool(bounded.any()):
        cols = torch.nonzero(bounded).flatten()
        j = feats[cols]
        el = grid_elasticity(model, combined[:, :, cols], grid, j)
        lo, hi = model.bound_lo[j], model.bound_hi[j]
        terms["bounds"] = (F.relu(el - hi) ** 2 + F.relu(lo - el) ** 2).sum() / (n_s * (n_g - 1) * model.n_bounded)
    else:
        terms["bounds"] = zero
    if rates and groups is None:
        with torch.no_grad():
            tol = cfg.violation_tol
            terms["rate_monotone"] = (-direction * d1 > tol)[:, :, direction != 0].to(d1.dtype).mean() if n_dir else zero
            terms["rate_concave"] = (d2 > tol)[:, :, concave].to(d1.dtype).mean() if n_conc else zero
            terms["rate_bounds"] = ((el > hi + tol) | (el < lo - tol)).to(d1.dtype).mean() if el is not None else zero
    return terms


class CompositeLoss:
    """Callable computing every term; ``total`` is what the optimizer minimizes."""

    def __init__(self, config: LossConfig | dict | None = None) -> None:
        self.config = config if isinstance(config, LossConfig) else LossConfig(**(config or {}))

    def __call__(
        self, model: HierarchicalNAM, out: dict, batch: dict, epoch: int, rates: bool = True, groups: list[int] | None = None
    ) -> dict[str, torch.Tensor]:
        """All terms; ``groups`` limits the shape penalties to the component groups being updated (same
        gradients, see :func:`shape_terms`), ``rates`` adds the violation monitors."""
        cfg = self.config
        if isinstance(cfg.lambda_function, str):
            raise ValueError("loss.lambda_function=auto must be resolved per fold before training (ridge_shrinkage)")
        if isinstance(cfg.lambda_media, str):
            raise ValueError("loss.lambda_media=cv must be resolved before training (nam_mmm.training.selection)")
        target = (batch["log_gmv"] - model.y_center[batch["sku"]]) / model.y_scale
        terms = {"fit": fit_loss(out["pred"], target, batch["weight"], cfg.fit, cfg.huber_delta)}
        terms.update(shape_terms(model, cfg, rates, groups))
        terms["l2"] = model.l2_penalty()
        w = batch["weight"]
        sq = (out["contrib"] ** 2) * w[:, None]
        terms["function"] = sq.sum() / w.sum().clamp_min(1.0)
        terms["media_function"] = sq[:, model.n_scalar :].sum() / w.sum().clamp_min(1.0)
        lam_c = cfg.constraint_weight(epoch)
        terms["lambda_constraint"] = torch.tensor(lam_c)
        terms["total"] = (
            terms["fit"]
            + lam_c * terms["constraint"]
            + cfg.lambda_hierarchical * terms["hierarchical"]
            + cfg.lambda_smooth * terms["smoothness"]
            + cfg.lambda_bounds * terms["bounds"]
            + cfg.lambda_l2 * terms["l2"]
            + cfg.lambda_function * terms["function"]
            + cfg.lambda_media * terms["media_function"]
        )
        return terms
