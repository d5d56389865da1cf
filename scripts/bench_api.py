"""Throughput of the HTTP API: requests/s and p50/p95 latency of ``POST /predict`` for 1 row and 1,000 rows.

    python scripts/bench_api.py                              # trains a synthetic model (20 SKUs × 104 weeks) first
    python scripts/bench_api.py --model-dir experiments/runs/<data>/<timestamp>
    python scripts/bench_api.py --requests 200 --big-requests 30 --concurrency 1 4

The server is the real one (``scripts/serve.py`` in a child process, one uvicorn worker, bound to 127.0.0.1 on a
free port, monitor logging on); the client sends a fixed number of requests per case (bounded in count and in
time), from 1 or more threads, and the server is stopped at the end. The report (``--out``, default
``experiments/bench/api.md``) holds what was measured on this host, the command and the model.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def train_model(out: Path, epochs: int) -> Path:
    """A synthetic run of the default size (4 brands × 5 SKUs × 104 weeks), holdout, ``epochs`` epochs."""
    cmd = [sys.executable, str(REPO / "train.py"), "logger=none", f"trainer.max_epochs={epochs}", f"hydra.run.dir={out}"]
    subprocess.run(cmd, cwd=REPO, check=True, stdout=subprocess.DEVNULL)
    return out


def start_server(model_dir: Path, port: int, logs: Path) -> subprocess.Popen:
    cmd = [sys.executable, str(REPO / "scripts/serve.py"), f"model_dir={model_dir}", f"port={port}", f"hydra.run.dir={logs}", "log_level=warning"]
    return subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=open(logs.parent / "server.err", "w"), start_new_session=True)


def wait_ready(http, proc: subprocess.Popen, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"error: the server exited with code {proc.returncode}")
        try:
            if http.get("/health").status_code == 200:
                return
        except Exception:
            pass
        time.sleep(0.2)
    raise SystemExit(f"error: the server did not answer /health within {timeout:g} s")


def run_case(base_url: str, body: bytes, n: int, threads: int, max_seconds: float) -> dict:
    """``n`` POST /predict requests (at most ``max_seconds``) from ``threads`` threads, each with its own client."""
    import httpx

    latencies: list[float] = []
    lock = threading.Lock()
    deadline = time.monotonic() + max_seconds
    counter = iter(range(n))

    def worker() -> None:
        with httpx.Client(base_url=base_url, timeout=60, headers={"content-type": "application/json"}) as http:
            for _ in iter(lambda: next(counter, None), None):
                if time.monotonic() > deadline:
                    return
                t0 = time.perf_counter()
                r = http.post("/predict", content=body)
                dt = time.perf_counter() - t0
                if r.status_code != 200:
                    raise SystemExit(f"error: /predict answered {r.status_code}: {r.text[:200]}")
                with lock:
                    latencies.append(dt)

    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        for f in [pool.submit(worker) for _ in range(threads)]:
            f.result()
    wall = time.perf_counter() - started
    lat = np.array(latencies) * 1000.0
    return {"requests": len(lat), "wall_s": wall, "rps": len(lat) / wall, "p50_ms": float(np.percentile(lat, 50)), "p95_ms": float(np.percentile(lat, 95)), "mean_ms": float(lat.mean())}


def in_process(model_dir: Path, one: list[dict], big: list[dict], repeats: int = 20) -> dict:
    """The model's own cost without HTTP: Predictor.predict and explain (what /predict runs) on the same rows."""
    import pandas as pd
    import torch

    from nam_mmm.serving.artifact import ModelArtifact, resolve_model_dir

    torch.set_num_threads(1)
    art = ModelArtifact.load(resolve_model_dir(model_dir))
    out = {}
    for name, rows in (("1 row", one), ("1,000 rows", big)):
        df = pd.DataFrame(rows)
        for what, fn in (("predict", art.predictor.predict), ("explain", art.predictor.explain)):
            fn(df)
            t0 = time.perf_counter()
            for _ in range(repeats):
                fn(df)
            out[(name, what)] = (time.perf_counter() - t0) / repeats * 1000.0
    return out


def _seq(results: list[dict], case: str) -> dict:
    return min((r for r in results if r["case"] == case), key=lambda r: r["threads"])


def _par(results: list[dict], case: str, threads: int) -> dict:
    return next(r for r in results if r["case"] == case and r["threads"] == threads)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model-dir", type=Path, help="run folder, artifact or store (default: train a synthetic model)")
    ap.add_argument("--epochs", type=int, default=60, help="epochs of the synthetic model trained when --model-dir is not given")
    ap.add_argument("--requests", type=int, default=300, help="requests per 1-row case")
    ap.add_argument("--big-requests", type=int, default=40, help="requests per 1,000-row case")
    ap.add_argument("--concurrency", type=int, nargs="+", default=[1, 4], help="client threads per case")
    ap.add_argument("--max-seconds", type=float, default=120.0, help="time cap per case")
    ap.add_argument("--out", type=Path, default=REPO / "experiments/bench/api.md")
    args = ap.parse_args()

    import httpx

    from nam_mmm.serving.artifact import ModelArtifact, resolve_model_dir

    work = Path(tempfile.mkdtemp(prefix="bench_api_"))
    model_dir = args.model_dir or train_model(work / "run", args.epochs)
    art = ModelArtifact.load(resolve_model_dir(model_dir))
    ref = art.reference.drop(columns=["gmv", "fit_weight"])
    periods = sorted(ref["period"].unique())
    skus = len(art.predictor.spec.skus)
    need = -(-1000 // skus)
    if len(periods) < need:
        raise SystemExit(f"error: the model has {len(periods)} periods × {skus} SKUs; 1,000 distinct rows need {need} periods")
    big = ref[ref["period"].isin(periods[-need:])].head(1000).to_dict("records")
    one = ref[ref["period"] == periods[-1]].head(1).to_dict("records")
    bodies = {"1 row": json.dumps({"rows": one}).encode(), "1,000 rows": json.dumps({"rows": big}).encode()}

    port = free_port()
    proc = start_server(model_dir, port, work / "serve")
    results = []
    try:
        base = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base, timeout=60) as http:
            wait_ready(http, proc)
            for name, body in bodies.items():  # warm-up: first calls import and allocate
                for _ in range(3):
                    http.post("/predict", content=body, headers={"content-type": "application/json"})
        for name, body in bodies.items():
            n = args.requests if name == "1 row" else args.big_requests
            for threads in args.concurrency:
                r = run_case(base, body, n, threads, args.max_seconds)
                results.append({"case": name, "threads": threads, "body_kb": len(body) / 1024, **r})
                print(f"{name:>10} × {threads} thread(s): {r['rps']:.1f} req/s, p50 {r['p50_ms']:.1f} ms, p95 {r['p95_ms']:.1f} ms ({r['requests']} requests)")
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=20)
    model_cost = in_process(model_dir, one, big)

    import torch

    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() else platform.processor()
    meta = art.metadata
    cmd = "python scripts/bench_api.py " + " ".join(sys.argv[1:])
    lines = [
        "# HTTP API throughput",
        "",
        f"Measured by `{cmd.strip()}` on {time.strftime('%Y-%m-%d')}: host {os.cpu_count()} cores ({cpu}), shared with other jobs; "
        f"Python {platform.python_version()}, torch {torch.__version__}, one uvicorn worker started by `scripts/serve.py` on 127.0.0.1, "
        "monitor logging on (every row appended to predictions.jsonl, drift tests every 100 rows), client threads in a separate process.",
        "",
        f"Model: {meta['mode']} run on `{meta['data']['name']}`, {meta['members']} member(s), {skus} SKUs × {meta['data']['n_periods']} periods, "
        f"{len(meta['inputs'])} request inputs, {len(meta['channels'])} channels. Each `/predict` response carries GMV, the interval, "
        "the per-feature log contributions and each channel's rupee contribution (one extra forward pass per channel).",
        "",
        "| request | client threads | body KiB | requests | requests/s | p50 ms | p95 ms | mean ms |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
        *[f"| {r['case']} | {r['threads']} | {r['body_kb']:.1f} | {r['requests']} | {r['rps']:.1f} | {r['p50_ms']:.1f} | {r['p95_ms']:.1f} | {r['mean_ms']:.1f} |" for r in results],
        "",
        "The model's own cost of the same rows in-process (no HTTP, no JSON, one torch thread; mean of 20 calls):",
        "",
        "| rows | Predictor.predict ms | Predictor.explain ms (what /predict runs) |",
        "| --- | --- | --- |",
        *[f"| {name} | {model_cost[(name, 'predict')]:.1f} | {model_cost[(name, 'explain')]:.1f} |" for name in ("1 row", "1,000 rows")],
        "",
        "What the numbers say (from the tables above): with one client thread, HTTP, request validation (pydantic, per "
        "row and field), the JSON response and the monitor's log lines add "
        + ", ".join(f"{_seq(results, name)['p50_ms'] - model_cost[(name, 'explain')]:.0f} ms to the {name} p50 ({model_cost[(name, 'explain')]:.0f} ms in the model's explain)" for name in ("1 row", "1,000 rows"))
        + f". With {max(args.concurrency)} client threads on {os.cpu_count()} cores the requests/s go from "
        + ", ".join(f"{_seq(results, name)['rps']:.1f} to {_par(results, name, max(args.concurrency))['rps']:.1f} ({name})" for name in ("1 row", "1,000 rows"))
        + ": one uvicorn worker runs one request at a time through the model, and the client threads compete with it for the same cores, so more threads than cores raise the latency without adding throughput.",
        "",
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
