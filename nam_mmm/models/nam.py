"""The hierarchical neural additive model (seed §4.3).

``log GMV = y_center[sku] + y_scale · (bias_brand[b] + bias_sku[s] + Σ_j f_j(z_j))`` where each feature
function combines a brand-level and a SKU-level shape component:

* ``weighted`` (seed): ``f_j = w · f_j^brand + (1 − w) · f_j^sku`` with ``w = hier_weight`` (default 0.7);
* ``deviation``: ``f_j = f_j^brand + f_j^sku`` (the SKU part is a deviation, pulled to 0 by the hierarchical loss).

Both keep the shape guarantee: a non-negative combination of monotone (concave) functions is monotone (concave).

Inputs arrive in raw units (rupees, fractions, NPS points) and are scaled inside the model with the fold's
training statistics (buffers), so predictions are differentiable with respect to raw inputs. Media enter as
lag stacks of raw spend; geometric adstock (fixed, or learned per channel / per brand × channel) turns them
into carry-over, in multiples of the channel's mean training spend.

Parameters live in stacked tensors, one pair of components (brand, SKU) per group of features sharing a
component type; the forward pass loops over those few groups only — never over SKUs, brands or features.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from nam_mmm.errors import ConfigError
from nam_mmm.models.shapes import build_shape


@dataclass
class FeatureSlot:
    """One model input and its shape component.

    Attributes:
        name: feature name (a channel name for media).
        role: the feature's role (``own_price``, ``media`` …).
        component: registered shape component name.
        brand_kwargs / sku_kwargs: hyper-parameters of the brand-level / SKU-level component.
        direction: +1 increasing, −1 decreasing, 0 unconstrained: what the penalties and monitors check.
        concave: whether concavity is checked.
        bounds: elasticity bounds ``[lo, hi]`` (log-transformed features only) or None.
        elasticity: whether an elasticity in raw units is reported.
    """

    name: str
    role: str
    component: str
    brand_kwargs: dict = field(default_factory=dict)
    sku_kwargs: dict = field(default_factory=dict)
    direction: int = 0
    concave: bool = False
    bounds: list[float] | None = None
    elasticity: bool = False


class HierarchicalNAM(nn.Module):
    """Brand → SKU hierarchical NAM over scalar features and media channels.

    Args:
        feature_slots: non-media features, in the column order of the ``x`` input.
        media_slots: one slot per media channel, in the order of the ``media`` input.
        n_brands, n_skus: sizes of the hierarchy; ``sku_brand`` (S,) maps each SKU to its brand.
        scaler: ``FittedScaler.to_dict()`` of the fold (log mask, centres, scales, media scale, y centre/scale).
        hier_mode: ``weighted`` or ``deviation``; ``hier_weight``: brand weight w in weighted mode.
        adstock_decay: initial (or fixed) geometric decay per channel, in (0, 1).
        learn_adstock: learn the decays (else they stay fixed); ``adstock_per_brand``: one decay per brand × channel.
        grid_points: points of the curve grid used by penalties and monitors.
        grid_halfwidth: scalar-feature grid spans ±this many training standard deviations.
        input_clamp: scalar inputs are clamped to their observed training range widened by this share of the
            range on each side (``None`` = no clamp): beyond it every curve stays flat instead of extrapolating a
            linear tail or trend without bound. Media are never clamped (their curves saturate by construction).
    """

    def __init__(
        self,
        feature_slots: list[FeatureSlot],
        media_slots: list[FeatureSlot],
        n_brands: int,
        n_skus: int,
        sku_brand: list[int],
        scaler: dict,
        hier_mode: str = "weighted",
        hier_weight: float = 0.7,
        adstock_decay: list[float] | None = None,
        learn_adstock: bool = True,
        adstock_per_brand: bool = False,
        grid_points: int = 33,
        grid_halfwidth: float = 3.0,
        input_clamp: float | None = None,
    ) -> None:
        super().__init__()
        if hier_mode not in ("weighted", "deviation"):
            raise ConfigError(f"hier_mode must be weighted or deviation, got {hier_mode!r}")
        if not 0.0 <= hier_weight <= 1.0:
            raise ConfigError(f"hier_weight must be in [0, 1], got {hier_weight}")
        feature_slots = [s if isinstance(s, FeatureSlot) else FeatureSlot(**s) for s in feature_slots]
        media_slots = [s if isinstance(s, FeatureSlot) else FeatureSlot(**s) for s in media_slots]
        self.config = {
            "feature_slots": [asdict(s) for s in feature_slots],
            "media_slots": [asdict(s) for s in media_slots],
            "n_brands": n_brands,
            "n_skus": n_skus,
            "sku_brand": [int(b) for b in sku_brand],
            "scaler": scaler,
            "hier_mode": hier_mode,
            "hier_weight": hier_weight,
            "adstock_decay": None if adstock_decay is None else [float(d) for d in adstock_decay],
            "learn_adstock": learn_adstock,
            "adstock_per_brand": adstock_per_brand,
            "grid_points": grid_points,
            "grid_halfwidth": grid_halfwidth,
        }
        if input_clamp is not None:  # only then: saved configs of unclamped models stay as they were
            self.config["input_clamp"] = float(input_clamp)
        self.slots = feature_slots + media_slots
        self.n_scalar, self.n_media = len(feature_slots), len(media_slots)
        self.n_brands, self.n_skus = n_brands, n_skus
        self.hier_mode, self.hier_weight = hier_mode, float(hier_weight)
        if len(sku_brand) != n_skus:
            raise ConfigError(f"sku_brand has {len(sku_brand)} entries for {n_skus} SKUs")
        if len(scaler["feature_names"]) != self.n_scalar:
            raise ConfigError("scaler and feature slots disagree on the number of features")
        self.register_buffer("sku_brand", torch.as_tensor(sku_brand, dtype=torch.long))
        self._scaler_buffers(scaler, input_clamp)
        self._adstock_parameters(adstock_decay, learn_adstock, adstock_per_brand)
        self.bias_brand = nn.Parameter(torch.zeros(n_brands))
        self.bias_sku = nn.Parameter(torch.zeros(n_skus))
        self._component_groups()
        self.grid_points, self.grid_halfwidth = grid_points, grid_halfwidth
        self._constraint_buffers(feature_slots)

    def _scaler_buffers(self, scaler: dict, input_clamp: float | None) -> None:
        """The fold's scaling statistics as buffers (they travel with the weights), and the input clamp."""
        dtype = torch.get_default_dtype()
        self.register_buffer("log_mask", torch.as_tensor(scaler["log_mask"], dtype=torch.bool))
        self.register_buffer("center", torch.as_tensor(scaler["center"], dtype=dtype).reshape(self.n_skus, self.n_scalar))
        self.register_buffer("scale", torch.as_tensor(scaler["scale"], dtype=dtype))
        self.register_buffer("media_scale", torch.as_tensor(scaler["media_scale"], dtype=dtype).reshape(self.n_media))
        self.register_buffer("y_center", torch.as_tensor(scaler["y_center"], dtype=dtype))
        self.register_buffer("y_scale", torch.as_tensor(float(scaler["y_scale"]), dtype=dtype))
        media_max = scaler.get("media_max") or [8.0] * self.n_media
        self.register_buffer("media_max", torch.as_tensor(media_max, dtype=dtype).reshape(self.n_media))
        self.clamp_inputs = input_clamp is not None and scaler.get("z_min") is not None
        if self.clamp_inputs:
            if input_clamp < 0:
                raise ConfigError(f"input_clamp must be >= 0 (a share of the training range), got {input_clamp}")
            z_min = torch.as_tensor(scaler["z_min"], dtype=dtype).reshape(self.n_scalar)
            z_max = torch.as_tensor(scaler["z_max"], dtype=dtype).reshape(self.n_scalar)
            margin = float(input_clamp) * (z_max - z_min)
            self.register_buffer("z_lo", z_min - margin)
            self.register_buffer("z_hi", z_max + margin)

    def _adstock_parameters(self, adstock_decay: list[float] | None, learn: bool, per_brand: bool) -> None:
        """Adstock decay = sigmoid(theta), per channel (or per brand × channel); a parameter when learned."""
        decay0 = torch.as_tensor(adstock_decay if adstock_decay is not None else [0.5] * self.n_media, dtype=torch.get_default_dtype())
        if decay0.numel() != self.n_media or ((decay0 <= 0) | (decay0 >= 1)).any():
            raise ConfigError("adstock_decay needs one value in (0, 1) per channel")
        theta = torch.logit(decay0).reshape(1, self.n_media)
        if per_brand:
            theta = theta.expand(self.n_brands, self.n_media).clone()
        self.adstock_per_brand = per_brand
        if learn:
            self.adstock_logit = nn.Parameter(theta)
        else:
            self.register_buffer("adstock_logit", theta)

    def _component_groups(self) -> None:
        """One (brand, SKU) pair of shape components per group of features sharing a component and its settings."""
        groups: dict[str, list[int]] = {}
        for j, s in enumerate(self.slots):
            key = json.dumps([s.component, s.brand_kwargs, s.sku_kwargs], sort_keys=True)
            groups.setdefault(key, []).append(j)
        self.brand_parts = nn.ModuleList()
        self.sku_parts = nn.ModuleList()
        order = []
        for g, idx in enumerate(groups.values()):
            s = self.slots[idx[0]]
            self.brand_parts.append(build_shape(s.component, self.n_brands, len(idx), **s.brand_kwargs))
            self.sku_parts.append(build_shape(s.component, self.n_skus, len(idx), **s.sku_kwargs))
            self.register_buffer(f"group_idx_{g}", torch.as_tensor(idx, dtype=torch.long))
            order += idx
        self.n_groups = len(groups)
        self.register_buffer("unpermute", torch.argsort(torch.as_tensor(order, dtype=torch.long)))

    def _constraint_buffers(self, feature_slots: list[FeatureSlot]) -> None:
        """Per-feature constraint metadata (F,) for the penalties and monitors."""
        dtype = torch.get_default_dtype()
        self.register_buffer("direction", torch.as_tensor([s.direction for s in self.slots], dtype=dtype))
        self.register_buffer("concave", torch.as_tensor([s.concave for s in self.slots], dtype=torch.bool))
        self.n_directed = sum(1 for s in self.slots if s.direction != 0)
        self.n_concave = sum(1 for s in self.slots if s.concave)
        self.n_bounded = sum(1 for s in feature_slots if s.bounds is not None)
        self.register_buffer("is_bounded", torch.as_tensor([s.bounds is not None for s in self.slots], dtype=torch.bool))
        self.register_buffer("bound_lo", torch.as_tensor([s.bounds[0] if s.bounds else 0.0 for s in self.slots], dtype=dtype))
        self.register_buffer("bound_hi", torch.as_tensor([s.bounds[1] if s.bounds else 0.0 for s in self.slots], dtype=dtype))

    # ------------------------------------------------------------------ inputs
    @property
    def feature_names(self) -> list[str]:
        return [s.name for s in self.slots]

    def adstock_decay(self) -> torch.Tensor:
        """Decay per period, (C,) or (B, C) when per brand."""
        d = torch.sigmoid(self.adstock_logit)
        return d if self.adstock_per_brand else d[0]

    def adstock(self, media: torch.Tensor, brand: torch.Tensor) -> torch.Tensor:
        """Geometric adstock of raw lag stacks (N, C, L+1) → (N, C) in multiples of mean training spend."""
        lags = torch.arange(media.shape[-1], dtype=media.dtype, device=media.device)
        decay = torch.sigmoid(self.adstock_logit)  # (1 or B, C)
        weights = decay.unsqueeze(-1) ** lags  # (1 or B, C, L+1)
        w = weights[brand] if self.adstock_per_brand else weights[0]
        return (media * w).sum(-1) / self.media_scale

    def scale_inputs(self, x: torch.Tensor, media: torch.Tensor, sku: torch.Tensor, brand: torch.Tensor) -> torch.Tensor:
        """Raw inputs → model inputs z (N, F_scalar + C)."""
        safe = torch.where(self.log_mask, x, torch.ones_like(x))
        t = torch.where(self.log_mask, torch.log(safe), x)
        z = (t - self.center[sku]) / self.scale
        if self.clamp_inputs:
            z = torch.minimum(torch.maximum(z, self.z_lo), self.z_hi)
        if self.n_media:
            z = torch.cat([z, self.adstock(media, brand)], dim=1)
        return z

    # ------------------------------------------------------------------ forward
    def _combine(self, brand_out: torch.Tensor, sku_out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.hier_mode == "weighted":
            return self.hier_weight * brand_out, (1.0 - self.hier_weight) * sku_out
        return brand_out, sku_out

    def _groups(self):
        for g in range(self.n_groups):
            yield self.brand_parts[g], self.sku_parts[g], getattr(self, f"group_idx_{g}")

    def forward(self, x: torch.Tensor, media: torch.Tensor, brand: torch.Tensor, sku: torch.Tensor) -> dict[str, torch.Tensor]:
        """Predict log GMV for a batch of rows.

        Returns a dict: ``log_gmv`` (N,) in log rupees; ``pred`` (N,) on the scaled target; ``brand_part``,
        ``sku_part`` and ``contrib`` (N, F) per-feature contributions on the scaled target (multiply by
        ``y_scale`` for log-GMV units); ``z`` (N, F) the model inputs.
        """
        z = self.scale_inputs(x, media, sku, brand)
        b_out, s_out = [], []
        for brand_mod, sku_mod, idx in self._groups():
            zg = z[:, idx]
            b_out.append(brand_mod(zg, brand))
            s_out.append(sku_mod(zg, sku))
        brand_part, sku_part = self._combine(torch.cat(b_out, 1)[:, self.unpermute], torch.cat(s_out, 1)[:, self.unpermute])
        contrib = brand_part + sku_part
        pred = self.bias_brand[brand] + self.bias_sku[sku] + contrib.sum(1)
        return {
            "pred": pred,
            "log_gmv": self.y_center[sku] + self.y_scale * pred,
            "brand_part": brand_part,
            "sku_part": sku_part,
            "contrib": contrib,
            "z": z,
        }

    # ------------------------------------------------------------------ curves
    def grid(self) -> torch.Tensor:
        """(G, F) evaluation grid: ±grid_halfwidth sd for scalar features, [0, media_max] for media."""
        g = self.grid_points
        dtype = self.scale.dtype
        scalar = torch.linspace(-self.grid_halfwidth, self.grid_halfwidth, g, dtype=dtype).unsqueeze(1).expand(g, self.n_scalar)
        unit = torch.linspace(0.0, 1.0, g, dtype=dtype).unsqueeze(1)
        media = unit * self.media_max.unsqueeze(0)
        return torch.cat([scalar, media], dim=1)

    def curves(self, grid: torch.Tensor | None = None, groups: list[int] | None = None) -> dict[str, torch.Tensor]:
        """Every feature function on a grid: ``brand`` (B, G, F), ``sku`` (S, G, F) and the per-SKU
        ``combined`` curve (S, G, F) the model uses, all on the scaled target; ``grid`` (G, F_all).

        ``groups`` restricts the evaluation to some component groups (the features a strategy is updating);
        ``features`` (F,) then gives the feature index of each curve column (all features, in order, by default).
        """
        grid = self.grid() if grid is None else grid
        selected = range(self.n_groups) if groups is None else groups
        b_out, s_out, feats = [], [], []
        for g in selected:
            idx = getattr(self, f"group_idx_{g}")
            b_out.append(self.brand_parts[g].grid(grid[:, idx]))
            s_out.append(self.sku_parts[g].grid(grid[:, idx]))
            feats.append(idx)
        if groups is None:
            brand = torch.cat(b_out, 2)[:, :, self.unpermute]
            sku = torch.cat(s_out, 2)[:, :, self.unpermute]
            features = torch.arange(len(self.slots), device=grid.device)
        elif feats:
            brand, sku, features = torch.cat(b_out, 2), torch.cat(s_out, 2), torch.cat(feats)
        else:
            brand = grid.new_zeros((self.n_brands, grid.shape[0], 0))
            sku = grid.new_zeros((self.n_skus, grid.shape[0], 0))
            features = torch.zeros(0, dtype=torch.long, device=grid.device)
        b_part, s_part = self._combine(brand[self.sku_brand], sku)
        return {"grid": grid, "brand": brand, "sku": sku, "combined": b_part + s_part, "features": features}

    def groups_of(self, features: list[str]) -> list[int]:
        """Indices of the component groups holding any of these features."""
        wanted = {j for j, s in enumerate(self.slots) if s.name in set(features)}
        return [g for g in range(self.n_groups) if any(int(j) in wanted for j in getattr(self, f"group_idx_{g}").tolist())]

    def parameter_masks(self, features: list[str], include_bias: bool) -> list[tuple[nn.Parameter, torch.Tensor | None]]:
        """The parameters of a set of features: ``(parameter, mask)`` pairs, mask ``None`` when the whole
        tensor belongs to the set, else a boolean tensor of the parameter's shape marking its entries.

        Covers the brand and SKU curves of the features, the adstock decays of media features, and the
        biases when ``include_bias``. Parameters not returned belong to other features.
        """
        wanted = {j for j, s in enumerate(self.slots) if s.name in set(features)}
        unknown = set(features) - set(self.feature_names)
        if unknown:
            raise ConfigError(f"unknown feature(s) in a parameter block: {', '.join(sorted(unknown))}")
        out: list[tuple[nn.Parameter, torch.Tensor | None]] = []
        for brand_mod, sku_mod, idx in self._groups():
            sel = torch.as_tensor([int(j) in wanted for j in idx.tolist()], dtype=torch.bool)
            if not sel.any():
                continue
            for mod in (brand_mod, sku_mod):
                for p in mod.parameters():  # (U, F_g, K): features on dim 1
                    out.append((p, None if sel.all() else sel.view(1, -1, 1).expand_as(p).clone()))
        if isinstance(self.adstock_logit, nn.Parameter):
            sel = torch.as_tensor([self.n_scalar + c in wanted for c in range(self.n_media)], dtype=torch.bool)
            if sel.any():
                p = self.adstock_logit
                out.append((p, None if sel.all() else sel.view(1, -1).expand_as(p).clone()))
        if include_bias:
            out += [(self.bias_brand, None), (self.bias_sku, None)]
        return out

    def l2_penalty(self) -> torch.Tensor:
        total = torch.zeros((), dtype=self.scale.dtype)
        for mod in [*self.brand_parts, *self.sku_parts]:
            total = total + mod.l2_penalty()
        return total

    # ------------------------------------------------------------------ persistence
    def to_dict(self) -> dict:
        """JSON-able constructor arguments (weights travel separately in ``state_dict``)."""
        return json.loads(json.dumps(self.config))

    @classmethod
    def from_dict(cls, config: dict, state_dict: dict | None = None) -> HierarchicalNAM:
        model = cls(**config)
        if state_dict is not None:
            model.load_state_dict(state_dict)
        return model
