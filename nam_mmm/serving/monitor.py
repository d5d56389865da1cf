"""The live model's monitor: prediction and actuals logs, input drift, online MAPE and alerts.

* Every served row is logged (``predictions.jsonl``: time, request id, model version, A/B arm, period, SKU,
  inputs, predicted GMV); actuals posted later (``actuals.jsonl``) are matched to the latest prediction of the
  same SKU and period, giving absolute percentage errors.
* Drift: the last ``window`` served rows of each input against the training rows of the artifact
  (``reference.csv``). A continuous input is tested with the two-sample Kolmogorov–Smirnov test (drift when its
  p-value is below ``ks_alpha``); a discrete one (at most ``discrete_max_levels`` integer levels in training, and
  the SKU mix) with the population stability index over the training levels (drift when PSI exceeds
  ``psi_max``). Tests run once ``min_rows`` rows are in the window, every ``check_every`` rows and on request.
* Online MAPE over the last ``window`` matched rows, once ``min_actuals`` exist; above ``mape_max`` is an alert.
* An alert is raised when a check crosses its threshold (not again while it stays crossed): logged as a warning
  and appended to ``alerts.jsonl``; when the check is back under its threshold a ``resolved`` line follows.

With ``dir`` unset nothing is written and the monitor keeps its state in memory only. A monitor started on a
folder with logs replays them, so a restarted server (and the retrainer) see the same online MAPE.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import OrderedDict, deque
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

PREDICTIONS, ACTUALS, ALERTS = "predictions.jsonl", "actuals.jsonl", "alerts.jsonl"
MAX_KEYS = 200_000  # (period, SKU) predictions kept for matching actuals; the oldest are forgotten first


@dataclass
class MonitorConfig:
    """Thresholds and windows (``monitor`` in ``conf/serve.yaml``)."""

    dir: str | None = None  # folder of predictions.jsonl, actuals.jsonl, alerts.jsonl; null = memory only
    window: int = 500  # served rows (drift) and matched actuals (MAPE) the checks look at
    min_rows: int = 50  # served rows before the drift tests run
    check_every: int = 100  # served rows between drift tests
    ks_alpha: float = 0.01  # continuous input: drift when the KS test's p-value is below this
    psi_max: float = 0.2  # discrete input and SKU mix: drift when the PSI is above this
    discrete_max_levels: int = 10  # an input with at most this many integer levels in training is discrete
    mape_max: float = 25.0  # online MAPE (%) above this is an alert
    min_actuals: int = 10  # matched actuals before the online MAPE is judged
    log_inputs: bool = True  # write each row's inputs into predictions.jsonl

    def __post_init__(self) -> None:
        from nam_mmm.errors import ConfigError

        for name in ("window", "min_rows", "check_every", "discrete_max_levels", "min_actuals"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"monitor.{name} must be >= 1, got {getattr(self, name)!r}")
        if not 0 < float(self.ks_alpha) < 1:
            raise ConfigError(f"monitor.ks_alpha must be in (0, 1), got {self.ks_alpha!r}")
        if not float(self.psi_max) > 0 or not float(self.mape_max) > 0:
            raise ConfigError("monitor.psi_max and monitor.mape_max must be > 0")


def psi(reference: np.ndarray, current: np.ndarray, levels: list, eps: float = 1e-4) -> float:
    """Population stability index ``Σ (c − r) · ln(c / r)`` of the level shares (unseen levels in one bin)."""
    ref = pd.Series(reference).astype(str)
    cur = pd.Series(current).astype(str)
    keys = [str(v) for v in levels]
    r = np.array([(ref == k).mean() for k in keys] + [(~ref.isin(keys)).mean()])
    c = np.array([(cur == k).mean() for k in keys] + [(~cur.isin(keys)).mean()])
    r, c = np.maximum(r, eps), np.maximum(c, eps)
    return float(np.sum((c - r) * np.log(c / r)))


def _discrete_levels(values: pd.Series, max_levels: int) -> list | None:
    v = pd.to_numeric(values, errors="coerce").dropna().to_numpy(float)
    levels = np.unique(v)
    if len(levels) <= max_levels and np.all(levels == np.round(levels)):
        return [int(x) for x in levels]
    return None


class Monitor:
    """Logs, drift tests, online MAPE and alerts of one served model (thread-safe)."""

    def __init__(self, reference: pd.DataFrame, inputs: list[str], config: MonitorConfig | None = None, model_version: str = "") -> None:
        self.config = config or MonitorConfig()
        self.dir = Path(self.config.dir) if self.config.dir else None
        if self.dir is not None:
            self.dir.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self.model_version = model_version
        self.set_reference(reference, inputs)
        self.window: deque[dict] = deque(maxlen=int(self.config.window))
        self.errors: deque[float] = deque(maxlen=int(self.config.window))
        self.predictions: OrderedDict[tuple[str, str], dict] = OrderedDict()
        self.n_predictions = self.n_actuals = self.n_matched = 0
        self._since_check = 0
        self.active: dict[str, dict] = {}  # alert key -> alert, while the check stays crossed
        self.alerts: deque[dict] = deque(maxlen=200)
        self.last_drift: list[dict] = []
        self.on_match = None  # callback(arm, ape) for the A/B test
        self._replay()

    def set_reference(self, reference: pd.DataFrame, inputs: list[str]) -> None:
        """The training distribution (the artifact's ``reference.csv``) the drift tests compare with."""
        with self._lock:
            self.inputs = list(inputs)
            self.reference = reference
            self.discrete = {c: _discrete_levels(reference[c], int(self.config.discrete_max_levels)) for c in self.inputs if c in reference}
            self.sku_levels = sorted(reference["sku"].astype(str).unique()) if "sku" in reference else []

    # ------------------------------------------------------------------ logging
    def _write(self, name: str, records: list[dict]) -> None:
        if self.dir is None or not records:
            return
        with open(self.dir / name, "a") as f:
            f.write("".join(json.dumps(r, default=float) + "\n" for r in records))

    def record_predictions(self, rows: pd.DataFrame, gmv: np.ndarray, model_version: str, arm: str | None = None, request_id: str | None = None) -> list[dict]:
        """Log served rows (period, sku, inputs) with their predicted GMV; returns alerts raised by the checks."""
        now = time.time()
        periods = rows["period"].astype(str).str.slice(0, 10).to_list()
        skus = rows["sku"].astype(str).to_list()
        cols = [c for c in self.inputs if c in rows]
        values = rows[cols].to_numpy(dtype=float)
        records = []
        with self._lock:
            for i, (p, s) in enumerate(zip(periods, skus, strict=True)):
                entry = {"time": now, "request_id": request_id, "model": model_version, "arm": arm, "period": p, "sku": s, "gmv": float(gmv[i])}
                key = (p, s)
                self.predictions.pop(key, None)
                self.predictions[key] = entry
                inputs = dict(zip(cols, values[i].tolist(), strict=True))
                self.window.append({"sku": s, **inputs})
                records.append({**entry, "inputs": inputs} if self.config.log_inputs else entry)
            while len(self.predictions) > MAX_KEYS:
                self.predictions.popitem(last=False)
            self.n_predictions += len(records)
            self._since_check += len(records)
            self._write(PREDICTIONS, records)
            if len(self.window) >= int(self.config.min_rows) and self._since_check >= int(self.config.check_every):
                return self.check()
        return []

    def record_actuals(self, actuals: pd.DataFrame) -> dict:
        """Match actual GMV (period, sku, gmv) to the logged predictions; returns counts, online MAPE and alerts."""
        now = time.time()
        periods = actuals["period"].astype(str).str.slice(0, 10).to_list()
        skus = actuals["sku"].astype(str).to_list()
        gmv = actuals["gmv"].to_numpy(dtype=float)
        matched, records = [], []
        with self._lock:
            for p, s, y in zip(periods, skus, gmv, strict=True):
                pred = self.predictions.get((p, s))
                rec = {"time": now, "period": p, "sku": s, "gmv": float(y), "matched": pred is not None}
                if pred is not None:
                    ape = abs(pred["gmv"] - y) / y * 100.0
                    rec.update({"predicted": pred["gmv"], "ape": ape, "model": pred["model"], "arm": pred["arm"]})
                    self.errors.append(ape)
                    matched.append(rec)
                    if self.on_match is not None and pred["arm"] is not None:
                        self.on_match(pred["arm"], ape)
                records.append(rec)
            self.n_actuals += len(records)
            self.n_matched += len(matched)
            self._write(ACTUALS, records)
            alerts = self._check_mape()
        return {"received": len(records), "matched": len(matched), "unmatched": len(records) - len(matched), "online_mape": self.online_mape(), "alerts": alerts}

    def _replay(self) -> None:
        """Rebuild the matching table, the window and the errors from the logs in ``dir`` (a restart)."""
        if self.dir is None:
            return
        for name, handle in ((PREDICTIONS, self._replay_prediction), (ACTUALS, self._replay_actual)):
            path = self.dir / name
            if path.exists():
                with open(path) as f:
                    for line in f:
                        try:
                            handle(json.loads(line))
                        except (json.JSONDecodeError, KeyError, TypeError):
                            continue  # a line cut by a crash
        while len(self.predictions) > MAX_KEYS:
            self.predictions.popitem(last=False)

    def _replay_prediction(self, r: dict) -> None:
        key = (r["period"], r["sku"])
        self.predictions.pop(key, None)
        self.predictions[key] = {k: r.get(k) for k in ("time", "request_id", "model", "arm", "period", "sku", "gmv")}
        if "inputs" in r:
            self.window.append({"sku": r["sku"], **r["inputs"]})
        self.n_predictions += 1

    def _replay_actual(self, r: dict) -> None:
        self.n_actuals += 1
        if r.get("matched") and r.get("ape") is not None:
            self.errors.append(float(r["ape"]))
            self.n_matched += 1

    # ------------------------------------------------------------------ checks
    def online_mape(self) -> float | None:
        with self._lock:
            return float(np.mean(self.errors)) if len(self.errors) >= int(self.config.min_actuals) else None

    def drift(self) -> list[dict]:
        """One result per input (and the SKU mix) on the current window; empty before ``min_rows`` rows."""
        from scipy import stats

        with self._lock:
            if len(self.window) < int(self.config.min_rows):
                return []
            current = pd.DataFrame(list(self.window))
            out = []
            for col in self.inputs:
                if col not in current or col not in self.reference:
                    continue
                ref = pd.to_numeric(self.reference[col], errors="coerce").dropna().to_numpy(float)
                cur = current[col].dropna().to_numpy(float)
                if not len(ref) or not len(cur):
                    continue
                levels = self.discrete.get(col)
                if levels is not None:
                    value = psi(ref.astype(int), np.round(cur).astype(int), levels)
                    out.append({"feature": col, "test": "psi", "statistic": value, "p_value": None, "threshold": float(self.config.psi_max), "drift": value > float(self.config.psi_max), "n": len(cur)})
                else:
                    res = stats.ks_2samp(cur, ref)
                    p = float(res.pvalue)
                    out.append({"feature": col, "test": "ks", "statistic": float(res.statistic), "p_value": p, "threshold": float(self.config.ks_alpha), "drift": p < float(self.config.ks_alpha), "n": len(cur)})
            if self.sku_levels:
                value = psi(self.reference["sku"].astype(str).to_numpy(), current["sku"].astype(str).to_numpy(), self.sku_levels)
                out.append({"feature": "sku", "test": "psi", "statistic": value, "p_value": None, "threshold": float(self.config.psi_max), "drift": value > float(self.config.psi_max), "n": len(current)})
            self.last_drift = out
            return out

    def check(self) -> list[dict]:
        """Run the drift tests and the MAPE check now; returns the alerts newly raised."""
        with self._lock:
            self._since_check = 0
            raised = []
            for r in self.drift():
                what = f"p-value {r['p_value']:.3g} < {r['threshold']:g}" if r["test"] == "ks" else f"PSI {r['statistic']:.3g} > {r['threshold']:g}"
                raised += self._transition(f"drift:{r['feature']}", bool(r["drift"]), {"kind": "drift", "feature": r["feature"], "test": r["test"], "statistic": r["statistic"], "p_value": r["p_value"], "threshold": r["threshold"], "message": f"input drift in {r['feature']}: {what} against the training distribution ({r['n']} served rows)"})
            return raised + self._check_mape()

    def _check_mape(self) -> list[dict]:
        mape = self.online_mape()
        if mape is None:
            return []
        limit = float(self.config.mape_max)
        return self._transition("mape", mape > limit, {"kind": "mape", "feature": None, "statistic": mape, "threshold": limit, "message": f"online MAPE {mape:.2f} % above the {limit:g} % limit ({len(self.errors)} matched actuals)"})

    def _transition(self, key: str, crossed: bool, alert: dict) -> list[dict]:
        """An alert when a check crosses its threshold, a ``resolved`` record when it comes back."""
        if crossed and key not in self.active:
            record = {"time": time.time(), "status": "raised", "model": self.model_version, **alert}
            self.active[key] = record
            self.alerts.append(record)
            self._write(ALERTS, [record])
            log.warning("alert: %s", alert["message"])
            return [record]
        if not crossed and key in self.active:
            raised = self.active.pop(key)
            record = {"time": time.time(), "status": "resolved", "model": self.model_version, "kind": raised["kind"], "feature": raised.get("feature"), "statistic": alert["statistic"], "threshold": alert["threshold"], "message": f"resolved: {raised['message']}"}
            self.alerts.append(record)
            self._write(ALERTS, [record])
            log.info("alert resolved: %s", raised["message"])
        return []

    def report(self) -> dict:
        with self._lock:
            return {
                "model": self.model_version,
                "predictions": self.n_predictions,
                "actuals": self.n_actuals,
                "matched": self.n_matched,
                "online_mape": self.online_mape(),
                "window_rows": len(self.window),
                "drift": self.drift(),
                "active_alerts": list(self.active.values()),
                "recent_alerts": list(self.alerts)[-20:],
                "thresholds": asdict(self.config),
            }


def online_mape_from_logs(folder: str | Path, window: int = 500, min_actuals: int = 10) -> tuple[float | None, int]:
    """Online MAPE (%) of the last ``window`` matched actuals in a monitor folder, and how many there were."""
    path = Path(folder) / ACTUALS
    errors: deque[float] = deque(maxlen=int(window))
    if path.exists():
        with open(path) as f:
            for line in f:
                try:
                    r = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if r.get("matched") and r.get("ape") is not None:
                    errors.append(float(r["ape"]))
    return (float(np.mean(errors)) if len(errors) >= int(min_actuals) else None), len(errors)
