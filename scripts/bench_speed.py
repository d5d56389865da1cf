"""Speed and memory of one full-batch training step for 10 / 100 / 1000 SKUs × 104 weeks × ~20 features.

    python scripts/bench_speed.py                 # writes experiments/bench/speed.md
    python scripts/bench_speed.py --skus 10 100   # a subset

Each (SKUs, threads) case runs in its own process so peak memory (max RSS) is that case's alone. A step is
what training does per epoch: forward over every row, the composite loss (fit + curve-grid penalties),
backward, Adam update. Timing is the median of ``--steps`` steps after ``--warmup`` warm-up steps.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

FEATURES = [
    "price", "cross_price", "discount", "promo_days", "promo_flag", "nps", "nps_lag1", "nps_change",
    "month_sin", "month_cos", "festive", "time_index", "price_index", "cross_price_index",
]  # 14 scalar features + 5 media channels = 19 model features
ROLES = {
    "own_price": {"direction": "decreasing", "bounds": [-3.0, -0.5]},
    "cross_price": {"direction": "increasing", "bounds": [0.1, 0.8]},
    "discount": {"direction": "increasing"},
    "promo": {"direction": "increasing"},
    "media": {"direction": "increasing", "concave": True},
    "brand_health": {"direction": "none"},
    "seasonality": {"direction": "none", "component": "linear"},
    "trend": {"direction": "none", "component": "linear"},
    "control": {"direction": "none"},
}


def one_case(n_skus: int, threads: int, steps: int, warmup: int, media: str) -> dict:
    import torch

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    from nam_mmm.data.features.table import build_features
    from nam_mmm.data.folds.datamodule import PanelDataModule
    from nam_mmm.data.folds.splitters import HoldoutSplitter
    from nam_mmm.data.quality.cleaning import prepare_panel
    from nam_mmm.data.sources.synthetic import load_synthetic
    from nam_mmm.training.loss import CompositeLoss
    from nam_mmm.training.module import NAMModule
    from nam_mmm.training.runner import ModelSettings, model_config

    skus_per_brand = min(n_skus, 20)
    panel = prepare_panel(load_synthetic(n_brands=n_skus // skus_per_brand, skus_per_brand=skus_per_brand, n_periods=104, seed=1))
    table = build_features(panel, {"model_features": FEATURES})
    dm = PanelDataModule(table, HoldoutSplitter(0.1, 0).split(panel.periods)[0])
    settings = ModelSettings(media_response=media)
    module = NAMModule(model_config(dm, settings, {"mode": "hard", "roles": ROLES}))
    model, loss = module.model, CompositeLoss()
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    batch = dm.splits["train"]
    times = []
    for i in range(warmup + steps):
        t0 = time.perf_counter()
        opt.zero_grad()
        out = model(batch["x"], batch["media"], batch["brand"], batch["sku"])
        terms = loss(model, out, batch, i)
        terms["total"].backward()
        opt.step()
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    return {
        "skus": n_skus,
        "threads": threads,
        "rows": int(batch["x"].shape[0]),
        "features": len(model.slots),
        "parameters": sum(p.numel() for p in model.parameters()),
        "ms_per_step": 1000 * statistics.median(times),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--skus", type=int, nargs="+", default=[10, 100, 1000])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--media", default="hill", help="media response family")
    ap.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "experiments" / "bench" / "speed.md"))
    ap.add_argument("--case", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.case:  # child process: one case, JSON on stdout
        n, t = map(int, args.case.split(","))
        print(json.dumps(one_case(n, t, args.steps, args.warmup, args.media)))
        return
    rows = []
    for n in args.skus:
        for t in args.threads:
            cmd = [sys.executable, __file__, "--case", f"{n},{t}", "--steps", str(args.steps), "--warmup", str(args.warmup), "--media", args.media]
            res = subprocess.run(cmd, capture_output=True, text=True, check=True)
            row = json.loads(res.stdout.strip().splitlines()[-1])
            rows.append(row)
            print(f"{n:>5} SKUs, {t} thread(s): {row['ms_per_step']:.1f} ms/step, peak RSS {row['peak_rss_mb']:.0f} MB", flush=True)
    base = {r["threads"]: r for r in rows if r["skus"] == min(args.skus)}
    lines = [
        "# Training-step speed and memory",
        "",
        f"`python scripts/bench_speed.py` — {time.strftime('%Y-%m-%d')}, {platform.processor() or platform.machine()}, "
        f"{__import__('os').cpu_count()} cores, torch {__import__('torch').__version__}, media response `{args.media}`.",
        "One full-batch step = forward over all rows + composite loss (fit and curve-grid penalties) + backward + Adam.",
        f"Median of {args.steps} steps after {args.warmup} warm-up steps; peak RSS of the whole process (data generation included).",
        "",
        "| SKUs | weeks | rows | features | parameters | threads | ms / step | ms / step per SKU | × time vs smallest | peak RSS (MB) |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        rel = r["ms_per_step"] / base[r["threads"]]["ms_per_step"]
        lines.append(
            f"| {r['skus']} | 104 | {r['rows']} | {r['features']} | {r['parameters']:,} | {r['threads']} | {r['ms_per_step']:.1f} | "
            f"{r['ms_per_step'] / r['skus']:.2f} | {rel:.1f} | {r['peak_rss_mb']:.0f} |"
        )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n")
    print(f"written {out}")


if __name__ == "__main__":
    main()
