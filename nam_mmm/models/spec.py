"""From feature roles and constraint tables to feature slots (which shape component each feature gets).

The constraint table (``conf/constraints``) maps each role to a direction (increasing / decreasing / none),
concavity, elasticity bounds and optionally a fixed component. In ``hard`` mode the shape is guaranteed by
construction (monotone or concave components); in ``soft`` mode the features get unconstrained networks and
only the penalties push them towards the shape (the seed's behaviour, kept for comparison). The media family
(``hill``, ``beta_gamma``, ``exponential`` or the ``concave_increasing`` network) comes from the model config.

What each component is passed comes from its class in :data:`~nam_mmm.models.shapes.REGISTRY`, never from
its name here: ``has_hidden_units`` → ``hidden``, ``takes_dropout`` → ``dropout``, ``takes_l2`` → ``l2``, and
``soft_fallback`` → the component used instead in soft mode. The only names below are the defaults a rule
without an explicit ``component`` resolves to.
"""

from __future__ import annotations

from nam_mmm.errors import ConfigError
from nam_mmm.models.nam import FeatureSlot
from nam_mmm.models.shapes import REGISTRY, ShapeFunction

DIRECTIONS = {"increasing": 1, "decreasing": -1, "none": 0}


def _registered(name: str, what: str, where: str = "") -> type[ShapeFunction]:
    if name not in REGISTRY:
        raise ConfigError(f"{where}unknown {what} '{name}' (registered: {', '.join(sorted(REGISTRY))})")
    return REGISTRY[name]


def _soft(component: str) -> str:
    """The component used in soft mode in place of ``component`` (its declared ``soft_fallback``, if any)."""
    fallback = REGISTRY[component].soft_fallback
    if fallback is None:
        return component
    _registered(fallback, f"soft_fallback of '{component}'")
    return fallback


def _component_for(rule: dict, mode: str, media_response: str | None) -> str:
    if rule.get("component"):  # an explicit component is used as it is, in both modes
        return rule["component"]
    direction, concave = rule.get("direction", "none"), bool(rule.get("concave", False))
    if media_response is not None:  # media channels
        component = media_response
    elif direction == "none":
        component = "mlp"
    elif concave:
        component = "concave_increasing"
    else:
        component = "monotone_increasing" if direction == "increasing" else "monotone_decreasing"
    return _soft(component) if mode == "soft" else component


def _kwargs(cls: type[ShapeFunction], hidden: int, extra: dict, dropout: float = 0.0) -> dict:
    kw = dict(extra)
    if cls.has_hidden_units:
        kw.setdefault("hidden", hidden)
    if cls.takes_dropout and dropout > 0:  # only then: saved configs of dropout-free models stay as they were
        kw.setdefault("dropout", dropout)
    return kw


def _slot(
    name: str, role: str, rules: dict, mode: str, media_response: str | None, media_kwargs: dict | None,
    hidden: tuple[int, int], mlp_l2: float, dropout: float, log_input: bool, elasticity: bool,
) -> FeatureSlot:
    """One feature's slot from its role's rule; ``media_response`` is None for a non-media feature and
    ``hidden`` the (brand, SKU) hidden units."""
    if role not in rules:
        raise ConfigError(f"feature '{name}': role '{role}' has no entry in the constraints table")
    rule = dict(rules[role])
    direction = rule.get("direction", "none")
    if direction not in DIRECTIONS:
        raise ConfigError(f"constraints.roles.{role}.direction must be one of {list(DIRECTIONS)}, got {direction!r}")
    comp = _component_for(rule, mode, media_response)
    cls = _registered(comp, "shape component", f"constraints.roles.{role}.component: ")
    extra = dict(media_kwargs or {}) if media_response is not None and comp == media_response else {}
    if cls.takes_l2:
        extra.setdefault("l2", mlp_l2)
    bounds = rule.get("bounds")
    if bounds is not None and (len(bounds) != 2 or bounds[0] > bounds[1]):
        raise ConfigError(f"constraints.roles.{role}.bounds must be [lo, hi] with lo <= hi, got {bounds}")
    return FeatureSlot(
        name=name,
        role=role,
        component=comp,
        brand_kwargs=_kwargs(cls, hidden[0], extra, dropout),
        sku_kwargs=_kwargs(cls, hidden[1], extra, dropout),
        direction=DIRECTIONS[direction],
        concave=bool(rule.get("concave", False)),
        bounds=list(bounds) if (bounds is not None and log_input) else None,
        elasticity=elasticity,
    )


def build_slots(
    features: list[dict],
    channels: list[str],
    constraints: dict,
    media_response: str,
    media_kwargs: dict | None = None,
    brand_hidden: int = 16,
    sku_hidden: int = 8,
    mlp_l2: float = 1e-3,
    dropout: float = 0.0,
) -> tuple[list[FeatureSlot], list[FeatureSlot]]:
    """Resolve one slot per feature and per channel.

    Args:
        features: dicts with ``name``, ``role``, ``transform`` and ``elasticity`` of each non-media feature.
        channels: media channel names.
        constraints: ``{"mode": "hard"|"soft", "roles": {role: {direction, concave, bounds, component}}}``.
        media_response: registered component for media (``hill``, ``beta_gamma``, ``exponential``, ``concave_increasing``).
        media_kwargs: hyper-parameters of the media component.
        brand_hidden / sku_hidden: hidden units at each level (SKU nets are smaller), for the components
            declaring ``has_hidden_units``.
        mlp_l2: L2 strength of the components declaring ``takes_l2`` (the unconstrained network ``mlp``).
        dropout: hidden-unit dropout rate while training (0 = off), for the components declaring
            ``takes_dropout`` (the networks); parametric components (``hill``, ``beta_gamma``,
            ``exponential``, ``linear``) have no hidden units and get none.
    """
    mode = constraints.get("mode", "hard")
    if mode not in ("hard", "soft"):
        raise ConfigError(f"constraints.mode must be hard or soft, got {mode!r}")
    _registered(media_response, "media response")
    roles = constraints.get("roles", {})
    hidden = (brand_hidden, sku_hidden)
    feature_slots = [
        _slot(f["name"], f["role"], roles, mode, None, media_kwargs, hidden, mlp_l2, dropout, f.get("transform") == "log", bool(f.get("elasticity")))
        for f in features
    ]
    media_slots = [_slot(c, "media", roles, mode, media_response, media_kwargs, hidden, mlp_l2, dropout, True, True) for c in channels]
    return feature_slots, media_slots
