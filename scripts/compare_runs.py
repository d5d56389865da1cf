"""Rank MLflow runs without the UI: a top-k table of metrics and the params that differ between runs.

    python scripts/compare_runs.py                     # every training run in experiments/mlflow.db, by test.r2
    python scripts/compare_runs.py --sweep latest      # the latest sweep's trials, by the sweep's objective
    python scripts/compare_runs.py --sweep <parent run id> --metric walk_forward.pooled.mape --direction minimize -k 5

Prints the table and saves it as CSV (``--out``, default ``experiments/compare_runs.csv``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from nam_mmm.entry import REPO_ROOT, one_line_errors
from nam_mmm.tracking import runs_table


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--tracking-uri", default=f"sqlite:///{REPO_ROOT / 'experiments/mlflow.db'}", help="MLflow backend store URI")
    p.add_argument("--experiment", default="nam-mmm", help="MLflow experiment name")
    p.add_argument("--sweep", default=None, help="a sweep's parent run id, or 'latest'; default: all training runs")
    p.add_argument("--metric", default=None, help="ranking metric (default: the sweep's objective, else test.r2)")
    p.add_argument("--direction", choices=["maximize", "minimize"], default=None, help="ranking direction (default: the sweep's)")
    p.add_argument("-k", "--top-k", type=int, default=10, help="rows to show and save")
    p.add_argument("--out", type=Path, default=REPO_ROOT / "experiments/compare_runs.csv", help="CSV file to write")
    return p.parse_args(argv)


@one_line_errors
def main(argv: list[str] | None = None) -> pd.DataFrame:
    import logging

    logging.getLogger("mlflow").setLevel(logging.WARNING)  # the store's INFO lines are not results
    args = parse_args(argv)
    table, ctx = runs_table(args.tracking_uri, args.experiment, args.sweep, args.metric, args.direction, args.top_k)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out, index=False)
    where = f"sweep {ctx['sweep']}" if "sweep" in ctx else f"experiment '{ctx['experiment']}'"
    print(f"{where}: top {len(table)} of {ctx['runs']} runs by {ctx['metric']} ({ctx['direction']})")
    shown = table.assign(run_id=table["run_id"].str[:8]) if len(table) else table
    if "failure" in shown:
        shown["failure"] = shown["failure"].fillna("").str.slice(0, 60)
    with pd.option_context("display.width", 250, "display.max_columns", 40, "display.max_colwidth", 40):
        print(shown.to_string(index=False, float_format=lambda v: f"{v:.4g}") if len(shown) else "(no runs)")
    print(f"\nsaved: {args.out}")
    return table


if __name__ == "__main__":
    main(sys.argv[1:])
