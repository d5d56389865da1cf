"""What-if scenarios over the next periods from a trained run folder: GMV, lift, investment and ROI.

    python scripts/scenarios.py run_dir=experiments/runs/synthetic/<timestamp>      # the seed's five examples
    python scripts/scenarios.py run_dir=… scenario_file=my_scenarios.yaml horizon=26

Writes ``scenarios.csv`` and ``scenarios.png`` into the run folder (``docs/budget_planner.md``).
"""

from __future__ import annotations

from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

from nam_mmm.entry import load_table, one_line_errors


@one_line_errors
def run(cfg: DictConfig):
    import torch

    from nam_mmm.errors import ConfigError
    from nam_mmm.optimization.io import open_run
    from nam_mmm.optimization.planner import planning_context
    from nam_mmm.optimization.plots import scenario_chart
    from nam_mmm.optimization.scenarios import evaluate_scenarios, parse_scenarios

    if cfg.get("threads"):
        torch.set_num_threads(int(cfg.threads))
    run_dir = Path(str(cfg.run_dir))
    if cfg.get("scenario_file"):
        path = Path(str(cfg.scenario_file))
        if not path.is_file():
            raise ConfigError(f"scenario_file: no such file {path}")
        spec = OmegaConf.to_container(OmegaConf.load(path), resolve=True)
    else:
        spec = OmegaConf.to_container(cfg.scenarios, resolve=True)
    scenarios = parse_scenarios(spec)
    predictor, frame = open_run(run_dir, load_table if cfg.reference.kind != "file" else None)
    ctx = planning_context(predictor, frame, cfg.horizon, reference_kind=cfg.reference.kind, reference_path=cfg.reference.path)
    table = evaluate_scenarios(ctx, scenarios)
    table.to_csv(run_dir / "scenarios.csv", index=False)
    scenario_chart(table, run_dir / "scenarios.png")
    shown = table.assign(investment_cr=table["investment_inr"] / 1e7, gmv_cr=table["gmv_inr"] / 1e7)
    cols = ["scenario", "investment_cr", "gmv_cr", "lift_pct", "lift_lower_pct", "lift_upper_pct", "roi", "incremental_roi", "notes"]
    print(shown[cols].to_string(index=False, float_format=lambda v: f"{v:,.3f}"))
    print(f"\nsaved: scenarios.csv, scenarios.png in {run_dir}")
    return table


@hydra.main(config_path="../conf", config_name="scenarios", version_base="1.3")
def main(cfg: DictConfig) -> None:
    run(cfg)


if __name__ == "__main__":
    main()
