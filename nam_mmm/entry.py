"""The edge between Hydra configs and the package: configs become objects here, plain arguments flow inward.

Used by ``train.py`` and ``scripts/*.py`` only; nothing deeper in the package imports this module.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from nam_mmm.errors import NamMMMError

REPO_ROOT = Path(__file__).resolve().parents[1]


def _repo_root() -> str:
    """Project root (the folder holding ``conf/``) for paths in configs; the working directory if installed elsewhere."""
    return str(REPO_ROOT if (REPO_ROOT / "conf").is_dir() else Path.cwd())


if not OmegaConf.has_resolver("repo_root"):
    OmegaConf.register_new_resolver("repo_root", _repo_root)


def one_line_errors(fn: Callable) -> Callable:
    """Turn a :class:`NamMMMError` raised by ``fn`` into ``error: <message>`` on stderr and exit code 2."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except NamMMMError as err:
            print(f"error: {err}", file=sys.stderr)
            sys.exit(2)

    return wrapper


def load_table(data_cfg: DictConfig):
    """Instantiate the data source, validate and clean it, and build the feature table."""
    from hydra.utils import instantiate

    from nam_mmm.data.cleaning import CleaningConfig, prepare_panel
    from nam_mmm.data.features import FeatureConfig, build_features

    panel = instantiate(data_cfg.source, _convert_="all")
    cleaning = CleaningConfig(**OmegaConf.to_container(data_cfg.cleaning, resolve=True))
    prepare_panel(panel, cleaning)
    features = FeatureConfig(**OmegaConf.to_container(data_cfg.features, resolve=True))
    return build_features(panel, features)


def make_splitter(validation_cfg: DictConfig):
    from hydra.utils import instantiate

    return instantiate(validation_cfg.splitter)
