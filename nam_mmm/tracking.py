"""MLflow tracking: one parent run per Hydra multirun (its jobs or Optuna trials as children), and run tables.

:class:`MLflowSweepRun` is a Hydra callback (``hydra.callbacks`` in ``conf/train.yaml``): when a multirun
starts it opens a parent run tagged with the sweep folder; each job finds that run by the tag
(:func:`sweep_parent_run_id`, from :mod:`nam_mmm.entry`) and nests under it, whichever launcher runs it; when
the multirun ends the parent gets the best child's objective, counts by status and the sweep files.
:func:`runs_table` ranks runs from the store without the UI (``scripts/compare_runs.py``).
An edge module like :mod:`nam_mmm.entry`: it reads the Hydra config, nothing in the package imports it.
"""

from __future__ import annotations

import math
from pathlib import Path

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

SWEEP_TAG = "nam_mmm.sweep_dir"  # the sweep folder: ties a parent run to its jobs


def _client(tracking_uri: str):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=tracking_uri)


def _experiment_id(client, name: str, artifact_location: str | None) -> str:
    exp = client.get_experiment_by_name(name)
    return exp.experiment_id if exp is not None else client.create_experiment(name, artifact_location=artifact_location)


def sweep_parent_run_id(tracking_uri: str, experiment_name: str, sweep_dir: str) -> str | None:
    """Id of the parent run opened for the sweep folder ``sweep_dir`` (``None`` if there is none)."""
    client = _client(tracking_uri)
    exp = client.get_experiment_by_name(experiment_name)
    if exp is None:
        return None
    runs = client.search_runs(
        [exp.experiment_id], filter_string=_running_parent(sweep_dir), max_results=1, order_by=["attributes.start_time DESC"]
    )
    return runs[0].info.run_id if runs else None


def _running_parent(sweep_dir: str) -> str:
    return f"tags.`{SWEEP_TAG}` = '{_key(sweep_dir)}' and attributes.status = 'RUNNING'"


def _key(sweep_dir: str) -> str:
    return str(Path(str(sweep_dir)).resolve())


class MLflowSweepRun(Callback):
    """Opens and closes the MLflow parent run of a multirun (does nothing without ``logger=mlflow``)."""

    def __init__(self) -> None:
        self.run_id: str | None = None
        self.client = None

    @staticmethod
    def _logger_conf(config: DictConfig) -> DictConfig | None:
        conf = OmegaConf.select(config, "logger.mlflow")
        return conf if conf is not None and conf.get("tracking_uri") else None

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        conf = self._logger_conf(config)
        if conf is None:
            return
        self.client = _client(conf.tracking_uri)
        exp_id = _experiment_id(self.client, conf.experiment_name, conf.get("artifact_location"))
        sweeper = config.hydra.sweeper
        study = sweeper.get("study_name")
        sweep_dir = str(config.hydra.sweep.dir)
        for stale in self.client.search_runs([exp_id], filter_string=_running_parent(sweep_dir)):  # a sweep that crashed here before
            self.client.set_terminated(stale.info.run_id, "KILLED")
        name = f"{'optuna-' + study if study else 'grid-' + str(config.data.name)}-{Path(sweep_dir).name}"
        run = self.client.create_run(exp_id, run_name=name, tags={SWEEP_TAG: _key(sweep_dir), "nam_mmm.kind": "sweep"})
        self.run_id = run.info.run_id
        overrides = list(config.hydra.overrides.task)
        params = {"sweep.overrides": " ".join(overrides) or "(none)", "sweep.sweeper": str(sweeper.get("_target_")).rsplit(".", 1)[-1]}
        params["sweep.objective"], params["sweep.direction"] = str(config.get("objective")), str(config.get("direction", "maximize"))
        if study:
            params.update({"sweep.study_name": str(study), "sweep.storage": str(sweeper.get("storage")), "sweep.n_trials": str(sweeper.get("n_trials"))})
            params.update({f"search.{k}": str(v) for k, v in (sweeper.get("params") or {}).items()})
        for k, v in params.items():
            self.client.log_param(self.run_id, k, v[:6000])

    def on_multirun_end(self, config: DictConfig, **kwargs) -> None:
        if self.run_id is None or self.client is None:
            return
        client, run_id = self.client, self.run_id
        exp_id = client.get_run(run_id).info.experiment_id
        children = client.search_runs([exp_id], filter_string=f"tags.mlflow.parentRunId = '{run_id}'", max_results=10000)
        metric = str(config.get("objective", "test.r2")).replace("%", "pct")
        maximize = str(config.get("direction", "maximize")) == "maximize"
        status = [r.info.status for r in children]
        client.log_metric(run_id, "runs_finished", float(status.count("FINISHED")))
        client.log_metric(run_id, "runs_failed", float(status.count("FAILED")))
        client.log_metric(run_id, "runs_pruned", float(status.count("KILLED")))  # stopped early by the Optuna pruner
        scored = [(r.data.metrics[metric], r) for r in children if math.isfinite(r.data.metrics.get(metric, math.nan))]
        if scored:
            value, best = (max if maximize else min)(scored, key=lambda s: s[0])
            client.log_metric(run_id, f"best.{metric}", value)
            client.set_tag(run_id, "best_run_id", best.info.run_id)
            client.set_tag(run_id, "best_run_name", best.info.run_name or "")
        sweep_dir = Path(str(config.hydra.sweep.dir))
        for path in sorted(sweep_dir.glob("*.yaml")):  # multirun.yaml, optimization_results.yaml
            client.log_artifact(run_id, str(path))
        client.set_terminated(run_id, "FINISHED")
        self.run_id = None


# metrics shown by runs_table besides the ranking metric, when the runs have them
KEY_METRICS = [
    "test.r2", "test.mape", "walk_forward.pooled.r2", "walk_forward.pooled.mape", "walk_forward.fold_r2_std",
    "acceptance_passed", "recovery.own_price_elasticity_mae", "recovery.roi_rank_corr", "wall_seconds",
]
# config choices always worth a column when they differ between the runs shown
CORE_PARAMS = ["data.name", "model.name", "strategy.name", "validation.name", "constraints.mode", "seed"]


def runs_table(
    tracking_uri: str,
    experiment_name: str,
    parent: str | None = None,
    metric: str | None = None,
    direction: str | None = None,
    top_k: int = 10,
):
    """The ``top_k`` runs of an experiment ranked by ``metric``, with key metrics and the params that differ.

    Args:
        parent: a sweep's parent run id, or ``"latest"`` (the most recent sweep): rank that sweep's runs;
            ``None``: every top-level training run (sweep parents and walk-forward fold runs left out).
        metric / direction: ranking; by default the sweep's objective and direction, else ``test.r2``, maximize.

    Returns:
        ``(table, context)``: a DataFrame (one row per run, best first; runs without the metric last) and a dict
        saying which experiment, sweep and metric it shows.
    """
    import pandas as pd

    client, ids, context = _experiment(tracking_uri, experiment_name)
    runs, metric, direction = _runs_to_rank(client, ids, context, parent, metric, direction)
    metric, direction = metric or "test.r2", direction or "maximize"
    context.update({"metric": metric, "direction": direction, "runs": len(runs)})
    rows = [_run_row(r, metric) for r in runs]
    table = pd.DataFrame([row for row, _ in rows], columns=["run_id", "run_name", "status", "started", metric, *[m for m in KEY_METRICS if m != metric], "failure"])
    if rows:
        p = pd.DataFrame([chosen for _, chosen in rows])
        varying = [c for c in p.columns if p[c].astype(str).nunique(dropna=False) > 1]
        table = pd.concat([table, p[varying]], axis=1)
    table = table.dropna(axis=1, how="all")
    if metric in table:
        table = table.sort_values(metric, ascending=direction != "maximize", na_position="last", kind="stable")
    return table.head(top_k).reset_index(drop=True), context


def _experiment(tracking_uri: str, experiment_name: str):
    """The client, the experiment's id list and the table's context; a one-line error when there is no store or experiment."""
    from nam_mmm.errors import ConfigError

    if tracking_uri.startswith("sqlite:///") and not Path(tracking_uri[len("sqlite:///") :]).is_file():
        raise ConfigError(f"no MLflow store at {tracking_uri[len('sqlite:///') :]} (train something first, or pass --tracking-uri)")
    client = _client(tracking_uri)
    exp = client.get_experiment_by_name(experiment_name)
    if exp is None:
        raise ConfigError(f"no MLflow experiment '{experiment_name}' in {tracking_uri} (train something first, or pass --experiment)")
    return client, [exp.experiment_id], {"tracking_uri": tracking_uri, "experiment": experiment_name}


def _runs_to_rank(client, ids: list[str], context: dict, parent: str | None, metric: str | None, direction: str | None):
    """A sweep's runs (``parent``: its run id or ``latest``) with its objective, or every top-level training run."""
    from nam_mmm.errors import ConfigError

    if parent == "latest":
        sweeps = client.search_runs(ids, filter_string="tags.`nam_mmm.kind` = 'sweep'", max_results=1, order_by=["attributes.start_time DESC"])
        if not sweeps:
            raise ConfigError(f"no sweep in MLflow experiment '{context['experiment']}' yet (run python train.py -m ...)")
        parent = sweeps[0].info.run_id
    if not parent:
        runs = [r for r in client.search_runs(ids, max_results=50000) if r.data.tags.get("nam_mmm.kind") != "sweep" and "fold" not in r.data.tags]
        return runs, metric, direction
    sweep = client.get_run(parent)
    context.update({"sweep": f"{sweep.info.run_name} ({parent})"})
    runs = client.search_runs(ids, filter_string=f"tags.mlflow.parentRunId = '{parent}'", max_results=50000)
    return runs, metric or sweep.data.params.get("sweep.objective"), direction or sweep.data.params.get("sweep.direction")


def _run_row(r, metric: str) -> tuple[dict, dict]:
    """One run's row (id, status, metrics, why it did not finish) and its choices (core params and the sweep's overrides)."""
    import pandas as pd

    row = {
        "run_id": r.info.run_id,
        "run_name": r.info.run_name,
        "status": r.info.status,
        "started": pd.Timestamp(r.info.start_time, unit="ms").strftime("%Y-%m-%d %H:%M"),
        metric: r.data.metrics.get(metric),
    }
    row.update({m: r.data.metrics.get(m) for m in KEY_METRICS if m != metric})
    row["failure"] = r.data.tags.get("failure") or r.data.tags.get("pruned")
    chosen = {k: r.data.params.get(k) for k in CORE_PARAMS}
    for item in r.data.tags.get("nam_mmm.overrides", "").split():
        key, _, value = item.partition("=")
        key = key.lstrip("+~")
        if key and not key.startswith(("logger.", "hydra.", "hparams_search")) and f"{key}.name" not in chosen:
            chosen[key] = value  # a group choice (model=hill) shows as its .name param
    return row, chosen


def flat_metrics(d: dict, prefix: str = "") -> dict[str, float]:
    """Nested metrics as flat ``a.b.c -> value`` pairs, finite numbers only (MLflow cannot store NaN or inf faithfully)."""
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flat_metrics(v, key + "."))
        elif isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
            out[key.replace("%", "pct")] = float(v)
        elif isinstance(v, bool):
            out[key] = float(v)
    return out


def log_run(loggers: list, folder, metrics: dict, predictor, input_example, log_model: bool) -> None:
    """Log a finished run to its loggers: the summary metrics, every file of the run folder as an artifact,
    the served model as an MLflow pyfunc (``log_model``; its URI in the ``model_uri`` tag), then close them.
    ``input_example`` is a callable returning the pyfunc's example request rows (built only when needed)."""
    files = folder.files()  # listed first: an artifact store inside the run folder must not copy itself
    for lg in loggers:
        lg.log_metrics(flat_metrics(metrics))
        if getattr(lg, "run_id", None) and hasattr(lg, "experiment"):
            for path in files:
                rel = path.parent.relative_to(folder.root)
                lg.experiment.log_artifact(lg.run_id, str(path), None if str(rel) == "." else str(rel))
            if log_model:
                from nam_mmm.serving.mlflow_model import log_pyfunc

                uri = log_pyfunc(lg.experiment, lg.run_id, predictor, folder.root / "predictor.pt", input_example())
                lg.experiment.set_tag(lg.run_id, "model_uri", uri)
                print(f"MLflow pyfunc: {uri}")
        lg.finalize("success")
