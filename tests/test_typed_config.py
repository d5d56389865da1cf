"""Typed configs at the edge: a misspelt or mistyped key in a model or loss YAML fails when Hydra composes."""

from __future__ import annotations

import pytest
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf
from omegaconf.errors import ConfigKeyError, ValidationError

from helpers import compose_train
from nam_mmm.config import LossConfig, ModelSettings


def _write(tmp_path, group: str, name: str, body: str) -> None:
    (tmp_path / group).mkdir(parents=True, exist_ok=True)
    (tmp_path / group / f"{name}.yaml").write_text("defaults:\n  - _schema\n  - _self_\n" + body)


def test_a_misspelt_key_in_a_model_yaml_fails_at_compose(tmp_path):
    _write(tmp_path, "model", "typo", "name: typo\nmedia_response: hill\nhier_wieght: 0.5\n")
    with pytest.raises((ConfigCompositionException, ConfigKeyError)) as err:
        compose_train(["model=typo", f"hydra.searchpath=[file://{tmp_path}]"])
    assert "hier_wieght" in str(err.value) + str(err.value.__cause__)


def test_a_mistyped_value_fails_at_compose():
    with pytest.raises((ConfigCompositionException, ValidationError)) as err:
        compose_train(["loss.lambda_smooth=much"])
    assert "lambda_smooth" in str(err.value) + str(err.value.__cause__)


def test_the_composed_groups_become_the_typed_objects_the_package_takes():
    cfg = compose_train(["model=beta_gamma", "loss.lambda_function=auto"])
    model, loss = OmegaConf.to_object(cfg.model), OmegaConf.to_object(cfg.loss)
    assert isinstance(model, ModelSettings) and model.media_response == "beta_gamma"
    assert isinstance(loss, LossConfig) and loss.lambda_function == "auto"
    for name in ("hill", "exponential", "monotone_nn"):
        assert isinstance(OmegaConf.to_object(compose_train([f"model={name}"]).model), ModelSettings)
