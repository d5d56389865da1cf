"""A run folder saved before ``nam_mmm.data`` was split into subpackages still loads: its ``config.yaml`` names the
old ``_target_`` paths, which :data:`nam_mmm.entry.MOVED_TARGETS` translates when the data and folds are rebuilt."""

from __future__ import annotations

import importlib

import pandas as pd
import pytest
from omegaconf import OmegaConf

from nam_mmm.entry import MOVED_TARGETS, load_table, make_splitter

SMALL = ["data.source.n_brands=2", "data.source.skus_per_brand=2", "data.source.n_periods=80"]


def _locate(path: str):
    module, name = path.rsplit(".", 1)
    return getattr(importlib.import_module(module), name)


def test_every_moved_target_has_one_current_home() -> None:
    for old, new in MOVED_TARGETS.items():
        assert callable(_locate(new)), new
        with pytest.raises((ImportError, AttributeError)):  # no shim module keeps the old path alive
            _locate(old)


@pytest.mark.parametrize("validation", ["walk_forward", "holdout"])
def test_a_saved_config_with_old_targets_loads_the_same_data_and_folds(tmp_path, compose, validation) -> None:
    cfg = compose("inspect", [*SMALL, f"validation={validation}"])
    saved = OmegaConf.to_yaml(cfg, resolve=True)  # as a run folder writes config.yaml
    for old, new in MOVED_TARGETS.items():
        saved = saved.replace(f"_target_: {new}\n", f"_target_: {old}\n")
    assert f"_target_: {cfg.data.source._target_}" not in saved  # the data source is named by its old path
    (tmp_path / "config.yaml").write_text(saved)

    old = OmegaConf.load(tmp_path / "config.yaml")
    table = load_table(old.data)
    folds = make_splitter(old.validation).split(table.panel.periods)
    ref = load_table(cfg.data)
    pd.testing.assert_frame_equal(table.frame, ref.frame)
    ref_folds = make_splitter(cfg.validation).split(ref.panel.periods)
    assert [f.describe() for f in folds] == [f.describe() for f in ref_folds]
    # the data source and the splitter were named by their old paths, and the loaded config is left as it was saved
    assert old.data.source._target_ in MOVED_TARGETS and old.validation.splitter._target_ in MOVED_TARGETS
