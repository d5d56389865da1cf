"""Fixtures: the repo paths, the real Hydra config composed as users run it, and small synthetic panels."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
import torch
from omegaconf import DictConfig

from helpers import DTMART_DIR, REPO_ROOT, requires_dtmart  # noqa: F401  (re-exported for tests)
from nam_mmm.data.panel import Panel
from nam_mmm.data.sources.synthetic import load_synthetic

SMALL = dict(n_brands=2, skus_per_brand=2, n_periods=40, seed=3)


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def dtmart_dir(repo_root: Path) -> Path:
    return repo_root.parent / "shared/data/dtmart"


@pytest.fixture
def compose(repo_root: Path) -> Callable[..., DictConfig]:
    """``compose(config_name="inspect", overrides=[...])``: the real config from ``conf/``, as Hydra builds it."""
    import nam_mmm.entry  # noqa: F401  registers the ${repo_root:} resolver used by conf/data/dtmart.yaml
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    def _compose(config_name: str = "inspect", overrides: Sequence[str] = ()) -> DictConfig:
        with initialize_config_dir(config_dir=str(repo_root / "conf"), version_base="1.3"):
            return hydra_compose(config_name=config_name, overrides=list(overrides))

    return _compose


@pytest.fixture
def small_synthetic() -> Panel:
    """2 brands × 2 SKUs × 40 weekly periods (fresh per test: ``prepare_panel`` mutates the panel)."""
    return load_synthetic(**SMALL)


@pytest.fixture
def make_synthetic() -> Callable[..., Panel]:
    """Factory of small synthetic panels: keyword arguments override the small defaults."""

    def _make(**overrides) -> Panel:
        return load_synthetic(**{**SMALL, **overrides})

    return _make


@pytest.fixture(autouse=True)
def one_thread():
    """One torch thread, as ``train.py`` uses (threads: 1): on tiny tensors a second thread only waits, and on a
    busy 2-core machine it waits a lot."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
