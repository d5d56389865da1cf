"""Shape components: batches of 1-D feature functions with guaranteed shapes (seed §4.2).

One component instance holds the parameters of ``n_units × n_features`` functions in stacked tensors
(``(U, F, H)``), so the functions of every brand (or SKU) and every feature of a group are evaluated in a
few batched tensor operations:

* ``forward(x, unit)``: ``x`` (N, F) inputs, ``unit`` (N,) unit index per row → (N, F) values;
* ``grid(g)``: ``g`` (G, F) grid → (U, G, F) values of every unit's functions (curves, penalties).

Every function is anchored, ``f(anchor) = 0`` (anchor 0: the training mean of a standardized feature, or
zero spend for media), so biases carry the level and contributions read as "effect versus the anchor".

Network components (those with hidden units) take a ``dropout`` rate: while training, each call draws one
keep-mask over their hidden units (DropConnect on the output weights, scaled by 1/(1−p)) and uses it for the
rows and for the anchor alike. The mask scales non-negative output weights, so every guarantee holds for
every mask, and the anchor still cancels exactly. In eval mode, or with ``dropout: 0``, nothing is drawn.

A component declares its registry ``name``, its ``guarantee`` (``increasing``, ``decreasing``, ``concave``,
``nonnegative``, ``unimodal``: each holds *by construction*, whatever the parameter values), and the valid
ranges of its hyper-parameters, checked at construction. ``to_dict``/``from_dict`` round-trip it.

It also declares what the slot builder (:mod:`nam_mmm.models.spec`) must pass it, so the registry is the
only place that knows about each component:

* ``has_hidden_units``: it takes ``hidden`` (gets the model's ``brand_hidden`` / ``sku_hidden``);
* ``takes_dropout``: it takes ``dropout`` (gets the model's dropout rate when that is above 0);
* ``takes_l2``: it takes ``l2`` and gets the model's ``mlp_l2`` strength (unless the rule's kwargs set it);
* ``soft_fallback``: the registered unconstrained component that replaces it in ``constraints.mode=soft``
  (None: kept as it is in soft mode).

:func:`register` checks these against ``hparam_ranges``, so a network family that forgets to declare its
hidden units or dropout fails at import instead of silently training with the defaults.
Adding a response family is one subclass with ``@register`` plus one YAML in ``conf/model``.
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
from torch import nn
from torch.nn import functional as F

from nam_mmm.errors import ConfigError

REGISTRY: dict[str, type[ShapeFunction]] = {}


def register(cls: type[ShapeFunction]) -> type[ShapeFunction]:
    """Class decorator adding a component to :data:`REGISTRY` under its ``name``.

    Checks that the declared needs (``has_hidden_units``, ``takes_dropout``, ``takes_l2``) agree with
    ``hparam_ranges``: the slot builder passes ``hidden`` / ``dropout`` / ``l2`` on those flags alone.
    """
    if not getattr(cls, "name", None):
        raise TypeError(f"{cls.__name__} needs a class attribute 'name'")
    if cls.name in REGISTRY:
        raise TypeError(f"shape component '{cls.name}' registered twice")
    ranges = cls.hparam_ranges
    for flag, key in (("has_hidden_units", "hidden"), ("takes_dropout", "dropout")):
        if bool(getattr(cls, flag)) != (key in ranges):
            raise TypeError(
                f"shape component '{cls.name}': {flag} = {getattr(cls, flag)} but '{key}' is "
                f"{'' if key in ranges else 'not '}in hparam_ranges; declare both or neither"
            )
    if cls.takes_dropout and not cls.has_hidden_units:
        raise TypeError(f"shape component '{cls.name}': dropout masks hidden units, so takes_dropout needs has_hidden_units")
    if cls.takes_l2 and "l2" not in ranges:
        raise TypeError(f"shape component '{cls.name}': takes_l2 needs 'l2' in hparam_ranges")
    if cls.soft_fallback == cls.name:
        raise TypeError(f"shape component '{cls.name}': soft_fallback names the component itself (use None to keep it in soft mode)")
    REGISTRY[cls.name] = cls
    return cls


def build_shape(name: str, n_units: int, n_features: int, **hparams) -> ShapeFunction:
    """Instantiate a registered component by name (a clear error for an unknown name)."""
    if name not in REGISTRY:
        raise ConfigError(f"unknown shape component '{name}' (registered: {', '.join(sorted(REGISTRY))})")
    cls = REGISTRY[name]
    unknown = set(hparams) - set(cls.hparam_ranges)
    if unknown:  # checked before the constructor, whose explicit signature would raise a TypeError traceback
        raise ConfigError(f"{name}: unknown hyper-parameter(s) {', '.join(sorted(unknown))} (known: {', '.join(sorted(cls.hparam_ranges))})")
    return cls(n_units, n_features, **hparams)


def inv_softplus(y: float) -> float:
    return y + math.log(-math.expm1(-y))


class ShapeFunction(nn.Module):
    """Base class: parameters stacked over (unit, feature); subclasses implement :meth:`_f`."""

    name: ClassVar[str] = ""
    guarantee: ClassVar[frozenset[str]] = frozenset()
    hparam_ranges: ClassVar[dict[str, tuple[float, float]]] = {}
    nonnegative_input: ClassVar[bool] = False  # True: inputs are clamped at 0 (spend-like)
    # what the slot builder passes (see the module docstring; checked against hparam_ranges by register)
    has_hidden_units: ClassVar[bool] = False  # takes ``hidden``: gets brand_hidden / sku_hidden
    takes_dropout: ClassVar[bool] = False  # takes ``dropout``: gets the model's rate when it is above 0
    takes_l2: ClassVar[bool] = False  # gets the model's ``mlp_l2`` as its ``l2``
    soft_fallback: ClassVar[str | None] = None  # component replacing it in constraints.mode=soft (None: kept)

    def __init__(self, n_units: int, n_features: int, **hparams) -> None:
        super().__init__()
        if n_units < 1 or n_features < 1:
            raise ConfigError(f"{self.name}: need n_units >= 1 and n_features >= 1")
        unknown = set(hparams) - set(self.hparam_ranges)
        if unknown:
            raise ConfigError(f"{self.name}: unknown hyper-parameter(s) {', '.join(sorted(unknown))}")
        for key, (lo, hi) in self.hparam_ranges.items():
            if key in hparams and not (lo <= float(hparams[key]) <= hi):
                raise ConfigError(f"{self.name}: {key}={hparams[key]} outside its valid range [{lo}, {hi}]")
        self.n_units = n_units
        self.n_features = n_features
        self.hparams = dict(hparams)

    # --- parameters are (U, F, K) tensors; _f sees them broadcast against x of shape (..., F, 1)
    def _param(self, k: int, init: torch.Tensor | float) -> nn.Parameter:
        shape = (self.n_units, self.n_features, k)
        t = init.expand(shape).clone() if isinstance(init, torch.Tensor) else torch.full(shape, float(init))
        return nn.Parameter(t)

    @staticmethod
    @torch.no_grad()
    def _jitter(*params: nn.Parameter, sd: float = 0.1) -> None:
        """Small random perturbation of network parameters (from torch's seeded RNG), so different seeds
        start from different networks while the deterministic layout keeps units spread over the input range."""
        for p in params:
            p.add_(sd * torch.randn_like(p))

    def _f(self, x: torch.Tensor, p: dict[str, torch.Tensor]) -> torch.Tensor:
        raise NotImplementedError

    def _prep(self, x: torch.Tensor) -> torch.Tensor:
        return x.clamp_min(0.0) if self.nonnegative_input else x

    def anchor(self) -> float:
        return 0.0

    def _params(self) -> dict[str, torch.Tensor]:
        """The parameters (U, F, K) of one call, plus a ``"keep"`` mask (U, F, H) over the hidden units while
        training with dropout (one Bernoulli draw per call, scaled by 1/(1−p); no draw otherwise)."""
        p = dict(self._parameters)  # components hold parameters directly, no submodules
        rate = float(self.hparams.get("dropout", 0.0))
        if self.training and rate > 0:
            ref = p["a"]  # output weights of the hidden units (every component with a dropout rate has them)
            keep = torch.rand(ref.shape, dtype=ref.dtype, device=ref.device) >= rate
            p["keep"] = keep.to(ref.dtype) / (1.0 - rate)
        return p

    @staticmethod
    def _kept(p: dict[str, torch.Tensor], weight: torch.Tensor) -> torch.Tensor:
        """Output weights of the hidden units times the call's keep-mask (unchanged without one: no extra op)."""
        return weight * p["keep"] if "keep" in p else weight

    def anchor_values(self, p: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        """Each unit's function at the anchor, (U, F, 1): evaluated once per unit, not once per row.
        ``p``: the parameter dict of the current call (:meth:`_params`, its dropout mask included)."""
        p = self._params() if p is None else p
        ref = next(iter(p.values()))
        a = torch.full((self.n_units, self.n_features, 1), self.anchor(), dtype=ref.dtype, device=ref.device)
        return self._f(a, p)

    def forward(self, x: torch.Tensor, unit: torch.Tensor) -> torch.Tensor:
        full = self._params()
        p = {k: v[unit] for k, v in full.items()}  # (N, F, K)
        return (self._f(self._prep(x.unsqueeze(-1)), p) - self.anchor_values(full)[unit]).squeeze(-1)

    def grid(self, g: torch.Tensor) -> torch.Tensor:
        """Every unit's functions on a grid ``g`` (G, F) → (U, G, F)."""
        full = self._params()
        p = {k: v.unsqueeze(1) for k, v in full.items()}  # (U, 1, F, K)
        values = self._f(self._prep(g.unsqueeze(0).unsqueeze(-1)), p)  # (U, G, F, 1)
        return (values - self.anchor_values(full).unsqueeze(1)).squeeze(-1)

    def l2_penalty(self) -> torch.Tensor:
        """Penalty added to the loss for components regularized by L2 (0 for the others)."""
        return torch.zeros(())

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "n_units": self.n_units,
            "n_features": self.n_features,
            "hparams": dict(self.hparams),
            "state": {k: v.detach().cpu().tolist() for k, v in self.state_dict().items()},
        }

    @classmethod
    def from_dict(cls, d: dict) -> ShapeFunction:
        comp = build_shape(d["name"], d["n_units"], d["n_features"], **d["hparams"])
        comp.load_state_dict({k: torch.tensor(v, dtype=torch.get_default_dtype()) for k, v in d["state"].items()})
        return comp


class _SigmoidSum(ShapeFunction):
    """``softplus(c)·x + Σ_h softplus(a_h) · tanh(softplus(w_h)·x + b_h)``: non-decreasing in x for any parameters.

    The linear term keeps the slope outside the training range (a pure sum of tanh units flattens there, so
    a price beyond the observed range would stop moving GMV); the tanh units bend the curve inside it.
    ``dropout`` masks the tanh units while training (the linear term is always kept).
    """

    hparam_ranges = {"hidden": (1, 256), "init_scale": (1e-4, 10.0), "dropout": (0.0, 0.9)}
    has_hidden_units = True
    takes_dropout = True
    soft_fallback = "mlp"

    def __init__(self, n_units: int, n_features: int, hidden: int = 8, init_scale: float = 0.1, dropout: float = 0.0) -> None:
        super().__init__(n_units, n_features, hidden=hidden, init_scale=init_scale, dropout=dropout)
        h = int(hidden)
        gen_b = torch.linspace(-2.5, 2.5, h) if h > 1 else torch.zeros(1)
        self.a = self._param(h, inv_softplus(init_scale / h))
        self.w = self._param(h, inv_softplus(1.0))
        self.b = self._param(h, gen_b)
        self.c = self._param(1, inv_softplus(init_scale))
        self._jitter(self.w, self.b)

    def _f(self, x, p):
        bend = (self._kept(p, F.softplus(p["a"])) * torch.tanh(F.softplus(p["w"]) * x + p["b"])).sum(-1, keepdim=True)
        return bend + F.softplus(p["c"]) * x


@register
class MonotoneIncreasing(_SigmoidSum):
    """Monotone non-decreasing network: positive output weights × tanh of positively weighted input.

    No batch normalization: a learnable BN scale could flip the sign and break monotonicity.
    """

    name = "monotone_increasing"
    guarantee = frozenset({"increasing"})


@register
class MonotoneDecreasing(_SigmoidSum):
    """Monotone non-increasing network: the negative of :class:`MonotoneIncreasing`."""

    name = "monotone_decreasing"
    guarantee = frozenset({"decreasing"})

    def _f(self, x, p):
        return -super()._f(x, p)


@register
class ConcaveIncreasing(ShapeFunction):
    """Concave non-decreasing network for media (diminishing returns by construction).

    ``Σ_h softplus(a_h) · logsigmoid(softplus(w_h)·x + b_h) + softplus(c)·x`` on x ≥ 0: each term is a
    non-negative multiple of a concave non-decreasing function of an increasing affine map, so the sum is
    concave and non-decreasing. ``log σ(u)`` is linear for u ≪ 0 and flat for u ≫ 0: each unit is a soft
    saturation point at spend −b/w.
    """

    name = "concave_increasing"
    guarantee = frozenset({"increasing", "concave"})
    hparam_ranges = {"hidden": (1, 256), "init_scale": (1e-4, 10.0), "x_max": (1e-3, 1e6), "dropout": (0.0, 0.9)}
    nonnegative_input = True
    has_hidden_units = True
    takes_dropout = True
    soft_fallback = "mlp"

    def __init__(self, n_units: int, n_features: int, hidden: int = 8, init_scale: float = 0.1, x_max: float = 8.0, dropout: float = 0.0) -> None:
        super().__init__(n_units, n_features, hidden=hidden, init_scale=init_scale, x_max=x_max, dropout=dropout)
        h = int(hidden)
        knots = torch.linspace(0.25, 1.0, h) * float(x_max) if h > 1 else torch.tensor([float(x_max) / 2])
        self.a = self._param(h, inv_softplus(init_scale / h))
        self.w = self._param(h, inv_softplus(1.0))
        self.b = self._param(h, -knots)
        self.c = self._param(1, inv_softplus(1e-3))
        self._jitter(self.w, self.b)

    def _f(self, x, p):
        sat = (self._kept(p, F.softplus(p["a"])) * F.logsigmoid(F.softplus(p["w"]) * x + p["b"])).sum(-1, keepdim=True)
        return sat + F.softplus(p["c"]) * x


@register
class Hill(ShapeFunction):
    """Hill saturation ``a·xⁿ/(kⁿ+xⁿ)`` on x ≥ 0 (spend in multiples of its mean).

    ``n`` lives in [n_min, n_max] through a sigmoid; with n_max ≤ 1 (default) the curve is concave.
    ``allow_s_shape: true`` lets n reach 3 (S-shaped, no concavity guarantee).
    """

    name = "hill"
    hparam_ranges = {"n_min": (0.1, 1.0), "n_max": (0.1, 3.0), "allow_s_shape": (0, 1), "init_k": (1e-3, 1e3), "init_scale": (1e-4, 10.0)}
    nonnegative_input = True

    def __init__(self, n_units: int, n_features: int, n_min: float = 0.3, n_max: float = 1.0, allow_s_shape: bool = False, init_k: float = 1.5, init_scale: float = 0.2) -> None:
        if n_max > 1.0 and not allow_s_shape:
            raise ConfigError("hill: n_max > 1 makes the curve S-shaped; set allow_s_shape: true to permit it")
        if n_min >= n_max:
            raise ConfigError(f"hill: n_min ({n_min}) must be below n_max ({n_max})")
        super().__init__(n_units, n_features, n_min=n_min, n_max=n_max, allow_s_shape=allow_s_shape, init_k=init_k, init_scale=init_scale)
        self.hparams["allow_s_shape"] = bool(allow_s_shape)
        self.a = self._param(1, inv_softplus(init_scale))
        self.k = self._param(1, inv_softplus(init_k))
        self.n = self._param(1, 0.0)

    @property
    def guarantee(self) -> frozenset[str]:  # type: ignore[override]
        concave = self.hparams["n_max"] <= 1.0
        return frozenset({"increasing", "nonnegative", *(["concave"] if concave else [])})

    def _exponent(self, raw):
        lo, hi = self.hparams["n_min"], self.hparams["n_max"]
        return lo + (hi - lo) * torch.sigmoid(raw)

    def _f(self, x, p):
        n = self._exponent(p["n"])
        k = F.softplus(p["k"])
        # x^n/(k^n+x^n) = sigmoid(n·(log x − log k)); stable at x→0 (value 0, finite gradient)
        ratio = torch.sigmoid(n * (torch.log(x.clamp_min(1e-12)) - torch.log(k)))
        return F.softplus(p["a"]) * torch.where(x > 0, ratio, torch.zeros_like(ratio))



@register
class BetaGamma(ShapeFunction):
    """Beta-gamma response ``a·x^α·e^(−βx)``: rises to a peak at x = α/β, then falls (over-spending hurts).

    α ∈ [alpha_min, alpha_max] ⊂ (0, 1] and β ∈ (0, beta_max) per the seed's bounds. It is non-negative and
    unimodal by construction (not monotone): the fit reports where the peak sits relative to observed spend.
    """

    name = "beta_gamma"
    guarantee = frozenset({"nonnegative", "unimodal"})
    hparam_ranges = {"alpha_min": (0.01, 1.0), "alpha_max": (0.01, 1.0), "beta_max": (1e-4, 100.0), "init_scale": (1e-4, 10.0)}
    nonnegative_input = True

    def __init__(self, n_units: int, n_features: int, alpha_min: float = 0.2, alpha_max: float = 1.0, beta_max: float = 1.0, init_scale: float = 0.2) -> None:
        if alpha_min >= alpha_max:
            raise ConfigError("beta_gamma: alpha_min must be below alpha_max")
        super().__init__(n_units, n_features, alpha_min=alpha_min, alpha_max=alpha_max, beta_max=beta_max, init_scale=init_scale)
        self.a = self._param(1, inv_softplus(init_scale))
        self.alpha = self._param(1, 0.0)
        self.beta = self._param(1, -2.0)

    def _alpha(self, raw):
        lo, hi = self.hparams["alpha_min"], self.hparams["alpha_max"]
        return lo + (hi - lo) * torch.sigmoid(raw)

    def _beta(self, raw):
        return self.hparams["beta_max"] * torch.sigmoid(raw)

    def _f(self, x, p):
        alpha, beta = self._alpha(p["alpha"]), self._beta(p["beta"])
        logx = torch.log(x.clamp_min(1e-12))
        val = torch.exp(alpha * logx - beta * x)
        return F.softplus(p["a"]) * torch.where(x > 0, val, torch.zeros_like(val))

    def peak(self) -> torch.Tensor:
        """Input (multiples of mean spend) where the response peaks, (U, F)."""
        return (self._alpha(self.alpha) / self._beta(self.beta))[..., 0]



@register
class ExponentialSaturation(ShapeFunction):
    """Exponential saturation ``a·(1 − e^(−b·x))`` on x ≥ 0: concave and increasing."""

    name = "exponential"
    guarantee = frozenset({"increasing", "concave", "nonnegative"})
    hparam_ranges = {"init_b": (1e-4, 100.0), "init_scale": (1e-4, 10.0)}
    nonnegative_input = True

    def __init__(self, n_units: int, n_features: int, init_b: float = 0.5, init_scale: float = 0.2) -> None:
        super().__init__(n_units, n_features, init_b=init_b, init_scale=init_scale)
        self.a = self._param(1, inv_softplus(init_scale))
        self.b = self._param(1, inv_softplus(init_b))

    def _f(self, x, p):
        return F.softplus(p["a"]) * -torch.expm1(-F.softplus(p["b"]) * x)



@register
class MLP(ShapeFunction):
    """Unconstrained small network ``Σ_h a_h·tanh(w_h·x + b_h)`` (NPS, controls), regularized by L2."""

    name = "mlp"
    hparam_ranges = {"hidden": (1, 256), "l2": (0.0, 10.0), "init_scale": (1e-4, 10.0), "dropout": (0.0, 0.9)}
    has_hidden_units = True
    takes_dropout = True
    takes_l2 = True

    def __init__(self, n_units: int, n_features: int, hidden: int = 8, l2: float = 1e-3, init_scale: float = 0.1, dropout: float = 0.0) -> None:
        super().__init__(n_units, n_features, hidden=hidden, l2=l2, init_scale=init_scale, dropout=dropout)
        h = int(hidden)
        signs = torch.where(torch.arange(h) % 2 == 0, 1.0, -1.0)
        self.a = self._param(h, signs * init_scale / h)
        self.w = self._param(h, signs)
        self.b = self._param(h, torch.linspace(-2.0, 2.0, h) if h > 1 else torch.zeros(1))
        self._jitter(self.w, self.b)

    def _f(self, x, p):
        return (self._kept(p, p["a"]) * torch.tanh(p["w"] * x + p["b"])).sum(-1, keepdim=True)

    def l2_penalty(self) -> torch.Tensor:
        return self.hparams["l2"] * (self.a.pow(2).sum() + self.w.pow(2).sum()) / self.n_units


@register
class Linear(ShapeFunction):
    """Unconstrained linear effect ``c·x``: exact extrapolation for trend, seasonality terms and dummies.

    Its ``l2`` (default 0) comes only from explicit kwargs (``media_kwargs`` when it is the media response):
    ``takes_l2`` stays False, so the model's ``mlp_l2`` (meant for the networks) does not shrink trend and
    seasonality.
    """

    name = "linear"
    hparam_ranges = {"l2": (0.0, 10.0)}

    def __init__(self, n_units: int, n_features: int, l2: float = 0.0) -> None:
        super().__init__(n_units, n_features, l2=l2)
        self.c = self._param(1, 0.0)

    def _f(self, x, p):
        return p["c"] * x

    def l2_penalty(self) -> torch.Tensor:
        return self.hparams["l2"] * self.c.pow(2).sum() / self.n_units

