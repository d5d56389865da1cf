"""Plan a future budget from a trained run folder: the allocation that maximizes predicted GMV.

    python scripts/plan_budget.py run_dir=experiments/runs/synthetic/<timestamp>
    python scripts/plan_budget.py run_dir=… budget.total=4.3e8 budget.horizon=13
    python scripts/plan_budget.py run_dir=… budget.granularity=channel_period 'constraints.channels.tv={lock: true}'
    python scripts/plan_budget.py run_dir=… budget.mode=target_mroi budget.target_mroi=1.2

Writes ``budget.csv``, ``budget_channels.csv``, ``budget_summary.json``, ``budget_allocation.png`` and the
efficient frontier (``budget_frontier.csv`` / ``.png``) into the run folder (``docs/budget_planner.md``).
"""

from __future__ import annotations

from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

from nam_mmm.entry import load_table, one_line_errors


@one_line_errors
def plan(cfg: DictConfig) -> dict:
    import torch

    from nam_mmm.optimization.io import console_summary, open_run, write_budget
    from nam_mmm.optimization.planner import PlanSettings, frontier, planning_context, solve_plan

    if cfg.get("threads"):
        torch.set_num_threads(int(cfg.threads))
    run_dir = Path(str(cfg.run_dir))
    budget = OmegaConf.to_container(cfg.budget, resolve=True)
    reference = OmegaConf.to_container(cfg.reference, resolve=True)
    constraints = OmegaConf.to_container(cfg.constraints, resolve=True)
    solver = OmegaConf.to_container(cfg.solver, resolve=True)
    predictor, frame = open_run(run_dir, load_table if reference["kind"] != "file" else None)
    ctx = planning_context(predictor, frame, budget["horizon"], budget["granularity"], budget["pacing"], reference["kind"], reference["path"])
    settings = PlanSettings(**budget, **solver)
    result = solve_plan(ctx, settings, constraints)
    multipliers = list(cfg.frontier.multipliers or [])
    front = frontier(ctx, settings, constraints, multipliers) if multipliers and settings.mode == "fixed_budget" else None
    paths = write_budget(result, run_dir, OmegaConf.to_container(cfg, resolve=True), front)
    print(console_summary(result))
    print(f"\nsaved: {', '.join(p.name for p in paths.values())} in {run_dir}")
    return result.report


@hydra.main(config_path="../conf", config_name="plan_budget", version_base="1.3")
def main(cfg: DictConfig) -> None:
    plan(cfg)


if __name__ == "__main__":
    main()
