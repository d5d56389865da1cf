"""ROI simulator from a trained run folder: each channel's average and marginal ROI over a spend range.

    python scripts/roi_curves.py run_dir=experiments/runs/synthetic/<timestamp>
    python scripts/roi_curves.py run_dir=… range.max_multiple=4 range.points=41

Writes ``roi_curves.csv`` and ``roi_curves.png`` (a grid of plots, the current spend marked) into the run folder.
"""

from __future__ import annotations

from pathlib import Path

import hydra
from omegaconf import DictConfig

from nam_mmm.entry import load_table, one_line_errors


@one_line_errors
def run(cfg: DictConfig):
    import torch

    from nam_mmm.errors import ConfigError
    from nam_mmm.optimization.io import open_run
    from nam_mmm.optimization.planner import planning_context
    from nam_mmm.optimization.plots import roi_grid
    from nam_mmm.optimization.roi_curves import roi_curves

    if cfg.get("threads"):
        torch.set_num_threads(int(cfg.threads))
    if not float(cfg.range.max_multiple) > 0 or int(cfg.range.points) < 2:
        raise ConfigError(f"range: max_multiple must be > 0 and points >= 2, got {cfg.range.max_multiple} and {cfg.range.points}")
    run_dir = Path(str(cfg.run_dir))
    predictor, frame = open_run(run_dir, load_table if cfg.reference.kind != "file" else None)
    ctx = planning_context(predictor, frame, cfg.horizon, reference_kind=cfg.reference.kind, reference_path=cfg.reference.path)
    table, notes = roi_curves(ctx, float(cfg.range.max_multiple), int(cfg.range.points))
    table.to_csv(run_dir / "roi_curves.csv", index=False)
    if len(table):
        roi_grid(table, run_dir / "roi_curves.png")
    current = table[table["is_current"]]
    print(current[["channel", "spend_inr", "roi", "marginal_roi"]].to_string(index=False, float_format=lambda v: f"{v:,.3f}"))
    for note in notes:
        print(f"note: {note}")
    print(f"\nsaved: roi_curves.csv{', roi_curves.png' if len(table) else ''} in {run_dir}")
    return table


@hydra.main(config_path="../conf", config_name="roi_curves", version_base="1.3")
def main(cfg: DictConfig) -> None:
    run(cfg)


if __name__ == "__main__":
    main()
