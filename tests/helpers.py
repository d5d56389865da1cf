"""Shared test helpers: paths and the marker for tests that need the real DT Mart data."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
DTMART_DIR = REPO_ROOT.parent / "shared/data/dtmart"

requires_dtmart = pytest.mark.skipif(not DTMART_DIR.exists(), reason="../shared/data/dtmart not present")


def assert_one_line(err: Exception, *parts: str) -> str:
    """The error text is one line and contains every part; returns the text."""
    text = str(err)
    assert "\n" not in text, text
    for part in parts:
        assert part in text, f"{part!r} not in {text!r}"
    return text


# small synthetic run used by the model and training tests: 2 brands × 2 SKUs × 40 weeks, a few epochs
TINY_RUN = [
    "logger=none",
    "data.source.n_brands=2",
    "data.source.skus_per_brand=2",
    "data.source.n_periods=40",
    "data.holdout.test_size=6",
    "data.holdout.val_size=4",
    "trainer.max_epochs=30",
    "trainer.min_epochs=1",
    "report=false",
    "intervals.enabled=false",
]


def compose_train(overrides=(), return_hydra_config: bool = False):
    """The real ``conf/train.yaml`` composed with ``overrides`` (no Hydra run: no output folder is created)."""
    import nam_mmm.entry  # noqa: F401  registers the ${repo_root:} resolver
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(REPO_ROOT / "conf"), version_base="1.3"):
        return compose(config_name="train", overrides=list(overrides), return_hydra_config=return_hydra_config)



def train_in_process(out_dir, overrides=(), base=TINY_RUN) -> float:
    """Run :func:`nam_mmm.entry.train` (what ``python train.py`` calls) in this process, writing into ``out_dir``.

    Hydra's run machinery is replaced by the two things ``train`` reads from it: the composed config and the
    run folder. ``base`` overrides come first (default: the tiny synthetic run). Returns the objective
    (``test.r2`` by default).
    """
    import torch
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict

    from nam_mmm.entry import train

    Path(out_dir).mkdir(parents=True, exist_ok=True)  # Hydra creates the run folder before the task runs
    cfg = compose_train([*base, *overrides], return_hydra_config=True)
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = str(out_dir)
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        del cfg["hydra"]  # the task function never sees the hydra node
    threads = torch.get_num_threads()
    try:
        return train(cfg)
    finally:
        torch.set_num_threads(threads)  # train() sets cfg.threads globally
        HydraConfig.instance().cfg = None


def load_run(out_dir):
    """``(cfg, datamodule, module)`` of a finished single-fold run folder: its config.yaml and model.ckpt."""
    from omegaconf import OmegaConf

    from nam_mmm.data.folds.datamodule import PanelDataModule
    from nam_mmm.entry import load_table, make_splitter
    from nam_mmm.training.module import NAMModule

    out_dir = Path(out_dir)
    cfg = OmegaConf.load(out_dir / "config.yaml")
    table = load_table(cfg.data)
    (fold,) = make_splitter(cfg.validation).split(table.panel.periods)
    dm = PanelDataModule(table, fold, batch_size=cfg.batch_size, seed=int(cfg.seed))
    module = NAMModule.load_from_checkpoint(out_dir / "model.ckpt", map_location="cpu")
    module.eval()
    return cfg, dm, module
