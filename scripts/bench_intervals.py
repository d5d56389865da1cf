"""Coverage of the block-bootstrap intervals on the recovery suite: do the 90 % intervals hold the truth?

    python scripts/bench_intervals.py                                   # 7 scenarios × seeds 1 2 3, 20 refits each
    python scripts/bench_intervals.py --scenarios strong_separated --seeds 1 --resamples 10 --out /tmp/iv.md
    python scripts/bench_intervals.py --processes 2 --epochs 600        # refits in 2 processes, fewer epochs

For every generator panel (:data:`nam_mmm.evaluation.recovery_suite.SCENARIOS`) the script does in one process what
``python train.py data=recovery data.source.scenario=<s> data.source.seed=<n> validation=walk_forward`` does (the
fold plan of :func:`~nam_mmm.evaluation.recovery_suite.fold_plan`, the run's own builders from ``nam_mmm.entry``),
then :func:`nam_mmm.evaluation.intervals.bootstrap_intervals`: refits on moving-block resamples of the last fold's
window combined with the fold spread. It reports, per scenario and over all, the share of intervals that hold the
true value (per-SKU own-price elasticity; per-channel ROI, channels the generator spent on) and the mean relative
width ``(upper − lower) / |truth|``, next to the run's former interval (``fold_mean_pm_1.96sd``: fold mean ± 1.96 sd).

``--cache DIR`` keeps each panel's replicates and fold-model values (``<panel>.pkl``) and reuses them on a later run
with the same settings, so the report can be rewritten without refitting.
"""

from __future__ import annotations

import argparse
import os
import pickle
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

TARGET = (0.80, 0.95)  # issue 11: the 90 % intervals hold the truth in 80–95 % of cases


def compose(overrides: list[str]):
    """``conf/train.yaml`` composed with ``overrides``, as ``train.py`` would."""
    import nam_mmm.entry  # noqa: F401  registers the resolvers and typed schemas
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return hydra_compose(config_name="train", overrides=overrides)


def run_panel(scenario: str, seed: int, args, workdir: Path) -> dict:
    """Walk-forward fit and bootstrap of one panel: the run's tables, the fold-interval tables, the interval info."""
    import lightning as L  # noqa: F401
    import torch
    from omegaconf import OmegaConf

    from nam_mmm.entry import _builders, _select_media_shrinkage, load_table, make_splitter, quiet_lightning
    from nam_mmm.evaluation.intervals import IntervalConfig, bootstrap_intervals, choice_allowance
    from nam_mmm.evaluation.recovery_suite import fold_plan, scenario_config
    from nam_mmm.evaluation.run_result import summarize_run
    from nam_mmm.evaluation.walk_forward import AcceptanceCriteria
    from nam_mmm.training.walk_forward import run_folds

    quiet_lightning()
    torch.set_num_threads(1)
    cfg_s = scenario_config(scenario, seed)
    plan = fold_plan(cfg_s.n_periods, cfg_s.freq)
    overrides = [
        "data=recovery", f"data.source.scenario={scenario}", f"data.source.seed={seed}", "validation=walk_forward", "logger=none",
        *[f"data.walk_forward.{k}={v}" for k, v in plan.items()],
        *([f"trainer.max_epochs={args.epochs}"] if args.epochs else []),
        *args.overrides,
    ]
    cfg = compose(overrides)
    started = time.perf_counter()
    table = load_table(cfg.data)
    folds = make_splitter(cfg.validation).split(table.panel.periods)
    penalty = choice_allowance(_select_media_shrinkage(cfg, table, folds))  # loss.lambda_media: cv, as train.py chooses it
    make_module, make_trainer = _builders(cfg, table, len(folds), [], [])
    ckpt = workdir / f"{scenario}_{seed}"
    ckpt.mkdir(parents=True, exist_ok=True)
    fold_results = run_folds(table, folds, make_module, make_trainer, lambda f: ckpt / f"fold_{f.index}.ckpt", seed=int(cfg.seed), batch_size=cfg.batch_size)
    criteria = AcceptanceCriteria(**OmegaConf.to_container(cfg.validation.acceptance, resolve=True))
    result = summarize_run(fold_results, table.panel.truth, criteria)
    fold_seconds = time.perf_counter() - started
    iv_cfg = IntervalConfig(resamples=args.resamples, block_length=args.block_length, processes=args.processes, progress=not args.no_progress)
    tables = bootstrap_intervals(result, table, make_module, make_trainer, iv_cfg, seed=int(cfg.seed), batch_size=cfg.batch_size, penalty=penalty)
    return {
        "scenario": scenario,
        "seed": seed,
        "truth": {k: table.panel.truth[k] for k in ("own_price_elasticity", "roi")},
        "fold_elasticities": result.elasticities,  # the run's point tables with the fold interval
        "fold_roi": result.roi,
        "boot_elasticities": tables.boot.elasticities,  # the raw inputs of the interval (recomputed in the report)
        "boot_roi": tables.boot.roi,
        "members_el": tables.members_el,
        "members_roi": tables.members_roi,
        "penalty": penalty,  # the media penalty's allowance (None: the penalty was a number)
        "lambda_media": float(cfg.loss.lambda_media),
        "level": iv_cfg.level,
        "info": tables.info,
        "fold_seconds": fold_seconds,
        "folds": len(folds),
        "overrides": overrides,
    }


def with_intervals(panel: dict, penalty: bool = True) -> dict:
    """The panel's bootstrap tables, recomputed from its cached replicates and fold-model values with the current
    :func:`nam_mmm.evaluation.intervals.interval_tables`; ``penalty=False`` leaves the media penalty's allowance out."""
    from nam_mmm.evaluation.intervals import interval_tables

    el, roi = interval_tables(
        panel["fold_elasticities"], panel["fold_roi"], panel["boot_elasticities"], panel["boot_roi"], panel["level"], panel["members_el"], panel["members_roi"],
        panel.get("penalty") if penalty else None,
    )
    return {**panel, "elasticities": el, "roi": roi}


def coverage_rows(panel: dict) -> pd.DataFrame:
    """One row per (quantity, unit): truth, estimate, the three intervals (``bootstrap``; ``no_penalty``: the same
    without the media penalty's allowance; ``fold``) and whether each holds the truth."""
    bare = with_intervals(panel, penalty=False)
    panel = with_intervals(panel)
    rows = []
    own = panel["truth"]["own_price_elasticity"]
    for kind, el in (("bootstrap", panel["elasticities"]), ("no_penalty", bare["elasticities"]), ("fold", panel["fold_elasticities"])):
        e = el[(el["level"] == "sku") & (el["feature"] == "price")]
        for r in e.itertuples():
            if r.unit in own:
                rows.append({"kind": kind, "quantity": "own_price_elasticity", "unit": r.unit, "truth": own[r.unit], "estimate": r.elasticity, "lower": r.lower, "upper": r.upper})
    roi_truth = panel["truth"]["roi"]
    for kind, roi in (("bootstrap", panel["roi"]), ("no_penalty", bare["roi"]), ("fold", panel["fold_roi"])):
        for r in roi.itertuples():
            t = roi_truth.get(r.channel, np.nan)
            if np.isfinite(t) and t != 0:
                rows.append({"kind": kind, "quantity": "roi", "unit": r.channel, "truth": t, "estimate": r.roi, "lower": r.roi_lower, "upper": r.roi_upper})
    out = pd.DataFrame(rows)
    out["covered"] = (out["lower"] <= out["truth"]) & (out["truth"] <= out["upper"])
    out["rel_width"] = (out["upper"] - out["lower"]) / out["truth"].abs()
    return out.assign(scenario=panel["scenario"], seed=panel["seed"])


def code_version() -> str:
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "nam_mmm", "conf", "scripts/bench_intervals.py"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return "code: not a git checkout"
    changed = [line[3:] for line in dirty.splitlines()]
    return f"code: commit {head}" + (f", with uncommitted changes in {', '.join(changed)}" if changed else " (clean)")


def summary_table(cov: pd.DataFrame) -> pd.DataFrame:
    """Coverage and mean relative width per scenario × quantity and overall, bootstrap next to the fold interval."""
    def agg(g: pd.DataFrame) -> pd.Series:
        b, f, bare = g[g["kind"] == "bootstrap"], g[g["kind"] == "fold"], g[g["kind"] == "no_penalty"]
        return pd.Series(
            {
                "n": len(b),
                "coverage": b["covered"].mean(),
                "rel. width": b["rel_width"].mean(),
                "median rel. error": ((b["estimate"] - b["truth"]).abs() / b["truth"].abs()).median(),
                "coverage w/o penalty allowance": bare["covered"].mean(),
                "rel. width w/o penalty allowance": bare["rel_width"].mean(),
                "fold-interval coverage": f["covered"].mean(),
                "fold-interval rel. width": f["rel_width"].mean(),
            }
        )

    per = cov.groupby(["scenario", "quantity"], sort=False).apply(agg, include_groups=False).reset_index()
    overall = cov.groupby("quantity", sort=False).apply(agg, include_groups=False).reset_index().assign(scenario="**all**")
    return pd.concat([per, overall], ignore_index=True)


def main() -> None:
    from nam_mmm.evaluation.recovery_suite import DESCRIPTIONS, SCENARIOS

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("overrides", nargs="*", help="extra Hydra overrides for every run")
    parser.add_argument("--scenarios", nargs="*", default=None, help="scenario names (default: all)")
    parser.add_argument("--seeds", nargs="*", type=int, default=[1, 2, 3])
    parser.add_argument("--selection-seeds", nargs="*", type=int, default=[], help="seeds reported apart, as the ones the interval rule was chosen on (e.g. 4)")
    parser.add_argument("--resamples", type=int, default=20, help="block-bootstrap refits per panel")
    parser.add_argument("--block-length", type=int, default=None, help="periods per block (default: auto, n^(1/3))")
    parser.add_argument("--epochs", type=int, default=None, help="trainer.max_epochs (default: the data config's 1500, early stopping)")
    parser.add_argument("--processes", type=int, default=1, help="refits in parallel processes")
    parser.add_argument("--out", type=Path, default=ROOT / "experiments" / "bench" / "intervals.md")
    parser.add_argument("--cache", type=Path, default=None, help="keep / reuse each panel's replicates here")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args()
    scenarios = args.scenarios or list(SCENARIOS)
    unknown = [s for s in scenarios if s not in SCENARIOS]
    if unknown:
        sys.exit(f"error: unknown scenario(s) {', '.join(unknown)} (known: {', '.join(SCENARIOS)})")
    if args.cache:
        args.cache.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    panels, failures, cached_n = [], [], 0
    key = f"v2_r{args.resamples}_b{args.block_length}_e{args.epochs}_{'_'.join(args.overrides)}"  # v2: with the media penalty's cv choice
    with tempfile.TemporaryDirectory() as tmp:
        for scenario in scenarios:
            for seed in [*args.selection_seeds, *args.seeds]:
                cached = args.cache / f"{scenario}_s{seed}_{key}.pkl" if args.cache else None
                if cached is not None and cached.exists():
                    panel = pickle.loads(cached.read_bytes())
                    cached_n += 1
                    print(f"{scenario} seed {seed}: cached ({cached.name})", flush=True)
                else:
                    try:
                        panel = run_panel(scenario, seed, args, Path(tmp))
                    except Exception as err:  # noqa: BLE001  one failed panel is reported, the rest go on
                        failures.append(f"{scenario} seed {seed}: {type(err).__name__}: {err}".splitlines()[0])
                        print(f"{scenario} seed {seed}: FAILED {failures[-1]}", flush=True)
                        continue
                    if cached is not None:
                        cached.write_bytes(pickle.dumps(panel))
                cov = coverage_rows(panel)
                b = cov[cov["kind"] == "bootstrap"]
                print(
                    f"{scenario} seed {seed}: folds {panel['fold_seconds']:.0f} s, bootstrap {panel['info']['seconds']:.0f} s; "
                    + ", ".join(f"{q} coverage {g['covered'].mean():.2f} width {g['rel_width'].mean():.2f}" for q, g in b.groupby("quantity")),
                    flush=True,
                )
                panels.append(panel)
    wall = time.perf_counter() - started
    write_report(args, panels, failures, scenarios, wall, DESCRIPTIONS, cached_n)


def _fmt(v) -> str:
    if isinstance(v, str):
        return v
    if pd.isna(v):
        return "n/a"
    return f"{v:.2f}" if not float(v).is_integer() else f"{int(v)}"


def write_report(args, panels: list[dict], failures: list[str], scenarios: list[str], wall: float, descriptions: dict, cached_n: int = 0) -> None:
    cmd = "python scripts/bench_intervals.py"
    if args.scenarios:
        cmd += " --scenarios " + " ".join(args.scenarios)
    if args.seeds != [1, 2, 3]:
        cmd += " --seeds " + " ".join(map(str, args.seeds))
    if args.selection_seeds:
        cmd += " --selection-seeds " + " ".join(map(str, args.selection_seeds))
    if args.resamples != 20:
        cmd += f" --resamples {args.resamples}"
    if args.block_length:
        cmd += f" --block-length {args.block_length}"
    if args.epochs:
        cmd += f" --epochs {args.epochs}"
    if args.processes != 1:
        cmd += f" --processes {args.processes}"
    if args.overrides:
        cmd += " " + " ".join(args.overrides)
    lines = [
        "# Interval coverage on the recovery suite",
        "",
        f"Command: `{cmd}`. Host: {platform.machine()}, {os.cpu_count()} cores (shared with other work), Python "
        f"{platform.python_version()}; total wall time {wall / 60:.1f} min"
        + (f" ({cached_n} of {len(panels)} panels reused from `--cache`: their fits ran earlier; fit and bootstrap seconds below are "
           f"those measured then, {sum(p['fold_seconds'] + p['info']['seconds'] for p in panels) / 60:.0f} min in all)" if cached_n else "")
        + f"; {code_version()}.",
        "",
        "Per panel: the walk-forward of `python train.py data=recovery data.source.scenario=<s> data.source.seed=<n> "
        "validation=walk_forward` (four test blocks at the end of the calendar, the fold plan of "
        "`recovery_suite.fold_plan`, every other setting at its default"
        + (f", `trainer.max_epochs={args.epochs}`" if args.epochs else "")
        + (f", overrides `{' '.join(args.overrides)}`" if args.overrides else "")
        + f"), then {args.resamples} refits on moving-block bootstrap resamples of the last fold's window "
        + (f"(block length {args.block_length} periods)" if args.block_length else "(block length round(n^(1/3)) periods)")
        + ", each scored on every period (`nam_mmm.evaluation.intervals.bias_aware_interval`: around the fold-ensemble mean, the "
        "half-widths of the basic bootstrap interval of the last window's fit, 1.645 sd across the fold models and the bias "
        "allowance |mean of the refits − last window's fit| + |ensemble mean − last window's fit| and, where `loss.lambda_media: cv` "
        "chose the media penalty (the recovery data config), the penalty allowance `intervals.penalty_allowance`: on the side they "
        "move to, how far the estimates move on the inner window under the other grid penalties whose inner forecast error was "
        "within the tolerance, added in quadrature). `w/o penalty allowance`: the same intervals without that term. "
        "Nominal level 90 %.",
        "",
        "Coverage = share of intervals holding the true value: own-price elasticity per SKU (`elasticities.csv`, level `sku`, "
        "feature `price`) and ROI per channel (`roi.csv`; channels with a true ROI of 0 or none are left out). Relative width = "
        "mean (upper − lower) / |truth|. Median rel. error = median |estimate − truth| / |truth| of the point estimate. "
        "Fold interval = the run folder's former walk-forward interval, fold mean ± 1.96 sd (`fold_mean_pm_1.96sd`), on the "
        "same runs. Target: coverage in [0.80, 0.95].",
        "",
    ]
    if not panels:
        lines += ["No panel finished.", ""]
    else:
        every = pd.concat([coverage_rows(p) for p in panels], ignore_index=True)
        cov = every[every["seed"].isin(args.seeds)]
        table = summary_table(cov)
        lines += [f"## Coverage and width (seeds {', '.join(map(str, args.seeds))})", "", table.map(_fmt).to_markdown(index=False), ""]
        chosen = every[every["seed"].isin(args.selection_seeds)]
        if len(chosen):
            sel = summary_table(chosen)
            lines += [
                f"## The seeds the rule was chosen on (seeds {', '.join(map(str, args.selection_seeds))}; not part of the figures above)",
                "",
                sel[sel["scenario"] == "**all**"].map(_fmt).to_markdown(index=False),
                "",
            ]
        allrows = table[table["scenario"] == "**all**"].set_index("quantity")
        lines.append("Done-when (overall coverage of the 90 % intervals in [0.80, 0.95]):")
        lines.append("")
        for q, r in allrows.iterrows():
            ok = TARGET[0] <= r["coverage"] <= TARGET[1]
            lines.append(f"- {q}: {r['coverage']:.3f} over {int(r['n'])} intervals — {'met' if ok else 'MISSED'}")
        lines.append("")
        per_panel = every[every["kind"] == "bootstrap"].groupby(["scenario", "seed", "quantity"])["covered"].mean().unstack("quantity").reset_index()
        timing = pd.DataFrame(
            [{"scenario": p["scenario"], "seed": p["seed"], "folds s": p["fold_seconds"], "bootstrap s": p["info"]["seconds"],
              "refits": p["info"]["resamples"], "block": p["info"]["block_length"], "window": p["info"]["window"],
              "lambda_media": p.get("lambda_media", float("nan")),
              "admissible": ", ".join(f"{g:g}" for g in p["penalty"].admissible) if p.get("penalty") is not None else "—"} for p in panels]
        )
        lines += ["Per panel (coverage) and cost:", "", per_panel.merge(timing, on=["scenario", "seed"]).map(_fmt).to_markdown(index=False), ""]
        lines += ["Scenarios:", ""] + [f"- `{s}`: {descriptions[s]}" for s in scenarios] + [""]
    if failures:
        lines += ["## Panels that failed", ""] + [f"- {f}" for f in failures] + [""]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines))
    print(f"\nwrote {args.out} ({wall / 60:.1f} min)")


if __name__ == "__main__":
    main()
