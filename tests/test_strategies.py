"""Optimization strategies (seed §6.6): which parameters move at each step, and when the hybrid's phases switch.

The isolation tests drive :meth:`NAMModule._step_unit` directly with the per-unit optimizers of
``configure_optimizers()``, without a Trainer: ``manual_backward`` is replaced by ``loss.backward()`` and
``clip_gradients`` by ``torch.nn.utils.clip_grad_norm_`` over the optimizer's parameters (what Lightning does for
``gradient_clip_algorithm="norm"``), so clipping stays in the loop. The phase tests run real training through
:func:`nam_mmm.entry.train` (what ``train.py`` calls) with a CSV logger.
"""

from __future__ import annotations

import functools

import lightning as L
import numpy as np
import pandas as pd
import pytest
import torch
from omegaconf import OmegaConf

from helpers import TINY_RUN, compose_train, train_in_process
from nam_mmm.data.folds.datamodule import PanelDataModule
from nam_mmm.entry import load_table, make_splitter
from nam_mmm.errors import ConfigError
from nam_mmm.models.nam import FeatureSlot
from nam_mmm.training.loss import LossConfig
from nam_mmm.training.module import NAMModule
from nam_mmm.training.runner import ModelSettings, model_config
from nam_mmm.training.strategies import ALL_UNIT, BIAS_UNIT, DEFAULT_BLOCKS, build_strategy

SYNTHETIC_FEATURES = ["price", "cross_price", "discount", "promo_days", "nps", "month_sin", "month_cos", "time_index"]
SYNTHETIC_CHANNELS = ["tv", "digital", "sponsorship", "search", "social"]


# ---------------------------------------------------------------------------------------------- helpers


@functools.lru_cache(maxsize=None)
def _fold_data(overrides: tuple[str, ...] = ()):
    """(cfg, datamodule) of the tiny synthetic holdout run (2 brands × 2 SKUs × 40 weeks), built once per override set."""
    cfg = compose_train([*TINY_RUN, *overrides])
    table = load_table(cfg.data)
    (fold,) = make_splitter(cfg.validation).split(table.panel.periods)
    return cfg, PanelDataModule(table, fold)


def small_module(strategy: dict, overrides: tuple[str, ...] = (), **kwargs) -> tuple[NAMModule, PanelDataModule]:
    """A NAMModule on the tiny panel, built the way ``train.py`` builds it (real conf/ model, constraints, loss)."""
    cfg, dm = _fold_data(tuple(overrides))
    settings = ModelSettings(**OmegaConf.to_container(cfg.model, resolve=True))
    constraints = OmegaConf.to_container(cfg.constraints, resolve=True)
    loss = LossConfig(**OmegaConf.to_container(cfg.loss, resolve=True))
    torch.manual_seed(0)
    module = NAMModule(model_config(dm, settings, constraints), loss=vars(loss), strategy=strategy, **kwargs)
    return module, dm


def without_trainer(module: NAMModule) -> dict:
    """Make ``_step_unit`` runnable without a Trainer; returns unit name → its optimizer."""
    module.manual_backward = lambda loss: loss.backward()

    def clip(opt, gradient_clip_val=None, gradient_clip_algorithm="norm"):
        params = [p for group in opt.param_groups for p in group["params"] if p.grad is not None]
        torch.nn.utils.clip_grad_norm_(params, gradient_clip_val)

    module.clip_gradients = clip
    optimizers, _ = module.configure_optimizers()
    assert len(optimizers) == len(module.unit_names)
    return dict(zip(module.unit_names, optimizers, strict=True))


def inside_masks(module: NAMModule, unit: str) -> dict[str, torch.Tensor]:
    """Parameter name → boolean mask of the entries that belong to ``unit`` (all False for other parameters)."""
    model = module.model
    pairs = model.parameter_masks(module.strategy.units[unit], include_bias=unit == BIAS_UNIT)
    owned = {id(p): (torch.ones_like(p, dtype=torch.bool) if m is None else m) for p, m in pairs}
    return {name: owned.get(id(p), torch.zeros_like(p, dtype=torch.bool)) for name, p in model.named_parameters()}


def snapshot(module: NAMModule) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in module.model.named_parameters()}


def slot(name: str, role: str) -> FeatureSlot:
    return FeatureSlot(name=name, role=role, component="mlp")


SLOTS = [
    slot("price", "own_price"),
    slot("cross_price", "cross_price"),
    slot("discount", "discount"),
    slot("promo_days", "promo"),
    slot("nps", "brand_health"),
    slot("month_sin", "seasonality"),
    slot("time_index", "trend"),
    slot("outage", "control"),
    slot("tv", "media"),
    slot("digital", "media"),
]


# ---------------------------------------------------------------------------------------------- unit isolation
@pytest.mark.parametrize(
    ("strategy", "overrides"),
    [
        ({"name": "coordinate"}, ()),
        ({"name": "block"}, ()),  # hard constraints: the default blocks happen to own whole tensors
        ({"name": "block"}, ("constraints=soft",)),  # soft: one network group spans pricing and brand health
        ({"name": "block", "blocks": {"tv_search": ["tv", "search"], "price": ["own_price"]}}, ()),
        ({"name": "coordinate"}, ("model=monotone_nn", "model.adstock_per_brand=true", "model.hier_mode=deviation")),
    ],
    ids=["coordinate-hill", "block-hill", "block-soft", "block-custom-hill", "coordinate-monotone_nn-adstock_per_brand"],
)
def test_a_unit_step_never_moves_parameters_outside_the_unit(strategy: dict, overrides: tuple[str, ...]) -> None:
    """Every coordinate / block unit, twice round (so every unit's Adam has momentum and the others have moved),
    with weight decay and gradient clipping on: entries outside the unit stay bit-identical, some inside move,
    and every other feature's contribution and curve is unchanged."""
    module, dm = small_module(strategy, overrides, lr=0.05, weight_decay=0.1, gradient_clip_val=0.5)
    opts = without_trainer(module)
    batch = dm.splits["train"]
    model = module.model
    units = module.strategy.coordinate_units if strategy["name"] == "coordinate" else module.strategy.block_units
    assert len(units) > 2 and set(units) <= set(opts)
    shared = [u for u in units if any(m is not None for _, m in model.parameter_masks(module.strategy.units[u], u == BIAS_UNIT))]
    if (strategy, overrides) != ({"name": "block"}, ()):
        assert shared, "no unit shares a tensor with another: the masking path would go untested"

    names = model.feature_names
    for _round in range(2):
        for unit in units:
            before = snapshot(module)
            with torch.no_grad():
                out_before, curves_before = model(batch["x"], batch["media"], batch["brand"], batch["sku"]), model.curves()
            for _ in range(3):
                module._step_unit(unit, opts[unit], batch)
            after = snapshot(module)
            masks = inside_masks(module, unit)
            moved_inside = False
            for name, old in before.items():
                inside = masks[name]
                assert torch.equal(old[~inside], after[name][~inside]), f"{unit}: {name} changed outside the unit"
                moved_inside |= not torch.equal(old[inside], after[name][inside])
            assert moved_inside, f"{unit}: three steps moved no parameter of the unit"

            with torch.no_grad():
                out_after, curves_after = model(batch["x"], batch["media"], batch["brand"], batch["sku"]), model.curves()
            members = set(module.strategy.units[unit])
            for j, feature in enumerate(names):
                if feature not in members:
                    assert torch.equal(out_before["contrib"][:, j], out_after["contrib"][:, j]), f"{unit}: contribution of {feature} changed"
                    assert torch.equal(curves_before["combined"][..., j], curves_after["combined"][..., j]), f"{unit}: curve of {feature} changed"
            if unit != BIAS_UNIT:
                assert torch.equal(before["bias_brand"], after["bias_brand"]) and torch.equal(before["bias_sku"], after["bias_sku"])


@pytest.mark.parametrize(
    "overrides",
    [(), ("model=beta_gamma",), ("model=exponential",), ("model=monotone_nn", "model.adstock_per_brand=true"), ("constraints=soft",)],
    ids=["hill", "beta_gamma", "exponential", "monotone_nn-per_brand", "soft"],
)
def test_coordinate_units_partition_every_parameter_entry(overrides: tuple[str, ...]) -> None:
    """Every parameter entry belongs to exactly one coordinate unit (feature or bias), for every model family:
    nothing is left that no unit would ever train, and no entry is trained by two features."""
    module, _ = small_module({"name": "coordinate"}, overrides)
    counts = {name: torch.zeros_like(p, dtype=torch.int64) for name, p in module.model.named_parameters()}
    for unit in module.strategy.coordinate_units:
        for name, mask in inside_masks(module, unit).items():
            counts[name] += mask.long()
    for name, c in counts.items():
        assert bool((c == 1).all()), f"{name}: entries owned by {sorted(set(c.flatten().tolist()))} units"
    assert module.strategy.coordinate_units[-1] == BIAS_UNIT
    assert [u.removeprefix("feature:") for u in module.strategy.coordinate_units[:-1]] == module.model.feature_names


def test_training_step_runs_the_phase_units_in_order_inner_iterations_times() -> None:
    """Through a real Trainer: a hybrid with 3 epochs and equal shares steps every coordinate unit twice in epoch 0,
    every block unit twice in epoch 1, and the single joint unit once in epoch 2."""
    module, dm = small_module({"name": "hybrid", "split": [1 / 3, 1 / 3, 1 / 3], "inner_iterations": 2}, max_epochs=3)
    calls: list[tuple[int, str]] = []
    original = module._step_unit

    def recording(unit, opt, batch, rates=False):
        calls.append((module.current_epoch, unit))
        return original(unit, opt, batch, rates=rates)

    module._step_unit = recording
    trainer = L.Trainer(
        max_epochs=3, logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0, accelerator="cpu"
    )
    trainer.fit(module, datamodule=dm)
    s = module.strategy
    expected = [(0, u) for u in s.coordinate_units for _ in range(2)] + [(1, u) for u in s.block_units for _ in range(2)] + [(2, ALL_UNIT)]
    assert calls == expected


# ---------------------------------------------------------------------------------------------- build_strategy
def test_hybrid_phase_boundaries_follow_the_split() -> None:
    s = build_strategy("hybrid", SLOTS, max_epochs=100, split=[0.2, 0.3, 0.5])
    assert [s.phase_at(e).kind for e in range(0, 20)] == ["coordinate"] * 20
    assert [s.phase_at(e).kind for e in range(20, 50)] == ["block"] * 30
    assert [s.phase_at(e).kind for e in range(50, 130)] == ["joint"] * 80  # the last phase runs on past max_epochs
    assert s.warm_epochs == 50 and s.phase_names == ["coordinate", "block", "joint"]
    assert s.units_at(0) == s.coordinate_units and s.units_at(20) == s.block_units and s.units_at(50) == [ALL_UNIT]
    # the seed default split is 20 / 30 / 50 %
    assert build_strategy("hybrid", SLOTS, max_epochs=100).phases == s.phases


def test_hybrid_split_edge_cases() -> None:
    no_joint = build_strategy("hybrid", SLOTS, max_epochs=100, split=[0.5, 0.5, 0.0])
    assert [no_joint.phase_at(e).kind for e in range(100)] == ["coordinate"] * 50 + ["block"] * 50
    assert no_joint.warm_epochs == 100  # nothing of the coordinate/block phases is cut short

    all_joint = build_strategy("hybrid", SLOTS, max_epochs=100, split=[0, 0, 1])
    assert all_joint.phase_names == ["joint"] and all_joint.warm_epochs == 0
    assert {all_joint.phase_at(e).kind for e in range(100)} == {"joint"}

    block_then_joint = build_strategy("hybrid", SLOTS, max_epochs=10, split=[0.0, 0.4, 0.6])
    assert [block_then_joint.phase_at(e).kind for e in range(10)] == ["block"] * 4 + ["joint"] * 6


@pytest.mark.parametrize("split", [[0.5, 0.5], [0.2, 0.3, 0.6], [0.6, 0.6, -0.2], [0.25, 0.25, 0.25, 0.25]])
def test_invalid_hybrid_split_is_a_config_error(split) -> None:
    with pytest.raises(ConfigError, match="strategy.split"):
        build_strategy("hybrid", SLOTS, max_epochs=100, split=split)


def test_unknown_strategy_and_bad_inner_iterations_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="'newton'"):
        build_strategy("newton", SLOTS, max_epochs=10)
    with pytest.raises(ConfigError, match="inner_iterations"):
        build_strategy("coordinate", SLOTS, max_epochs=10, inner_iterations=0)
    with pytest.raises(ConfigError, match="'newton'"):  # the same message through the module users configure
        NAMModule(small_module({"name": "joint"})[0].model.to_dict(), strategy={"name": "newton"})


def test_default_blocks_follow_roles_and_cover_every_feature_once() -> None:
    s = build_strategy("block", SLOTS, max_epochs=10)
    units = s.units
    assert s.block_units == ["block:pricing", "block:marketing", "block:brand_health", "block:temporal", BIAS_UNIT]
    assert units["block:pricing"] == ["price", "cross_price", "discount", "promo_days"]
    assert units["block:marketing"] == ["tv", "digital"]
    assert units["block:brand_health"] == ["nps"]
    assert units["block:temporal"] == ["month_sin", "time_index", "outage"]
    members = [f for b in s.block_units if b != BIAS_UNIT for f in units[b]]
    assert sorted(members) == sorted(x.name for x in SLOTS)  # every feature, exactly once
    roles = {x.name: x.role for x in SLOTS}
    for block, block_roles in DEFAULT_BLOCKS.items():
        assert all(roles[f] in block_roles for f in units[f"block:{block}"])
    assert units[BIAS_UNIT] == [] and units[ALL_UNIT] == [x.name for x in SLOTS]


def test_features_of_unlisted_roles_form_an_other_block() -> None:
    s = build_strategy("block", [*SLOTS, slot("weather", "weather")], max_epochs=10)
    assert s.units["block:other"] == ["weather"]
    assert s.block_units[-2:] == ["block:other", BIAS_UNIT]


def test_default_blocks_of_the_real_synthetic_model() -> None:
    module, _ = small_module({"name": "block"})
    assert module.model.feature_names == SYNTHETIC_FEATURES + SYNTHETIC_CHANNELS
    units = module.strategy.units
    assert units["block:pricing"] == ["price", "cross_price", "discount", "promo_days"]
    assert units["block:marketing"] == SYNTHETIC_CHANNELS
    assert units["block:brand_health"] == ["nps"]
    assert units["block:temporal"] == ["month_sin", "month_cos", "time_index"]
    assert "block:other" not in units


def test_custom_blocks_are_honoured_by_role_or_feature_name() -> None:
    blocks = {"prices": ["own_price", "cross_price"], "tv_only": ["tv"], "online": ["digital"]}
    s = build_strategy("block", SLOTS, max_epochs=10, blocks=blocks)
    assert s.block_units == ["block:prices", "block:tv_only", "block:online", "block:other", BIAS_UNIT]
    assert s.units["block:prices"] == ["price", "cross_price"]
    assert s.units["block:tv_only"] == ["tv"]
    assert s.units["block:online"] == ["digital"]
    assert s.units["block:other"] == ["discount", "promo_days", "nps", "month_sin", "time_index", "outage"]

    # ... and through the module, as conf/strategy/block.yaml passes it
    module, _ = small_module({"name": "block", "blocks": {"pricing": ["price", "discount"]}, "description": "ignored"})
    assert module.strategy.block_units == ["block:pricing", "block:other", BIAS_UNIT]
    assert module.strategy.units["block:pricing"] == ["price", "discount"]


def test_overlapping_blocks_are_a_config_error_naming_the_feature() -> None:
    with pytest.raises(ConfigError, match="price.*more than one block"):
        build_strategy("block", SLOTS, max_epochs=10, blocks={"a": ["price"], "b": ["own_price", "discount"]})
    with pytest.raises(ConfigError, match="tv"):
        build_strategy("hybrid", SLOTS, max_epochs=10, blocks={"media": ["media"], "tv_only": ["tv"]})


def test_a_misspelled_block_member_is_a_config_error() -> None:
    # a typo would otherwise drop the feature silently into block:other
    with pytest.raises(ConfigError, match="pricing: prcie is neither a feature nor a role"):
        build_strategy("block", SLOTS, max_epochs=10, blocks={"pricing": ["prcie", "discount"]})


def test_phase_codes_do_not_depend_on_which_phases_exist() -> None:
    # a hybrid without a coordinate phase still logs its block phase as 1 and its joint phase as 2
    from nam_mmm.training.strategies import PHASE_CODES

    strategy = build_strategy("hybrid", SLOTS, max_epochs=10, split=[0.0, 0.5, 0.5])
    assert [PHASE_CODES[strategy.phase_at(e).kind] for e in range(10)] == [1] * 5 + [2] * 5


# ---------------------------------------------------------------------------------------------- hybrid run
def _phase_log(tmp_path, extra: list[str]) -> pd.DataFrame:
    """train/phase per epoch of a tiny hybrid run (12 epochs, split 25/25/50 %: epochs 0–2, 3–5, 6–11)."""
    csv_dir = tmp_path / "csv"
    train_in_process(
        tmp_path / "run",
        [
            "strategy=hybrid",
            "strategy.split=[0.25,0.25,0.5]",
            "trainer.max_epochs=12",
            "optimizer.log_every_n_epochs=1",
            "+logger.csv._target_=lightning.pytorch.loggers.CSVLogger",
            f"+logger.csv.save_dir={csv_dir}",
            "+logger.csv.name=hybrid",
            *extra,
        ],
    )
    (log_file,) = csv_dir.glob("hybrid/version_*/metrics.csv")
    log = pd.read_csv(log_file)
    return log.dropna(subset=["train/phase"]).set_index("epoch")["train/phase"]


def test_hybrid_run_logs_phases_switching_at_the_configured_epochs(tmp_path) -> None:
    phase = _phase_log(tmp_path, [])
    assert phase.index.tolist() == list(range(12))  # logged every epoch (log_every_n_epochs=1)
    # phase index into [coordinate, block, joint]
    assert phase.tolist() == [0.0] * 3 + [1.0] * 3 + [2.0] * 6


def test_early_stopping_cannot_skip_the_joint_phase(tmp_path) -> None:
    """Early stopping that wants to stop at once (patience 1, an improvement of 10 needed) still waits for the
    hybrid's last phase: the joint phase runs."""
    phase = _phase_log(
        tmp_path,
        [
            "trainer.min_epochs=1",
            "trainer.check_val_every_n_epoch=1",
            "callbacks.early_stopping.patience=1",
            "callbacks.early_stopping.min_delta=10",
        ],
    )
    assert phase.index.max() < 11  # early stopping did end the run early ...
    assert phase.loc[:5].tolist() == [0.0] * 3 + [1.0] * 3  # ... after the warm phases ...
    assert (phase == 2.0).any()  # ... and after at least one joint epoch


@pytest.mark.parametrize("constraints", ["hard", "soft"])
def test_penalties_on_the_active_groups_give_the_full_gradient(constraints: str) -> None:
    """A unit step evaluates the shape penalties of its own component groups only; the frozen features' part is a
    constant, so the gradient of every parameter in the unit equals the one of the full loss."""
    module, dm = small_module({"name": "coordinate"}, (f"constraints={constraints}",))
    model, batch = module.model, dm.splits["train"]
    with torch.no_grad():  # move away from the initial curves so every penalty is active
        for p in model.parameters():
            p.add_(0.3 * torch.randn_like(p))
    for unit in module.unit_names:
        params = [p for p, _ in module._masks[unit]]
        grads = []
        for groups in (None, module._groups[unit]):
            out = model(batch["x"], batch["media"], batch["brand"], batch["sku"])
            total = module.loss_fn(model, out, batch, epoch=100, rates=False, groups=groups)["total"]
            grads.append(torch.autograd.grad(total, params, allow_unused=True))
        for full, partial in zip(*grads, strict=True):
            if full is None:
                assert partial is None
                continue
            torch.testing.assert_close(partial, full, rtol=1e-5, atol=1e-7)
    assert any(g != list(range(model.n_groups)) for g in module._groups.values() if g is not None)


def test_beta_gamma_reports_where_the_response_peaks() -> None:
    """roi.csv of a beta-gamma model says where each channel's response peaks (x = α/β) relative to observed spend."""
    from nam_mmm.evaluation.attribution import roi_table

    module, dm = small_module({"name": "joint"}, ("model=beta_gamma",))
    model = module.model.eval()
    table = roi_table(model, dm, "train")
    (g,) = [g for g in range(model.n_groups) if model.brand_parts[g].name == "beta_gamma"]
    comp = model.brand_parts[g]
    alpha_over_beta = (comp._alpha(comp.alpha) / comp._beta(comp.beta))[..., 0].mean(0).detach().numpy()
    expected = alpha_over_beta * model.media_scale.numpy()  # multiples of mean spend → rupees
    np.testing.assert_allclose(table["peak_adstock_inr"].to_numpy(), expected, rtol=1e-5)
    batch = dm.splits["train"]
    observed = model.adstock(batch["media"], batch["brand"]).max(0).values.detach().numpy()
    np.testing.assert_allclose(table["peak_vs_max_observed"].to_numpy(), alpha_over_beta / observed, rtol=1e-5)
    # a concave family has no peak: no such columns
    hill, dm_hill = small_module({"name": "joint"})
    assert "peak_vs_max_observed" not in roi_table(hill.model.eval(), dm_hill, "train")
