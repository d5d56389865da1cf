"""Reading a run folder for planning and writing the planner's files into it.

Files written into the run folder (``docs/budget_planner.md`` has every column):

* ``scripts/plan_budget.py``: ``budget.csv`` (one row per decision), ``budget_channels.csv`` (per channel),
  ``budget_summary.json`` (GMV, uplift with its fold interval, carry-over, KKT, binding constraints, settings),
  ``budget_allocation.png``, and with a frontier ``budget_frontier.csv`` / ``budget_frontier.png``;
* ``scripts/scenarios.py``: ``scenarios.csv``, ``scenarios.png``;
* ``scripts/roi_curves.py``: ``roi_curves.csv``, ``roi_curves.png``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from nam_mmm.errors import ConfigError
from nam_mmm.optimization import plots
from nam_mmm.optimization.planner import BudgetPlan, channel_table, decision_table
from nam_mmm.serving.predictor import Predictor


def open_run(run_dir: str | Path, load_table: Callable | None = None) -> tuple[Predictor, pd.DataFrame | None]:
    """The served model of a run folder and, with ``load_table`` (``nam_mmm.entry.load_table``), the run's feature
    table rebuilt from its ``config.yaml`` (the reference inputs come from it)."""
    root = Path(str(run_dir))
    if not (root / "predictor.pt").is_file():
        raise ConfigError(f"run_dir: no predictor.pt in {root} (give the folder a `python train.py` run wrote)")
    predictor = Predictor.load(root / "predictor.pt")
    if load_table is None:
        return predictor, None
    if not (root / "config.yaml").is_file():
        raise ConfigError(f"run_dir: no config.yaml in {root}; use reference.kind=file with every input")
    from omegaconf import OmegaConf

    table = load_table(OmegaConf.load(root / "config.yaml").data)
    return predictor, table.frame


def _json_default(v):
    if isinstance(v, (np.floating, np.integer)):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist()
    raise TypeError(f"not JSON-able: {type(v)}")


def write_json(path: Path, payload: dict) -> Path:
    path.write_text(json.dumps(payload, indent=2, default=_json_default, allow_nan=True) + "\n")
    return path


def write_budget(plan: BudgetPlan, out_dir: str | Path, settings: dict, frontier: pd.DataFrame | None = None) -> dict[str, Path]:
    """Write the plan's files into ``out_dir`` (the run folder); returns them by name."""
    out = Path(out_dir)
    paths = {}
    decisions = decision_table(plan)
    channels = channel_table(plan)
    paths["budget"] = out / "budget.csv"
    decisions.to_csv(paths["budget"], index=False)
    paths["channels"] = out / "budget_channels.csv"
    channels.to_csv(paths["channels"], index=False)
    summary = {**plan.report, "settings": settings}
    paths["summary"] = write_json(out / "budget_summary.json", summary)
    r = plan.report
    unc = r["uplift_by_member"]
    band = f", fold interval {unc['lower'] / 1e7:,.1f} … {unc['upper'] / 1e7:,.1f} cr" if unc["interval"] != "none" else ""
    title = f"{r['mode']}: GMV {r['gmv_inr'] / 1e7:,.1f} cr, uplift vs current mix {r['uplift_vs_current_mix_inr'] / 1e7:+,.2f} cr ({r['uplift_vs_current_mix_pct']:+.2f} %{band})"
    paths["allocation_chart"] = plots.allocation_chart(channels, out / "budget_allocation.png", title)
    if frontier is not None and len(frontier):
        paths["frontier"] = out / "budget_frontier.csv"
        frontier.to_csv(paths["frontier"], index=False)
        if (frontier["status"] == "ok").any():
            paths["frontier_chart"] = plots.frontier_chart(frontier, out / "budget_frontier.png")
    return paths


def console_summary(plan: BudgetPlan) -> str:
    """A few lines for the console: the channel table and the headline numbers."""
    r = plan.report
    channels = channel_table(plan)
    shown = channels.assign(
        current_cr=channels["current_inr"] / 1e7, proposed_cr=channels["proposed_inr"] / 1e7,
    )[["channel", "current_cr", "proposed_cr", "proposed_share", "marginal_roi", "held_by"]]
    unc = r["uplift_by_member"]
    interval = (
        f" (fold models: {unc['lower'] / 1e7:,.2f} … {unc['upper'] / 1e7:,.2f} cr, mean ± 1.96 sd of {r['members']})"
        if unc["interval"] != "none" else " (one model: no fold interval; train with validation=walk_forward for one)"
    )
    kkt = (
        f"marginal ROI of the free channels {r['shadow_mroi']:.3f} (equal to {r['kkt_relative_gap']:.1e})"
        if r["shadow_mroi"] is not None else "every channel is held by a constraint"
    )
    co = r["carry_over"]
    lines = [
        shown.to_string(index=False, float_format=lambda v: f"{v:,.3f}"),
        "",
        f"budget {r['budget_inr'] / 1e7:,.2f} cr over {len(r['horizon']['periods'])} periods ({r['horizon']['periods'][0]} … {r['horizon']['periods'][-1]}), "
        f"reference {r['reference']['kind']}",
        f"GMV {r['gmv_inr'] / 1e7:,.2f} cr; uplift vs the current mix {r['uplift_vs_current_mix_inr'] / 1e7:+,.3f} cr ({r['uplift_vs_current_mix_pct']:+.2f} %){interval}",
        f"carry-over: spend before the horizon adds {co['carry_in_inr'] / 1e7:,.2f} cr; the plan keeps adding {co['plan_carry_out_inr'] / 1e7:,.2f} cr after it",
        kkt + (f"; binding: {', '.join(dict.fromkeys(r['binding_constraints']))}" if r["binding_constraints"] else ""),
        f"{r['starts_reaching_best']} of {len(r['starts'])} starts reached the best plan",
    ]
    return "\n".join(lines)
