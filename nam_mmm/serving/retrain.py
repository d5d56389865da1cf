"""Retraining that never loses the good model (seed §13.1): decide, retrain on the combined data, validate,
and switch the served model only if the new one passes.

``python -m nam_mmm.serving.retrain store=<model store> init_from=<run folder>`` creates a store around a first
model; ``python -m nam_mmm.serving.retrain store=<model store> [new_data=<csv of new periods>] [monitor_dir=<server
logs>] [overrides='[data.source.n_periods=52]'] [force=true]`` (settings: ``conf/retrain.yaml``):

1. **Decide** (:func:`decide`): retrain when the online MAPE from the server's logs is above
   ``policy.max_mape`` (with at least ``policy.min_actuals`` matched actuals), when the data hold at least
   ``policy.min_new_periods`` periods after the model's last training period, or when the model is older than
   ``policy.max_age_days``; ``force=true`` retrains regardless. Every decision is logged in ``history.jsonl``.
2. **Retrain** on the combined data: the served model's resolved ``config.yaml`` with the new data (a CSV of
   new periods is appended to a ``panel_csv`` source's file, rows of the same period and unit replaced by the
   new ones) and the ``overrides``, always under walk-forward validation (the acceptance criteria of
   ``validation.acceptance``, or ``acceptance`` here). Training runs ``train.py`` in a child process into
   ``<store>/retrain/<timestamp>/run``: the server and this process never share its memory, threads or Hydra
   state, a crash or a kill of it cannot touch the store, and ``timeout_s`` bounds it. Folds whose test periods
   all lie after the served model's data are warm-started from the served model (:class:`WarmStart`); the
   others start cold, since the served model has seen their test periods and a warm start would leak them.
3. **Validate**: the new run's walk-forward acceptance verdict (``acceptance.json``) must pass.
4. **Switch** only then: the new artifact is written into ``<store>/models/<version>`` (complete before it is
   renamed into place) and ``current.json`` is replaced atomically; the old artifact stays as it was. The
   report says how far each curve and elasticity moved (Robyn-style refresh drift).

A failed, rejected or killed retraining leaves ``current.json`` and every file under ``models/`` untouched.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import lightning as L
import numpy as np
import pandas as pd

from nam_mmm.errors import ConfigError, NamMMMError
from nam_mmm.serving.artifact import ModelArtifact
from nam_mmm.serving.monitor import online_mape_from_logs
from nam_mmm.serving.store import ModelStore

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass
class RetrainPolicy:
    """When to retrain (``policy`` in ``conf/retrain.yaml``); a ``null`` rule is off."""

    max_mape: float | None = 25.0  # online MAPE (%) above this: retrain
    min_actuals: int = 10  # matched actuals before the MAPE rule applies
    min_new_periods: int | None = 4  # at least this many periods after the model's data: retrain
    max_age_days: float | None = 90.0  # a model trained longer ago than this: retrain


@dataclass
class Decision:
    retrain: bool
    reasons: list[str]
    facts: dict


def decide(policy: RetrainPolicy, metadata: dict, new_periods: int, online_mape: float | None, actuals: int, now: datetime | None = None) -> Decision:
    """Whether to retrain the model described by ``metadata`` (its ``model.json``), and why (or why not)."""
    now = now or datetime.now(timezone.utc)
    trained = datetime.fromisoformat(str(metadata["trained_at"]).replace("Z", "+00:00"))
    age = (now - trained).total_seconds() / 86400.0
    facts = {"online_mape": online_mape, "actuals": actuals, "new_periods": int(new_periods), "age_days": round(age, 3), "model": metadata.get("version")}
    reasons = []
    if policy.max_mape is not None and online_mape is not None and actuals >= int(policy.min_actuals) and online_mape > float(policy.max_mape):
        reasons.append(f"online MAPE {online_mape:.2f} % is above {float(policy.max_mape):g} % ({actuals} matched actuals)")
    if policy.min_new_periods is not None and new_periods >= int(policy.min_new_periods):
        reasons.append(f"{new_periods} new period(s) after {metadata['data']['last_period']} (at least {int(policy.min_new_periods)})")
    if policy.max_age_days is not None and age > float(policy.max_age_days):
        reasons.append(f"the model is {age:.1f} days old (more than {float(policy.max_age_days):g})")
    if not reasons:
        parts = [f"online MAPE {'n/a' if online_mape is None else f'{online_mape:.2f} %'} ({actuals} actuals)", f"{new_periods} new period(s)", f"age {age:.1f} days"]
        reasons.append("no rule fired: " + ", ".join(parts))
        return Decision(False, reasons, facts)
    return Decision(True, reasons, facts)


class WarmStart(L.Callback):
    """Start a fold's model from the served model's weights (the last fold model of its ensemble).

    Only folds whose test periods all lie after ``last_period`` (the served model's last training period) are
    warm-started; earlier folds start cold, because the served model was trained on their test periods.
    Parameters are copied where name and shape agree (a new SKU's parameters start fresh); buffers — the
    fold's own scaling — are never copied.
    """

    def __init__(self, predictor: str, last_period: str) -> None:
        self.predictor = str(predictor)
        self.last_period = pd.Timestamp(last_period)
        self.copied = 0

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        import torch

        fold = getattr(getattr(trainer, "datamodule", None), "fold", None)
        if fold is None or not len(fold.test) or fold.test.min() <= self.last_period:
            log.info("warm start: fold tests periods the served model was trained on; cold start")
            return
        state = torch.load(self.predictor, map_location="cpu", weights_only=False)["ensemble"]["members"][-1]["state"]
        with torch.no_grad():
            for name, p in pl_module.model.named_parameters():
                src = state.get(name)
                if src is not None and tuple(src.shape) == tuple(p.shape):
                    p.copy_(src.to(p.dtype))
                    self.copied += 1
        log.info("warm start: %d parameter tensors copied from %s", self.copied, self.predictor)


@dataclass
class RetrainConfig:
    """``conf/retrain.yaml``."""

    store: str
    new_data: str | None = None  # CSV of new periods (same columns as the panel_csv source's file)
    monitor_dir: str | None = None  # the server's monitor folder: online MAPE from its actuals.jsonl
    overrides: list[str] = field(default_factory=list)  # config overrides of the retraining run (key=value)
    force: bool = False  # retrain whatever the policy says
    policy: RetrainPolicy = field(default_factory=RetrainPolicy)
    acceptance: dict | None = None  # acceptance criteria (validation.acceptance keys); null: the model's or the defaults
    warm_start: bool = True  # warm-start the folds that test new periods from the served model
    timeout_s: float = 3600.0  # the training child process is stopped after this
    monitor_window: int = 500  # matched actuals the online MAPE averages over

    def __post_init__(self) -> None:
        if isinstance(self.policy, dict):
            self.policy = RetrainPolicy(**self.policy)
        self.overrides = [str(o) for o in (self.overrides or [])]


def combine_csv(old: str | Path, new: str | Path, out: str | Path, keys: list[str]) -> Path:
    """The old panel file with the rows of ``new`` appended; a row of ``new`` replaces the old row of the same
    ``keys`` (date and hierarchy columns). Both files must have the same columns."""
    a, b = pd.read_csv(old, dtype=str, keep_default_na=False), pd.read_csv(new, dtype=str, keep_default_na=False)
    if set(a.columns) != set(b.columns):
        missing, extra = sorted(set(a.columns) - set(b.columns)), sorted(set(b.columns) - set(a.columns))
        raise ConfigError(f"{new}: new data must have the training file's columns (missing: {', '.join(missing) or 'none'}; unknown: {', '.join(extra) or 'none'})")
    missing_keys = [k for k in keys if k not in a.columns]
    if missing_keys:
        raise ConfigError(f"{old}: key column(s) {', '.join(missing_keys)} not in the file")
    both = pd.concat([a, b[a.columns]], ignore_index=True).drop_duplicates(keys, keep="last")
    both.to_csv(out, index=False)
    return Path(out)


def _walk_forward(cfg) -> dict:
    """The validation node of a walk-forward run over ``data.walk_forward`` (as conf/validation/walk_forward.yaml)."""
    from nam_mmm.evaluation.walk_forward import AcceptanceCriteria

    return {
        "name": "walk_forward",
        "splitter": {
            "_target_": "nam_mmm.data.folds.splitters.WalkForwardSplitter",
            **{k: f"${{data.walk_forward.{k}}}" for k in ("initial_train", "test_size", "step", "val_size")},
            "mode": "expanding",
            "max_folds": None,
        },
        "acceptance": asdict(AcceptanceCriteria()),
    }


def build_config(current: ModelArtifact, config: RetrainConfig, work: Path):
    """The retraining run's config: the served model's, with the combined data, overrides, walk-forward
    validation, the acceptance criteria and the warm start."""
    from omegaconf import OmegaConf, open_dict

    cfg = OmegaConf.load(current.path / "config.yaml")
    with open_dict(cfg):
        if config.new_data:
            path = cfg.data.source.get("path")
            if not path:
                raise ConfigError(f"new_data needs a file source (data.source.path); the model was trained on {cfg.data.source.get('_target_')}: give the new data through overrides instead")
            keys = [str(cfg.data.source.get("date", "date")), *[str(h) for h in cfg.data.source.get("hierarchy", ["brand", "sku"])]]
            cfg.data.source.path = str(combine_csv(path, config.new_data, work / "data.csv", keys))
        if config.overrides:
            bad = [o for o in config.overrides if "=" not in o]
            if bad:
                raise ConfigError(f"overrides must be key=value, got {', '.join(bad)}")
            cfg = OmegaConf.merge(cfg, OmegaConf.from_dotlist(config.overrides))
    with open_dict(cfg):
        if str(cfg.validation.get("name")) != "walk_forward":
            cfg.validation = _walk_forward(cfg)
        if config.acceptance:
            cfg.validation.acceptance = OmegaConf.merge(cfg.validation.get("acceptance") or {}, config.acceptance)
        if config.warm_start:
            cfg.callbacks.warm_start = {"_target_": "nam_mmm.serving.retrain.WarmStart", "predictor": str((current.path / "predictor.pt").resolve()), "last_period": current.metadata["data"]["last_period"]}
    return cfg


def curve_shift(old_dir: Path, new_dir: Path) -> dict:
    """How far the curves and overall elasticities moved: per feature, the largest and mean absolute change of
    ``effect_log_gmv`` over the brands' shared x range (the new curve interpolated at the old grid), and the
    change of each overall elasticity."""
    out: dict = {"curves": {}, "elasticities": {}}
    try:
        a, b = pd.read_csv(old_dir / "curves.csv"), pd.read_csv(new_dir / "curves.csv")
    except FileNotFoundError:
        return out
    for (feature, brand), old in a.groupby(["feature", "brand"], sort=False):
        new = b[(b["feature"] == feature) & (b["brand"] == brand)].sort_values("x")
        if new.empty:
            continue
        old = old.sort_values("x")
        keep = (old["x"] >= new["x"].min()) & (old["x"] <= new["x"].max())
        if not keep.any():
            out.setdefault("no_overlap", []).append(f"{feature}[{brand}]")  # the new data moved the input's range
            continue
        diff = np.abs(np.interp(old.loc[keep, "x"], new["x"], new["effect_log_gmv"]) - old.loc[keep, "effect_log_gmv"].to_numpy())
        cur = out["curves"].setdefault(feature, {"max_abs_change_log_gmv": 0.0, "mean_abs_change_log_gmv": []})
        cur["max_abs_change_log_gmv"] = max(cur["max_abs_change_log_gmv"], float(diff.max()))
        cur["mean_abs_change_log_gmv"].append(float(diff.mean()))
    for v in out["curves"].values():
        v["mean_abs_change_log_gmv"] = float(np.mean(v["mean_abs_change_log_gmv"]))
    try:
        ea, eb = pd.read_csv(old_dir / "elasticities.csv"), pd.read_csv(new_dir / "elasticities.csv")
        ea, eb = ea[ea["level"] == "all"].set_index("feature")["elasticity"], eb[eb["level"] == "all"].set_index("feature")["elasticity"]
        for f in ea.index.intersection(eb.index):
            out["elasticities"][f] = {"old": float(ea[f]), "new": float(eb[f]), "change": float(eb[f] - ea[f])}
    except (FileNotFoundError, KeyError):
        pass
    return out


def _primary_config(cfg) -> str:
    """``cfg`` as a primary config for ``train.py --config-name``: a defaults list selects the typed schema
    (``<group>/_schema`` in Hydra's ConfigStore, registered when nam_mmm.entry is imported, as train.py does) of
    every group that has one, so the resolved values compose into the same typed nodes as under train.yaml."""
    from hydra.core.config_store import ConfigStore
    from omegaconf import OmegaConf

    import nam_mmm.entry  # noqa: F401  registers the schemas

    repo = ConfigStore.instance().repo
    schemas = [{group: "_schema"} for group in cfg if isinstance(repo.get(group), dict) and "_schema.yaml" in repo[group]]
    return OmegaConf.to_yaml(OmegaConf.merge({"defaults": [*schemas, "_self_"]}, cfg))


def _new_periods(cfg, last_period: str) -> int:
    from nam_mmm.entry import load_table

    periods = load_table(cfg.data).panel.periods
    return int((periods > pd.Timestamp(last_period)).sum())


def _tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    errors = [line for line in text if line.startswith("error:")]
    return errors[-1] if errors else (text[-1] if text else "")


def retrain(config: RetrainConfig, now: datetime | None = None) -> dict:
    """Decide, retrain, validate and switch (see the module doc); returns the outcome, also in history.jsonl."""
    from omegaconf import OmegaConf

    store = ModelStore(config.store)
    current = store.current()
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d_%H-%M-%S_%f")
    work = store.root / "retrain" / stamp
    work.mkdir(parents=True)
    report: dict = {"event": "retrain", "work_dir": str(work), "served": current.version}
    try:
        cfg = build_config(current, config, work)
        mape, n_actuals = online_mape_from_logs(config.monitor_dir, config.monitor_window, config.policy.min_actuals) if config.monitor_dir else (None, 0)
        decision = decide(config.policy, current.metadata, _new_periods(cfg, current.metadata["data"]["last_period"]), mape, n_actuals, now)
        report["decision"] = asdict(decision)
        if not decision.retrain and not config.force:
            shutil.rmtree(work, ignore_errors=True)  # nothing was trained: no work folder stays behind
            report.update(outcome="skipped", reason="; ".join(decision.reasons), work_dir=None)
            return report
        if not decision.retrain:
            report["decision"]["reasons"].append("forced (force=true)")
        (work / "config.yaml").write_text(_primary_config(cfg))
        run = work / "run"
        cmd = [sys.executable, str(REPO_ROOT / "train.py"), "--config-path", str(work.resolve()), "--config-name", "config", f"hydra.run.dir={run.resolve()}"]
        started = time.perf_counter()
        with open(work / "train.log", "w") as out:
            try:
                proc = subprocess.run(cmd, cwd=REPO_ROOT, stdout=out, stderr=subprocess.STDOUT, timeout=float(config.timeout_s), env={**os.environ, "PYTHONUNBUFFERED": "1"})
                rc = proc.returncode
            except subprocess.TimeoutExpired:
                rc = None
        report["train_seconds"] = round(time.perf_counter() - started, 2)
        report["warm_started_folds"] = (work / "train.log").read_text(errors="replace").count("parameter tensors copied from")
        if rc != 0:
            why = f"timed out after {config.timeout_s:g} s" if rc is None else f"exited with code {rc}"
            report.update(outcome="failed", reason=f"training {why}: {_tail(work / 'train.log')}; kept {current.version}")
            return report
        acceptance = json.loads((run / "acceptance.json").read_text())
        report["acceptance"] = acceptance
        report["curve_shift"] = curve_shift(current.path, run)
        if not acceptance.get("passed"):
            failed = [c.get("reason") or c.get("criterion") for c in acceptance.get("criteria", []) if not c.get("passed")]
            report.update(outcome="rejected", reason=f"the new model fails the walk-forward acceptance ({'; '.join(failed)}); kept {current.version}")
            return report
        version = store.add(run)
        store.switch(version, reason="; ".join(decision.reasons))
        report.update(outcome="switched", new_version=version, reason=f"the new model passes the walk-forward acceptance; serving {version} (was {current.version})")
        return report
    except NamMMMError as err:
        report.update(outcome="failed", reason=f"{err}; kept {current.version}")
        return report
    finally:
        if "outcome" in report:
            store.log(report)
            log.info("retrain: %s: %s", report["outcome"], report.get("reason"))


def main() -> None:
    import hydra
    from omegaconf import DictConfig, OmegaConf

    from nam_mmm.entry import one_line_errors

    @hydra.main(config_path="../../conf", config_name="retrain", version_base="1.3")
    @one_line_errors
    def _main(cfg: DictConfig) -> None:
        data = OmegaConf.to_container(cfg, resolve=True)
        init_from = data.pop("init_from", None)
        if init_from:  # create the store around a first model, nothing else
            store = ModelStore.init(data["store"], init_from)
            print(f"model store {store.root}: serving {store.current_version()} (python scripts/serve.py model_dir={store.root})")
            return
        report = retrain(RetrainConfig(**data))
        print(json.dumps({k: report.get(k) for k in ("outcome", "reason", "served", "new_version", "work_dir")}, indent=2))
        if report["outcome"] == "failed":
            sys.exit(1)

    _main()


if __name__ == "__main__":
    main()
