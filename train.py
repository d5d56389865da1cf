"""Train the HR-NAM: ``python train.py`` (synthetic default), ``python train.py data=dtmart model=beta_gamma``.

A thin Hydra entry: the config groups in ``conf/`` are composed by ``conf/train.yaml`` and turned into
objects in :func:`nam_mmm.entry.train`; results land in the Hydra run folder under ``experiments/``.
"""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from nam_mmm.entry import one_line_errors, train


@hydra.main(config_path="conf", config_name="train", version_base="1.3")
@one_line_errors
def main(cfg: DictConfig) -> float:
    return train(cfg)


if __name__ == "__main__":
    main()
